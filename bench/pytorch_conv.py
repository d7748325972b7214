#!/usr/bin/env python3
"""pytorch_conv.py - torch.nn.functional.conv2d on the shapes bench_conv times:
the five convolutions of fastbook's simple_cnn (chapter 13, MNIST 28x28) at
batch 512, forward, backward-data and backward-weight (with the bias), each
timed alone, median of R runs after two warm-ups; then the total over an
epoch of 60,000 images (the first layer's backward-data left out, as in
training, where the images want no gradient). A backward is
torch.autograd.grad on a graph built once and retained, so it times the
convolution's backward kernels only, as bench_conv does.

    /usr/bin/python3 bench/pytorch_conv.py [--threads 2] [--reps 21] [--batch 512] [--json]

Debian's python3-torch (1.13) is /usr/bin/python3's; the `python3` first on
PATH may not have torch. Prints figures only.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

LAYERS = [
    ("conv1  1->8  k5 s2 p2 28->14", 1, 28, 8, 5, 2, 2),
    ("conv2  8->16 k3 s2 p1 14->7", 8, 14, 16, 3, 2, 1),
    ("conv3 16->32 k3 s2 p1  7->4", 16, 7, 32, 3, 2, 1),
    ("conv4 32->64 k3 s2 p1  4->2", 32, 4, 64, 3, 2, 1),
    ("conv5 64->10 k3 s2 p1  2->1", 64, 2, 10, 3, 2, 1),
]


def timed(fn, reps):
    for _ in range(2):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n = a.batch
    rows = []
    for name, c, h, o, k, s, p in LAYERS:
        x = torch.randn(n, c, h, h)
        w = torch.randn(o, c, k, k)
        b = torch.randn(o)
        oh = (h + 2 * p - k) // s + 1
        dy = torch.randn(n, o, oh, oh)
        flops = 2.0 * n * o * oh * oh * c * k * k

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, b, stride=s, padding=p)

        xg = x.clone().requires_grad_(True)
        wg = w.clone().requires_grad_(True)
        bg = b.clone().requires_grad_(True)
        yd = F.conv2d(xg, w, b, stride=s, padding=p)
        yw = F.conv2d(x, wg, bg, stride=s, padding=p)

        def bwd_data():
            torch.autograd.grad(yd, [xg], dy, retain_graph=True)

        def bwd_weight():
            torch.autograd.grad(yw, [wg, bg], dy, retain_graph=True)

        t_f = timed(fwd, a.reps)
        t_d = timed(bwd_data, a.reps)
        t_w = timed(bwd_weight, a.reps)
        rows.append((name, flops, t_f, t_d, t_w))

    if a.json:
        print(json.dumps([dict(zip(("layer", "flops", "fwd", "bwd_data", "bwd_weight"), r)) for r in rows]))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {n}, median of {a.reps}")
    print(f"{'layer':30s} {'MFLOP/pass':>10s} {'fwd ms':>9s} {'GFLOP/s':>9s} {'bwd-d ms':>9s} {'GFLOP/s':>9s}"
          f" {'bwd-w ms':>9s} {'GFLOP/s':>9s}")
    tot = [0.0, 0.0, 0.0]
    for i, (name, f, tf, td, tw) in enumerate(rows):
        print(f"{name:30s} {f * 1e-6:10.1f} {tf * 1e3:9.3f} {f / tf * 1e-9:9.1f} {td * 1e3:9.3f}"
              f" {f / td * 1e-9:9.1f} {tw * 1e3:9.3f} {f / tw * 1e-9:9.1f}")
        tot[0] += tf
        tot[1] += td if i > 0 else 0.0
        tot[2] += tw
    per_epoch = 60000.0 / n
    batch = sum(tot)
    print(f"per batch: forward {tot[0] * 1e3:.3f} ms, bwd-data {tot[1] * 1e3:.3f} ms, "
          f"bwd-weight {tot[2] * 1e3:.3f} ms = {batch * 1e3:.3f} ms")
    print(f"per epoch (60000 images = {per_epoch:.1f} batches): forward {tot[0] * per_epoch:.3f} s + "
          f"backward {(tot[1] + tot[2]) * per_epoch:.3f} s = {batch * per_epoch:.3f} s")


if __name__ == "__main__":
    main()
