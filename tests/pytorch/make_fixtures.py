#!/usr/bin/env python3
"""make_fixtures.py - PyTorch reference runs for tests/test_pytorch_ref.c.

The pattern of llm.c's test_gpt2: PyTorch trains a few tiny models for a
few steps and writes down everything it saw - the inputs, the initial
weights, and at every step the loss and every parameter's gradient, then the
parameters after the last step. The C test replays the same steps with
cgrad and compares. CI has no PyTorch: it only runs the C test on the
committed fixtures. Run this by hand where PyTorch is installed, from the
repository root:

    /usr/bin/python3 tests/pytorch/make_fixtures.py     # torch >= 1.13, numpy

and commit tests/fixtures/*.bin. The output is deterministic for a given
PyTorch build (one thread, fixed seeds), but only the C test's tolerances
matter, not the bits.

Cases (N = 16 rows of 20 inputs in [0, 1), a fresh mini-batch every step,
5 steps each); the models are cgrad specs, and their PyTorch twins are
nn.Sequential of nn.Linear / nn.ReLU:
  linear_mnist_sgd      "linear", 1 output, the book's mnist_loss, SGD lr 1
                        (the article; weights ~ randn, its init_params)
  mlp_mnist_sgd         "linear:8,relu,linear", mnist_loss, SGD lr 0.1
                        (the book's simple_net)
  mlp_bce_sgd           the same with F.binary_cross_entropy_with_logits
  linear_ce_adam        "linear", 4 classes, F.cross_entropy,
                        Adam(lr 1e-2, betas (0.9, 0.99), eps 1e-5)
  mlp2_ce_sgd_nesterov  "linear:8,relu,linear:6,relu,linear", 4 classes,
                        SGD(lr 0.1, momentum 0.9, nesterov, weight_decay 1e-3)
  mlp2_ce_adamw_1cycle  the same model, AdamW(betas (0.9, 0.99), eps 1e-5,
                        weight_decay 0.01) under fastai's fit_one_cycle
                        (lr_max 1e-2) over the 5 steps

Every hyper-parameter is rounded to float32 first, because cgrad keeps
them as floats: PyTorch then works from the very same numbers.

File format (tests/fixtures/NAME.bin), all little-endian; u32 = uint32,
f32 = IEEE-754 float32:
    char[8]  magic "CGPTFX1\\0"
    char[32] the case's name, NUL-padded
    u32      n_rows, n_in, n_out, n_steps, n_params
    u32      numel[n_params]     each parameter's element count, in cgrad's
                                 order (w1, b1, w2, b2, ...)
    f32      params0[P]          initial parameters, P = sum(numel), each
                                 in cgrad's layout: a linear weight is
                                 [in, out] (nn.Linear's [out, in]
                                 transposed), a bias [out]
    then n_steps times:
      f32    lr, mom             the step's learning rate and momentum
                                 (SGD's momentum or Adam's beta1)
      f32    x[n_rows * n_in]    the mini-batch, row-major
      f32    y[n_rows]           targets: 0/1 (binary: cgrad's [N, 1]
                                 column) or class indices (cross-entropy)
      f32    loss                PyTorch's loss on this batch
      f32    grads[P]            every gradient after loss.backward(),
                                 laid out as params0
    f32      params_final[P]     the parameters after the last step
    char[4]  "END\\0"
"""

import math
import os
import struct
import sys

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    sys.exit("make_fixtures.py needs PyTorch (try /usr/bin/python3)")

MAGIC = b"CGPTFX1\0"
END = b"END\0"
N_ROWS, N_IN, N_STEPS = 16, 20, 5


def f32(v):
    """v rounded to float32, as a Python float (what cgrad's float holds)."""
    return float(np.float32(v))


CASES = [
    dict(name="linear_mnist_sgd", hidden=[], n_out=1, loss="mnist",
         opt=dict(kind="sgd", lr=1.0), init="randn", seed=1),
    dict(name="mlp_mnist_sgd", hidden=[8], n_out=1, loss="mnist",
         opt=dict(kind="sgd", lr=0.1), seed=2),
    dict(name="mlp_bce_sgd", hidden=[8], n_out=1, loss="bce",
         opt=dict(kind="sgd", lr=0.1), seed=3),
    dict(name="linear_ce_adam", hidden=[], n_out=4, loss="ce",
         opt=dict(kind="adam", lr=1e-2), seed=4),
    dict(name="mlp2_ce_sgd_nesterov", hidden=[8, 6], n_out=4, loss="ce",
         opt=dict(kind="sgd", lr=0.1, momentum=0.9, nesterov=True, wd=1e-3), seed=5),
    dict(name="mlp2_ce_adamw_1cycle", hidden=[8, 6], n_out=4, loss="ce",
         opt=dict(kind="adamw", lr=1e-2, wd=0.01), sched="one_cycle", seed=6),
]


def one_cycle(lr_max, pos):
    """fastai's fit_one_cycle(lr_max) at pos in [0, 1): src/optim/schedule.c
    (div 25, div_final 1e5, pct_start 0.25, moms 0.95 / 0.85 / 0.95), in
    double from float32 constants, rounded to float32 at the end."""
    pct, div, div_final = f32(0.25), f32(25.0), f32(1e5)
    mom_max, mom_min, top = f32(0.95), f32(0.85), f32(lr_max)

    def cos_anneal(a, b, x):
        return a + (b - a) * (1.0 - math.cos(math.pi * x)) / 2.0

    pos = min(max(pos, 0.0), 1.0)
    if pos < pct:
        x = pos / pct
        lr, mom = cos_anneal(top / div, top, x), cos_anneal(mom_max, mom_min, x)
    else:
        x = (pos - pct) / (1.0 - pct)
        lr, mom = cos_anneal(top, top / div_final, x), cos_anneal(mom_min, mom_max, x)
    return f32(lr), f32(mom)


def build_model(case):
    layers, n = [], N_IN
    for h in case["hidden"]:
        layers += [torch.nn.Linear(n, h), torch.nn.ReLU()]
        n = h
    layers.append(torch.nn.Linear(n, case["n_out"]))
    model = torch.nn.Sequential(*layers)
    if case.get("init") == "randn":  # the article's init_params(size, std=1)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape))
    return model


def cgrad_params(model):
    """The parameters in cgrad's order and layout, as float32 arrays."""
    out = []
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            out.append(layer.weight.detach().t().contiguous().numpy().astype("<f4").ravel())
            out.append(layer.bias.detach().numpy().astype("<f4").ravel())
    return out


def cgrad_grads(model):
    out = []
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            out.append(layer.weight.grad.t().contiguous().numpy().astype("<f4").ravel())
            out.append(layer.bias.grad.numpy().astype("<f4").ravel())
    return out


def make_optimizer(case, model):
    o = case["opt"]
    lr = f32(o["lr"])
    if o["kind"] == "sgd":
        mom = f32(o.get("momentum", 0.0))
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=mom,
                               nesterov=o.get("nesterov", False),
                               weight_decay=f32(o.get("wd", 0.0))), mom
    betas = (f32(0.9), f32(0.99))
    cls = torch.optim.AdamW if o["kind"] == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=lr, betas=betas, eps=f32(1e-5),
               weight_decay=f32(o.get("wd", 0.0))), betas[0]


def loss_fn(kind, logits, y):
    if kind == "mnist":  # the book's mnist_loss
        s = logits.sigmoid()
        return torch.where(y == 1, 1 - s, s).mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits, y.long())


def run_case(case):
    torch.manual_seed(case["seed"])
    rng = np.random.default_rng(1000 + case["seed"])
    model = build_model(case)
    opt, mom0 = make_optimizer(case, model)
    sizes = [p.size for p in cgrad_params(model)]

    out = bytearray()
    name = case["name"].encode()
    assert len(name) < 32
    out += MAGIC + name.ljust(32, b"\0")
    out += struct.pack("<5I", N_ROWS, N_IN, case["n_out"], N_STEPS, len(sizes))
    out += struct.pack("<%dI" % len(sizes), *sizes)
    for p in cgrad_params(model):
        out += p.tobytes()

    losses = []
    for step in range(N_STEPS):
        lr, mom = f32(case["opt"]["lr"]), mom0
        if case.get("sched") == "one_cycle":
            lr, mom = one_cycle(case["opt"]["lr"], step / N_STEPS)
            for g in opt.param_groups:
                g["lr"] = lr
                g["betas"] = (mom, g["betas"][1])
        x = rng.random((N_ROWS, N_IN), dtype=np.float32)
        if case["loss"] == "ce":
            y = rng.integers(0, case["n_out"], N_ROWS).astype(np.float32)
            yt = torch.from_numpy(y)
        else:
            y = rng.integers(0, 2, N_ROWS).astype(np.float32)
            yt = torch.from_numpy(y).unsqueeze(1)  # [N, 1], as cgrad's targets
        opt.zero_grad()
        loss = loss_fn(case["loss"], model(torch.from_numpy(x)), yt)
        loss.backward()
        out += struct.pack("<2f", lr, mom)
        out += x.astype("<f4").tobytes() + y.astype("<f4").tobytes()
        out += struct.pack("<f", loss.item())
        for g in cgrad_grads(model):
            out += g.tobytes()
        opt.step()
        losses.append(loss.item())

    for p in cgrad_params(model):
        out += p.tobytes()
    out += END
    return bytes(out), losses


def main():
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.join(os.path.dirname(here), "fixtures")
    os.makedirs(outdir, exist_ok=True)
    print("torch %s, numpy %s" % (torch.__version__, np.__version__))
    for case in CASES:
        data, losses = run_case(case)
        path = os.path.join(outdir, case["name"] + ".bin")
        with open(path, "wb") as f:
            f.write(data)
        print("%-22s %6d bytes  loss %s" % (case["name"], len(data),
                                            " ".join("%.5f" % l for l in losses)))


if __name__ == "__main__":
    main()
