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

The image cases (N = 8 images of 1x8x8 in [0, 1), 4 steps each, 3 classes,
F.cross_entropy, train mode: batch norm on the batch's statistics):
  cnn_bn_adamw          "conv:4:3:2,relu,bn,conv:6:3:2,relu,bn,conv:3:3:2,bn,
                        flatten", fastbook's simple_cnn style: nn.Conv2d(ni,
                        nf, 3, stride=2, padding=1), nn.ReLU, nn.BatchNorm2d,
                        ..., nn.Flatten; AdamW(lr 1e-2, betas (0.9, 0.99),
                        eps 1e-5, weight_decay 0.01)
  resblock_sgd_mom      "conv:4:3,bn,relu,res:6:2,gap,linear": cgrad's res
                        block (src/nn/layers/residual.c) written out in
                        PyTorch - relu(bn1(conv3x3 stride 2)), bn2(conv3x3),
                        shortcut bn3(conv1x1 stride 2), relu of the sum, all
                        convs without bias - then the mean over H, W and
                        nn.Linear; SGD(lr 0.05, momentum 0.9)
Every batch norm's gamma and beta start random (gamma ~ 1 + 0.2 U(-1, 1),
beta ~ 0.1 U(-1, 1)), not 1 / 0: cgrad starts a res block's bn2 gamma at 0,
and the fixture's values replace cgrad's anyway. The running statistics
start at PyTorch's 0 / 1; the fixture records them after the last step.

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

Cases with running statistics (batch norm) are written in version 2, magic
"CGPTFX2\\0": the same with n_state and the state's sizes and values added:
    char[8]  magic "CGPTFX2\\0"
    char[32] the case's name
    u32      n_rows, n_in, n_out, n_steps, n_params, n_state
    u32      numel[n_params]
    u32      state_numel[n_state]  cgrad's m->layers[i].state, layer by
                                   layer (bn: running_mean, running_var;
                                   res: rm1, rv1, rm2, rv2, rm3, rv3)
    f32      params0[P]            a conv weight is [out, in, kh, kw] as
                                   PyTorch's; a linear weight transposed
    f32      state0[S]             S = sum(state_numel)
    then n_steps times the same step records as version 1
    f32      params_final[P]
    f32      state_final[S]        the running statistics after the steps
    char[4]  "END\\0"
An image row of x is one 1x8x8 image flattened (n_in = 64).
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
MAGIC2 = b"CGPTFX2\0"
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
    dict(name="cnn_bn_adamw", arch="cnn", n_out=3, loss="ce", rows=8, n_in=64, steps=4,
         opt=dict(kind="adamw", lr=1e-2, wd=0.01), seed=7),
    dict(name="resblock_sgd_mom", arch="resblock", n_out=3, loss="ce", rows=8, n_in=64,
         steps=4, opt=dict(kind="sgd", lr=0.05, momentum=0.9), seed=8),
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


class ResBlock(torch.nn.Module):
    """cgrad's "res:OUT:STRIDE" (src/nn/layers/residual.c), with the
    projection shortcut (stride != 1 or a change of channels)."""

    def __init__(self, ni, nf, stride):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(ni, nf, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(nf)
        self.conv2 = nn.Conv2d(nf, nf, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(nf)
        self.conv3 = nn.Conv2d(ni, nf, 1, stride=stride, padding=0, bias=False)
        self.bn3 = nn.BatchNorm2d(nf)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + self.bn3(self.conv3(x)))


class GlobalAvgPool(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class ToImage(torch.nn.Module):
    """[N, 64] rows -> [N, 1, 8, 8], as cgrad's forward reshapes them."""

    def forward(self, x):
        return x.view(x.shape[0], 1, 8, 8)


def build_image_model(case):
    nn = torch.nn
    if case["arch"] == "cnn":
        def conv(ni, nf):
            return nn.Conv2d(ni, nf, 3, stride=2, padding=1)
        layers = [conv(1, 4), nn.ReLU(), nn.BatchNorm2d(4), conv(4, 6), nn.ReLU(),
                  nn.BatchNorm2d(6), conv(6, 3), nn.BatchNorm2d(3), nn.Flatten()]
    else:
        layers = [nn.Conv2d(1, 4, 3, stride=1, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                  ResBlock(4, 6, 2), GlobalAvgPool(), nn.Linear(6, case["n_out"])]
    model = nn.Sequential(ToImage(), *layers)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.weight.copy_(1 + 0.2 * (2 * torch.rand(bn.weight.shape) - 1))
                bn.bias.copy_(0.1 * (2 * torch.rand(bn.bias.shape) - 1))
    return model


def param_list(model):
    """(tensor, transpose) for every parameter, in cgrad's order: modules
    in order, each one's weight then bias (nn.Linear's weight transposed to
    cgrad's [in, out]; a conv weight [out, in, kh, kw] is cgrad's as is)."""
    out = []
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.BatchNorm2d)):
            out.append((mod.weight, isinstance(mod, torch.nn.Linear)))
            if mod.bias is not None:
                out.append((mod.bias, False))
    return out


def state_list(model):
    """Every batch norm's running_mean, running_var, in module order: cgrad's
    layers' state (a res block's rm1, rv1, rm2, rv2, rm3, rv3)."""
    out = []
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            out += [mod.running_mean, mod.running_var]
    return out


def as_f32(t, transpose=False):
    t = t.detach()
    if transpose:
        t = t.t()
    return t.contiguous().numpy().astype("<f4").ravel()


def cgrad_params(model):
    """The parameters in cgrad's order and layout, as float32 arrays."""
    return [as_f32(p, t) for p, t in param_list(model)]


def cgrad_grads(model):
    return [as_f32(p.grad, t) for p, t in param_list(model)]


def cgrad_state(model):
    return [as_f32(s) for s in state_list(model)]


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
    image = "arch" in case
    model = build_image_model(case) if image else build_model(case)
    model.train()
    opt, mom0 = make_optimizer(case, model)
    sizes = [p.size for p in cgrad_params(model)]
    ssizes = [st.size for st in cgrad_state(model)]
    n_rows, n_in = case.get("rows", N_ROWS), case.get("n_in", N_IN)
    n_steps = case.get("steps", N_STEPS)

    out = bytearray()
    name = case["name"].encode()
    assert len(name) < 32
    out += (MAGIC2 if ssizes else MAGIC) + name.ljust(32, b"\0")
    out += struct.pack("<5I", n_rows, n_in, case["n_out"], n_steps, len(sizes))
    if ssizes:
        out += struct.pack("<I", len(ssizes))
    out += struct.pack("<%dI" % len(sizes), *sizes)
    out += struct.pack("<%dI" % len(ssizes), *ssizes)
    for p in cgrad_params(model):
        out += p.tobytes()
    for st in cgrad_state(model):
        out += st.tobytes()

    losses = []
    for step in range(n_steps):
        lr, mom = f32(case["opt"]["lr"]), mom0
        if case.get("sched") == "one_cycle":
            lr, mom = one_cycle(case["opt"]["lr"], step / n_steps)
            for g in opt.param_groups:
                g["lr"] = lr
                g["betas"] = (mom, g["betas"][1])
        x = rng.random((n_rows, n_in), dtype=np.float32)
        if case["loss"] == "ce":
            y = rng.integers(0, case["n_out"], n_rows).astype(np.float32)
            yt = torch.from_numpy(y)
        else:
            y = rng.integers(0, 2, n_rows).astype(np.float32)
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
    for st in cgrad_state(model):
        out += st.tobytes()
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
