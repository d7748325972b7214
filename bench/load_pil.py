#!/usr/bin/env python3
"""The article's way of loading mnist_sample (train + valid), with PIL and
numpy instead of fastai's tensor(): for comparison with bench_load.

    threes = (path/'train'/'3').ls().sorted()
    three_tensors = [tensor(Image.open(o)) for o in threes]
    stacked_threes = torch.stack(three_tensors).float()/255
    ... then cat and .view(-1, 28*28)

Usage: CGRAD_DATA=/path/to/data python3 bench/load_pil.py [runs]
(needs PIL and numpy: Debian's python3-pil, python3-numpy).
"""
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def load_split(path):
    stacks = []
    for cls in ("3", "7"):
        files = sorted((path / cls).iterdir())
        stacks.append(np.stack([np.array(Image.open(o)) for o in files]).astype(np.float32) / 255)
    return np.concatenate(stacks).reshape(-1, 28 * 28)


def load_sample(root):
    train = load_split(root / "train")
    valid = load_split(root / "valid")
    return len(train) + len(valid)


def main():
    data = os.environ.get("CGRAD_DATA")
    if not data:
        sys.exit("load_pil.py: set CGRAD_DATA to the folder holding mnist_sample/")
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    root = Path(data) / "mnist_sample"
    load_sample(root)  # warm-up: the page cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        n = load_sample(root)
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    print(f"PIL + numpy (1 thread): {n} images in {s:.3f} s, {n / s:.0f} images/s (median of {runs})")


if __name__ == "__main__":
    main()
