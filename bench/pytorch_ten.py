#!/usr/bin/python3
"""PyTorch reference for cgrad's ten-digit MNIST training: the recipes of
`cgrad train --model linear|mlp --dataset mnist` in plain PyTorch.

Phases (the data is loaded once first; its time is reported apart):
  ten_linear  softmax regression, nn.Linear(784, 10) (default init), 5 epochs
  ten_mlp     nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)),
              kaiming_normal_ on the first layer's weight and a zero bias (the
              second layer keeps nn.Linear's default), 10 epochs
both with F.cross_entropy, torch.optim.Adam(betas=(0.9, 0.99), eps=1e-5) and
OneCycleLR(max_lr=0.01, pct_start=0.25, div_factor=25, final_div_factor=4000,
anneal_strategy='cos', cycle_momentum=True, base_momentum=0.85,
max_momentum=0.95, three_phase=False), stepped once per batch. fastai's
fit_one_cycle ends at lr_max/div_final = lr_max/1e5, OneCycleLR at
max_lr/div_factor/final_div_factor, hence 1e5/25 = 4000.

Data: the four gzip IDX files read with gzip + numpy and kept as uint8 (as
torchvision's MNIST keeps them); every batch is gathered from a fresh
torch.randperm per epoch, in batches of 256 with the last partial one kept
(235 steps an epoch, as cgrad's loader), and converted with .float() / 255.
After each epoch the 10,000 test images are scored under torch.no_grad() in
chunks of 4096 converted the same way (cgrad scores a split it holds as bytes
in chunks of 4096 too). Each epoch's "seconds" is its training plus that
scoring, what cgrad's epoch rows report.

Run with the Debian interpreter (/usr/bin/python3), which has python3-torch.
"""
import argparse
import gzip
import json
import os
import resource
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as e:  # pragma: no cover - environment problem, not a bug
    sys.exit("pytorch_ten.py: %s\n  install with: apt-get install python3-torch "
             "(and run it with /usr/bin/python3)" % e)

BATCH = 256
VALID_CHUNK = 4096
FILES = {"train_x": "train-images-idx3-ubyte.gz", "train_y": "train-labels-idx1-ubyte.gz",
         "valid_x": "t10k-images-idx3-ubyte.gz", "valid_y": "t10k-labels-idx1-ubyte.gz"}
# epochs, batch size, peak lr, weight decay (AdamW when > 0): cgrad's defaults
RECIPES = {"ten_linear": (5, 256, 0.01, 0.0), "ten_mlp": (10, 256, 0.01, 0.0),
           "ten_cnn": (5, 512, 0.1, 0.01)}


# ---------------------------------------------------------------- load ----
def read_idx(path):
    """One gzip IDX file -> a uint8 numpy array (images [n, 784], labels [n]),
    decompressed straight into the array (no second copy of the bytes)."""
    with gzip.open(path, "rb") as f:
        head = f.read(4)
        magic = int.from_bytes(head, "big")
        ndim = magic & 0xFF
        if len(head) != 4 or magic >> 8 != 0x08 or ndim not in (1, 3):
            raise ValueError("%s: not an IDX file of unsigned bytes (magic %#x)" % (path, magic))
        dims = [int.from_bytes(f.read(4), "big") for _ in range(ndim)]
        a = np.empty(int(np.prod(dims)), dtype=np.uint8)
        got = f.readinto(memoryview(a))
        if got != a.size or f.read(1):
            raise ValueError("%s: not %d bytes of data for dims %s" % (path, a.size, dims))
    return a.reshape(dims[0], -1) if ndim == 3 else a


def load(path):
    d = {}
    for key, name in FILES.items():
        a = read_idx(os.path.join(path, name))
        # images stay uint8; labels become int64, what F.cross_entropy takes
        d[key] = torch.from_numpy(a if key.endswith("_x") else a.astype(np.int64))
    return d


# -------------------------------------------------------------- training ----
def conv(ni, nf, ks=3, act=True):
    """fastbook ch.13's conv: stride 2, then ReLU, then batch norm."""
    layers = [nn.Conv2d(ni, nf, stride=2, kernel_size=ks, padding=ks // 2)]
    if act:
        layers.append(nn.ReLU())
    layers.append(nn.BatchNorm2d(nf))
    return nn.Sequential(*layers)


def make_model(name):
    if name == "ten_linear":
        return nn.Linear(28 * 28, 10)
    if name == "ten_cnn":  # simple_cnn, 30,542 parameters; default (PyTorch) init
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), conv(1, 8, ks=5), conv(8, 16),
                             conv(16, 32), conv(32, 64), conv(64, 10, act=False), nn.Flatten())
    model = nn.Sequential(nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))
    nn.init.kaiming_normal_(model[0].weight, nonlinearity="relu")  # N(0, 2/784)
    nn.init.zeros_(model[0].bias)
    return model


def validate(model, vx, vy):
    """(mean cross-entropy, accuracy) over the whole validation set."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(vx), VALID_CHUNK):
            xb = vx[lo:lo + VALID_CHUNK].float() / 255
            yb = vy[lo:lo + VALID_CHUNK]
            out = model(xb)
            loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    return loss_sum / len(vx), correct / len(vx)


def fit(name, d, epochs, seed, on_epoch):
    torch.manual_seed(seed)
    model = make_model(name)
    tx, ty, vx, vy = d["train_x"], d["train_y"], d["valid_x"], d["valid_y"]
    n = len(tx)
    _, batch, lr, wd = RECIPES[name]
    steps = (n + batch - 1) // batch
    if wd > 0:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-5,
                                weight_decay=wd)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.25, div_factor=25,
        final_div_factor=1e5 / 25, anneal_strategy="cos", cycle_momentum=True,
        base_momentum=0.85, max_momentum=0.95, three_phase=False)
    rows = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loss_sum = 0.0
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb = tx[idx].float() / 255
            yb = ty[idx]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        valid_loss, acc = validate(model, vx, vy)
        row = {"epoch": epoch, "train_loss": loss_sum / n, "valid_loss": valid_loss,
               "accuracy": acc, "seconds": time.perf_counter() - t0}
        rows.append(row)
        on_epoch(row)
    return rows


# ------------------------------------------------------------------ main ----
def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def median(xs):
    s = sorted(xs)
    k = len(s)
    return None if k == 0 else (s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) / 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", default="all", choices=["all"] + list(RECIPES))
    default_data = os.path.join(os.environ.get("CGRAD_DATA", ""), "mnist")
    ap.add_argument("--data", default=default_data,
                    help="the folder of MNIST's four .gz IDX files (default $CGRAD_DATA/mnist)")
    ap.add_argument("--epochs", type=int, default=0,
                    help="override the recipe's epochs (ten_linear 5, ten_mlp 10, ten_cnn 5)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2,
                    help="torch.set_num_threads (default 2, the benchmark's setting)")
    ap.add_argument("--json", action="store_true",
                    help='JSON lines: one per epoch, then {"phase", "seconds", "accuracy", ...}')
    args = ap.parse_args()

    missing = [f for f in FILES.values() if not os.path.isfile(os.path.join(args.data, f))]
    if missing:
        sys.exit("pytorch_ten.py: %r lacks %s; set CGRAD_DATA or pass --data DIR"
                 % (args.data, ", ".join(missing)))
    torch.set_num_threads(args.threads)

    def emit(rec, text):
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(text, flush=True)

    t0 = time.perf_counter()
    d = load(args.data)
    load_s = time.perf_counter() - t0
    emit({"phase": "ten_load", "seconds": round(load_s, 6),
          "train": list(d["train_x"].shape), "valid": list(d["valid_x"].shape),
          "peak_rss_mb": round(peak_rss_mb(), 1)},
         "load     %8.3f s  train %s valid %s" % (load_s, list(d["train_x"].shape),
                                                  list(d["valid_x"].shape)))

    todo = list(RECIPES) if args.phase == "all" else [args.phase]
    for name in todo:
        epochs = args.epochs or RECIPES[name][0]
        if not args.json:
            print("%s (%d epochs, threads %d, seed %d):" % (name, epochs, args.threads, args.seed))
            print("  epoch  train_loss  valid_loss  accuracy  seconds")

        def on_epoch(r, name=name):
            emit(dict({"phase": name}, **{k: (round(v, 6) if isinstance(v, float) else v)
                                          for k, v in r.items()}),
                 "  %5d  %10.6f  %10.6f  %8.4f  %7.3f" % (r["epoch"], r["train_loss"],
                                                          r["valid_loss"], r["accuracy"],
                                                          r["seconds"]))

        t1 = time.perf_counter()
        rows = fit(name, d, epochs, args.seed, on_epoch)
        total = time.perf_counter() - t1
        secs = [r["seconds"] for r in rows]
        rec = {"phase": name, "seconds": round(total, 6), "accuracy": rows[-1]["accuracy"],
               "train_loss": round(rows[-1]["train_loss"], 6),
               "valid_loss": round(rows[-1]["valid_loss"], 6), "epochs": epochs,
               "epoch_seconds": [round(s, 6) for s in secs],
               "epoch_median": round(median(secs), 6), "load_seconds": round(load_s, 6),
               "threads": torch.get_num_threads(), "peak_rss_mb": round(peak_rss_mb(), 1)}
        emit(rec, "%s: %.3f s in all, median epoch %.3f s, accuracy %.4f" % (
            name, total, rec["epoch_median"], rec["accuracy"]))


if __name__ == "__main__":
    main()
