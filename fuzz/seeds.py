#!/usr/bin/env python3
"""Writes small seed inputs for the fuzz targets into DIR/seeds_{png,idx,csv}:
PNGs of every colour type (written here with zlib, no PIL needed), IDX
files raw and gzipped, CSV digits and a labels.csv. Usage: seeds.py DIR"""
import gzip
import io
import tarfile
import os
import struct
import sys
import zlib


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(w, h, depth, ctype, rows, plte=None, trns=None, interlace=0):
    raw = b"".join(b"\0" + r for r in rows)  # filter 0 on each row
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
    if plte:
        out += chunk(b"PLTE", plte)
    if trns:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    base = sys.argv[1]
    seeds = {k: os.path.join(base, "seeds_" + k) for k in ("png", "idx", "csv", "archive")}
    for d in seeds.values():
        os.makedirs(d, exist_ok=True)

    def put(kind, name, data):
        with open(os.path.join(seeds[kind], name), "wb") as f:
            f.write(data)

    gray = [bytes((x * 9 + y * 3) % 256 for x in range(28)) for y in range(28)]
    put("png", "gray8.png", png(28, 28, 8, 0, gray))
    put("png", "gray16.png", png(4, 2, 16, 0, [bytes(range(8)), bytes(range(8, 16))]))
    put("png", "gray1.png", png(8, 2, 1, 0, [b"\xa5", b"\x5a"]))
    put("png", "rgb.png", png(2, 2, 8, 2, [bytes(range(6)), bytes(range(100, 106))]))
    put("png", "rgba.png", png(2, 1, 8, 6, [bytes([255, 0, 0, 128, 0, 255, 0, 0])]))
    put("png", "ga16.png", png(1, 1, 16, 4, [b"\xff\xff\x80\x00"]))
    put("png", "pal.png", png(2, 2, 8, 3, [b"\0\1", b"\2\0"], plte=bytes(range(9)), trns=b"\xff\x00"))
    put("png", "adam7.png", png(28, 28, 8, 0, gray, interlace=1))

    images = struct.pack(">IIII", 0x803, 3, 4, 4) + bytes(range(48))
    labels = struct.pack(">II", 0x801, 3) + bytes([5, 0, 4])
    put("idx", "images.idx", images)
    put("idx", "labels.idx", labels)
    put("idx", "images.idx.gz", gzip.compress(images))
    put("idx", "labels.idx.gz", gzip.compress(labels))

    row = lambda label, seed: ",".join([str(label)] + [str((seed + k) % 256) for k in range(16)])
    put("csv", "digits.csv", ("label," + ",".join(f"p{k}" for k in range(16)) + "\n"
                              + row(3, 0) + "\n" + row(7, 5) + "\r\n").encode())
    put("csv", "digits_noheader.csv", (row(1, 9) + "\n").encode())
    put("csv", "labels.csv", b"name,label\ntrain/3/7.png,0\ntrain/7/1.png,1\n\"a,b.png\",1\n")

    # Archives: a fastai-like tgz, and names and link targets to mutate.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("mnist_tiny/labels.csv", b"name,label\n"), ("mnist_tiny/train/3/1.png", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("mnist_tiny/link")
        link.type, link.linkname = tarfile.SYMTYPE, "train/../labels.csv"
        tar.addfile(link)
    put("archive", "fastai.tgz", buf.getvalue())
    put("archive", "name_and_target", b"a/b/c\0../../x")
    put("archive", "dotdot", b"a/../../etc/passwd")


if __name__ == "__main__":
    main()
