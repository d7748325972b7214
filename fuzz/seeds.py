#!/usr/bin/env python3
"""Writes small seed inputs for the fuzz targets into
DIR/seeds_{png,idx,csv,archive,model}: PNGs of every colour type (written
here with zlib, no PIL needed), IDX files raw and gzipped, CSV digits and a
labels.csv, archives, and model files of both formats (src/nn/model_file.c's
top comment: version 1, the linear and mlp models; version 2, any list of
layers). Usage: seeds.py DIR"""
import functools
import gzip
import io
import operator
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


# ---- model files (src/nn/model_file.c), little-endian, CRC-32 at the end ----

UNSET = -(1 << 63)  # an integer layer argument not given (INT64_MIN)
NAN = struct.unpack("<f", b"\x00\x00\xc0\x7f")[0]  # a float one (fargs)


def with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


def names(classes):
    return b"".join(c.encode().ljust(32, b"\0") for c in classes)


def floats(n, seed):
    """n small, finite, deterministic weights."""
    return struct.pack(f"<{n}f", *(((seed * 31 + k * 37) % 101 - 50) / 100.0 for k in range(n)))


def model_v1(kind, n_in, n_hidden, n_out, classes):
    """Version 1: kind 1 linear (x @ w + b), 2 mlp (linear, relu, linear)."""
    head = b"CGRADMDL" + struct.pack("<IIqqqI", 1, kind, n_in, n_hidden if kind == 2 else 0, n_out,
                                     len(classes))
    shapes = [(n_in, n_out), (n_out,)] if kind == 1 else [(n_in, n_hidden), (n_hidden,),
                                                          (n_hidden, n_out), (n_out,)]
    body = head + names(classes) + struct.pack("<I", len(shapes))
    for k, shape in enumerate(shapes):
        numel = shape[0] * (shape[1] if len(shape) == 2 else 1)
        body += struct.pack(f"<I{len(shape)}q", len(shape), *shape) + floats(numel, k)
    return with_crc(body)


def model_v2(name, in_shape, layers, classes):
    """Version 2: layers are (kind, args, fargs); each layer's tensors follow
    from its plan (src/nn/layers/*.c): linear:OUT has w [in, OUT] and b [OUT];
    bn gamma, beta and then its state, running mean and variance, [C] each;
    the others none. Pools fill in STRIDE = K and PAD = 0, as their plan does."""
    head_size = 92 + 32 * len(classes) + 72 * len(layers)
    body = b"CGRADMDL" + struct.pack("<IIII", 2, head_size, len(layers), len(in_shape))
    body += struct.pack("<4q", *(list(in_shape) + [0] * (4 - len(in_shape))))
    body += name.encode().ljust(32, b"\0") + struct.pack("<I", len(classes)) + names(classes)
    payload, shape, seed = b"", list(in_shape), 0
    for kind, args, fargs in layers:
        args = list(args)
        if kind in ("maxpool", "avgpool"):
            k = args[0]
            stride, pad = (args + [k, 0])[1:3]
            args = [k, stride, pad]
            shape = [shape[0]] + [(d + 2 * pad - k) // stride + 1 for d in shape[1:]]
        elif kind == "linear":
            (n_in,), n_out = shape, args[0]
            payload += floats(n_in * n_out, seed) + floats(n_out, seed + 1)
            shape, seed = [n_out], seed + 2
        elif kind == "bn":
            c = shape[0]
            payload += struct.pack(f"<{2 * c}f", *([1.0] * c + [0.0] * c))  # gamma, beta
            payload += floats(c, seed) + struct.pack(f"<{c}f", *([0.5] * c))  # mean, var
            seed += 1
        elif kind == "flatten":
            shape = [functools.reduce(operator.mul, shape, 1)]
        elif kind == "gap":
            shape = [shape[0]]
        args += [UNSET] * (6 - len(args))
        fargs = list(fargs) + [NAN] * (2 - len(fargs))
        body += kind.encode().ljust(16, b"\0") + struct.pack("<6q2f", *args, *fargs)
    assert len(body) == head_size
    return with_crc(body + payload)


def main():
    base = sys.argv[1]
    seeds = {k: os.path.join(base, "seeds_" + k) for k in ("png", "idx", "csv", "archive", "model")}
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

    # Models: 4x4 "images" keep them small (the fuzzer's inputs grow from these).
    put("model", "v1_linear.cgm", model_v1(1, 16, 0, 1, ["3", "7"]))
    put("model", "v1_mlp.cgm", model_v1(2, 16, 4, 1, ["3", "7"]))
    put("model", "v2_linear.cgm", model_v2("linear", [16], [("linear", [1], [])], ["3", "7"]))
    put("model", "v2_mlp.cgm", model_v2("mlp", [16], [("linear", [4], []), ("relu", [], []),
                                                       ("linear", [1], [])], ["3", "7"]))
    put("model", "v2_custom.cgm",
        model_v2("custom", [1, 4, 4],
                 [("flatten", [], []), ("linear", [8], []), ("relu", [], []),
                  ("dropout", [], [0.25]), ("linear", [6], []), ("sigmoid", [], []),
                  ("linear", [10], [])],
                 [str(d) for d in range(10)]))
    put("model", "v2_images.cgm",
        model_v2("custom", [2, 6, 6],
                 [("bn", [], []), ("maxpool", [2], []), ("relu", [], []),
                  ("avgpool", [3, 1, 1], []), ("bn", [], []), ("gap", [], []),
                  ("linear", [3], [])],
                 ["cat", "dog", "bird"]))


if __name__ == "__main__":
    main()
