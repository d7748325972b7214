#!/usr/bin/python3
"""PyTorch reference for cgrad's speed comparison: the article's (fastbook
chapter 4) 3-vs-7 MNIST pipeline in plain PyTorch, phase by phase.

Phases (each one that needs data loads it first; load time is reported apart):
  load      MNIST_SAMPLE PNGs -> tensors, as the article does it: sorted ls,
            PIL Image.open, torch.stack, .float()/255, cat, view(-1, 784),
            train_y = tensor([1]*n3 + [0]*n7).unsqueeze(1)
  baseline  pixel similarity: mean "ideal" 3 and 7, distance = mean absolute
            difference over the last two dims, is_3 = d(x,mean3) < d(x,mean7)
  linear    linear1 = x@w + b, w[784,1] and b[1] from randn*1.0, mnist_loss,
            shuffled batches of 256, lr 1.0, 20 epochs, manual SGD
  mlp       nn.Sequential(Linear(784,30), ReLU(), Linear(30,1)), default init,
            lr 0.1, 40 epochs, mnist_loss, the same manual SGD

fastai is not used (and need not be installed); the math is the book's.
The DataLoader is replaced by its equivalent on in-memory tensors: a fresh
torch.randperm per epoch, sliced into batches of 256, the last partial batch
kept (fastai's DataLoader(shuffle=True) without drop_last). Python-level
per-item collation would only measure the interpreter, not the engine.

Run with the Debian interpreter (/usr/bin/python3), which has python3-torch.
"""
import argparse
import json
import os
import resource
import sys
import time

try:
    import numpy as np
    import torch
    from torch import nn
    from PIL import Image
except ImportError as e:  # pragma: no cover - environment problem, not a bug
    sys.exit("pytorch_ref.py: %s\n  install with: apt-get install python3-torch python3-pil "
             "(and run it with /usr/bin/python3)" % e)

BATCH = 256


# ---------------------------------------------------------------- load ----
def ls_sorted(d):
    """fastai's (path).ls().sorted(): every entry of d, sorted by name."""
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def stack_dir(d):
    """torch.stack([tensor(Image.open(o)) for o in ls]).float()/255 -> [n,28,28]."""
    imgs = [torch.from_numpy(np.array(Image.open(o))) for o in ls_sorted(d)]
    return torch.stack(imgs).float() / 255


def load(path):
    """The article's tensors: stacked images (rank 3) for the baseline and the
    flattened train_x/valid_x (rank 2) with column labels for training."""
    d = {}
    for split in ("train", "valid"):
        for digit in ("3", "7"):
            d[split + digit] = stack_dir(os.path.join(path, split, digit))
    for split in ("train", "valid"):
        t3, t7 = d[split + "3"], d[split + "7"]
        d[split + "_x"] = torch.cat([t3, t7]).view(-1, 28 * 28)
        d[split + "_y"] = torch.tensor([1] * len(t3) + [0] * len(t7)).unsqueeze(1)
    return d


# ------------------------------------------------------------ baseline ----
def mnist_distance(a, b):
    return (a - b).abs().mean((-1, -2))


def baseline(d):
    mean3 = d["train3"].mean(0)
    mean7 = d["train7"].mean(0)

    def is_3(x):
        return mnist_distance(x, mean3) < mnist_distance(x, mean7)

    right3 = is_3(d["valid3"]).float()
    right7 = 1 - is_3(d["valid7"]).float()
    acc3, acc7 = right3.mean().item(), right7.mean().item()
    # "accuracy" counts every validation image once (as cgrad's CLI does); the
    # book's summary, (accuracy_3s + accuracy_7s)/2, is "accuracy_class_mean"
    n = len(right3) + len(right7)
    whole = (right3.sum() + right7.sum()).item() / n
    return {"accuracy": whole, "accuracy_3": acc3, "accuracy_7": acc7,
            "accuracy_class_mean": (acc3 + acc7) / 2}


# -------------------------------------------------------------- training ----
def mnist_loss(predictions, targets):
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


def batch_accuracy(xb, yb):
    preds = xb.sigmoid()
    correct = (preds > 0.5) == yb
    return correct.float().mean()


def validate(model, vx, vy):
    """Accuracy on the whole validation set, plus the book's validate_epoch
    figure (the mean of per-batch accuracies over batches of 256, which weights
    the short last batch a little more)."""
    with torch.no_grad():
        preds = model(vx)
        whole = batch_accuracy(preds, vy).item()
        accs = [batch_accuracy(preds[i:i + BATCH], vy[i:i + BATCH])
                for i in range(0, len(vx), BATCH)]
        book = torch.stack(accs).mean().item()
    return whole, book


def train(model, params, lr, epochs, d, verbose):
    tx, ty, vx, vy = d["train_x"], d["train_y"], d["valid_x"], d["valid_y"]
    n = len(tx)
    history = []
    for epoch in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = tx[idx], ty[idx]
            loss = mnist_loss(model(xb), yb)
            loss.backward()
            for p in params:
                p.data -= p.grad * lr
                p.grad.zero_()
        whole, book = validate(model, vx, vy)
        history.append(round(whole, 4))
        if verbose:
            print("  epoch %2d  valid accuracy %.4f  (book's batch mean %.4f)"
                  % (epoch + 1, whole, book))
    return {"accuracy": whole, "accuracy_book": book, "epochs": epochs,
            "history": history}


def init_params(size, std=1.0):
    return (torch.randn(size) * std).requires_grad_()


def linear(d, seed, verbose):
    torch.manual_seed(seed)
    weights = init_params((28 * 28, 1))
    bias = init_params(1)

    def linear1(xb):
        return xb @ weights + bias

    return train(linear1, [weights, bias], 1.0, 20, d, verbose)


def mlp(d, seed, verbose):
    torch.manual_seed(seed)
    simple_net = nn.Sequential(nn.Linear(28 * 28, 30), nn.ReLU(), nn.Linear(30, 1))
    return train(simple_net, list(simple_net.parameters()), 0.1, 40, d, verbose)


PHASES = {"baseline": baseline, "linear": linear, "mlp": mlp}


# ------------------------------------------------------------------ main ----
def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", default="all",
                    choices=["all", "load", "baseline", "linear", "mlp"])
    default_data = os.path.join(os.environ.get("CGRAD_DATA", ""), "mnist_sample")
    ap.add_argument("--data", default=default_data,
                    help="the MNIST_SAMPLE folder (default $CGRAD_DATA/mnist_sample)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2,
                    help="torch.set_num_threads (default 2, the benchmark's setting)")
    ap.add_argument("--json", action="store_true",
                    help='one JSON line per phase: {"phase", "seconds", "accuracy", ...}')
    args = ap.parse_args()

    if not os.path.isdir(os.path.join(args.data, "train", "3")):
        sys.exit("pytorch_ref.py: %r has no train/3 folder; set CGRAD_DATA or pass "
                 "--data DIR/mnist_sample" % args.data)
    torch.set_num_threads(args.threads)

    def report(phase, seconds, extra=None):
        rec = {"phase": phase, "seconds": round(seconds, 6)}
        rec.update(extra or {})
        rec["peak_rss_mb"] = round(peak_rss_mb(), 1)  # cumulative for the process
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            acc = ""
            if "accuracy_3" in rec:
                acc = "  accuracy 3s %.4f 7s %.4f (mean %.4f), all %.4f" % (
                    rec["accuracy_3"], rec["accuracy_7"], rec["accuracy_class_mean"], rec["accuracy"])
            elif "accuracy" in rec:
                acc = "  valid accuracy %.4f" % rec["accuracy"]
            print("%-8s %8.3f s%s" % (phase, seconds, acc), flush=True)

    t0 = time.perf_counter()
    d = load(args.data)
    report("load", time.perf_counter() - t0,
           {"train": list(d["train_x"].shape), "valid": list(d["valid_x"].shape)})

    todo = list(PHASES) if args.phase == "all" else \
        ([] if args.phase == "load" else [args.phase])
    for name in todo:
        if not args.json and name != "baseline":
            print("%s (threads %d, seed %d):" % (name, args.threads, args.seed))
        t0 = time.perf_counter()
        if name == "baseline":
            res = baseline(d)
        else:
            res = PHASES[name](d, args.seed, not args.json)
        report(name, time.perf_counter() - t0, res)


if __name__ == "__main__":
    main()
