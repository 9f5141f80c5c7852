#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures that models/torch_parity_test.go reads.

Run with Debian's PyTorch 1.13 (CI has no torch; it only reads the output):

    /usr/bin/python3 testdata/torch/make_fixtures.py

It defines the reference CIFAR ResNet with the module names of package models
and the ternarization of /work/shared/method.md §1-§2 as an autograd Function,
and writes, next to this script:

  init.safetensors        the shared initial state_dict (plain PyTorch names,
                          num_batches_tracked as I64), loadable as is.
  <case>.safetensors      for tern_resnet20 t_ex=1 (tern1), t_ex=2 (tern2) and
                          resnet20 (fp): x, labels (F32), train-mode logits,
                          loss [1], alpha.<layer> [t_ex], grad.<param>,
                          after.<bn buffer>, eval_logits, step1.<param>,
                          logits2, loss2, grad2.<param>, step2.<param>
                          (SGD lr 0.1, Nesterov momentum 0.9, decay 3e-4).
  ternary.safetensors     standalone Tern(W; 0.05) and REL t_ex=2, 4 outputs,
                          alphas, thresholds and STE gradients.

Why the init is shared and the step tensors are a subset: ResNet-20 has
269,434 parameters (1.08 MB as F32), so init + grads + two steps would be
4.3 MB per case. All three cases draw the same init from the same seed (the
modules are created in the same order), so it is stored once; step1/step2 are
stored (with the second gradient, grad2) for the parameters with at most
STEP_MAX_NUMEL elements: every BN parameter, the first conv, stage_1,
stage_2.0.conv_a and the classifier. The second step still depends on every
first-step update through logits2/loss2. Each case file is ~1.36 MB.

Each case has its own input: the generator draws inputs until no ReLU input
and no ternary threshold comparison of the two training steps lies within
float noise of its kink (see kink_margins); the attempt is in the metadata.

The init departs from the reference's in ways that make the test sensitive:
every ternarized weight gets three latent values with 1 <= |W| < 1.5 (in
every fourth layer one is exactly +-1) so that the STE cut is exercised; BN affine parameters and
running statistics are random, and the classifier bias is nonzero, so that
swapped/ignored BN parameters, a wrong momentum or a missing (or k-fold) bias
change the numbers.
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20190107
BATCH, CIN, H, W, CLASSES = 4, 1, 12, 12, 10
LR, MOMENTUM, DECAY = 0.1, 0.9, 3e-4
STEP_MAX_NUMEL = 4608


class Tern(torch.autograd.Function):
    """Tern(W; t) of method.md §1, with the reference's float32 threshold."""

    @staticmethod
    def forward(ctx, w, t):
        ctx.save_for_backward(w)
        # A Python float times a float32 0-dim tensor stays float32, so th is
        # fl32(fl32(t) * max|W|), the rounding package ternary reproduces.
        th = t * w.abs().max()
        alpha = w.abs()[w.abs() >= th].mean()
        return torch.where(w >= th, alpha, torch.where(w <= -th, -alpha, torch.zeros_like(w)))

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        g = g.clone()
        g[w.abs() >= 1] = 0
        return g, None


def tern_weight(w, tex):
    out = Tern.apply(w, 0.05)
    for i in range(2, tex + 1):
        out = out + Tern.apply(w, 0.05 * i)
    return out


def alphas(w, tex):
    a = []
    for i in range(1, tex + 1):
        th = (0.05 * i) * w.abs().max()
        a.append(w.abs()[w.abs() >= th].mean())
    return torch.stack(a)


class TConv(nn.Conv2d):
    def __init__(self, *args, tex=0, **kw):
        super().__init__(*args, **kw)
        self.tex = tex

    def forward(self, x):
        w = tern_weight(self.weight, self.tex) if self.tex else self.weight
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class TLinear(nn.Linear):
    def __init__(self, *args, tex=0, **kw):
        super().__init__(*args, **kw)
        self.tex = tex

    def forward(self, x):
        # The bias is added once, not once per REL term (method.md §2).
        w = tern_weight(self.weight, self.tex) if self.tex else self.weight
        return F.linear(x, w, self.bias)


class DownsampleA(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.avg = nn.AvgPool2d(kernel_size=1, stride=stride)

    def forward(self, x):
        x = self.avg(x)
        return torch.cat((x, x.mul(0)), 1)


class ResNetBasicblock(nn.Module):
    def __init__(self, cin, cout, stride, tex):
        super().__init__()
        self.conv_a = TConv(cin, cout, 3, stride, 1, bias=False, tex=tex)
        self.bn_a = nn.BatchNorm2d(cout)
        self.conv_b = TConv(cout, cout, 3, 1, 1, bias=False, tex=tex)
        self.bn_b = nn.BatchNorm2d(cout)
        self.downsample = DownsampleA(stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = relu(self.bn_a(self.conv_a(x)))
        y = self.bn_b(self.conv_b(y))
        r = self.downsample(x) if self.downsample is not None else x
        return relu(r + y)


class CifarResNet(nn.Module):
    def __init__(self, depth, cin, classes, tex):
        super().__init__()
        n = (depth - 2) // 6
        self.conv_1_3x3 = TConv(cin, 16, 3, 1, 1, bias=False, tex=tex)
        self.bn_1 = nn.BatchNorm2d(16)
        c = 16
        for s, width in enumerate([16, 32, 64]):
            blocks = []
            for i in range(n):
                blocks.append(ResNetBasicblock(c, width, 2 if s > 0 and i == 0 else 1, tex))
                c = width
            setattr(self, "stage_%d" % (s + 1), nn.Sequential(*blocks))
        self.classifier = TLinear(64, classes, tex=tex)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                m.bias.data.zero_()

    def forward(self, x):
        x = relu(self.bn_1(self.conv_1_3x3(x)))
        x = self.stage_3(self.stage_2(self.stage_1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)

    def quantized(self):
        return [(n, m) for n, m in self.named_modules() if isinstance(m, (TConv, TLinear))]


def perturb(net, g):
    """Makes the init exercise what the reference init leaves untouched."""
    with torch.no_grad():
        for k, (_, m) in enumerate(net.quantized()):
            w = m.weight.view(-1)
            idx = torch.randperm(w.numel(), generator=g)[:3]
            mag = 1.0 + 0.5 * torch.rand(3, generator=g)
            if k % 4 == 0:
                mag[0] = 1.0  # exactly at the cut: |W| >= 1 is cut
            sign = torch.where(torch.rand(3, generator=g) < 0.5, -1.0, 1.0)
            w[idx] = sign * mag
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
        net.classifier.bias.copy_(0.2 * torch.randn(CLASSES, generator=g))


def make_net(tex):
    torch.manual_seed(SEED)
    net = CifarResNet(20, CIN, CLASSES, tex)
    perturb(net, torch.Generator().manual_seed(SEED + 1))
    return net


def save_safetensors(path, tensors, meta):
    """safetensors written by hand (the package is not in Debian): 8-byte LE
    header length, JSON header, then the tensors back to back. I64 tensors come
    first so that every tensor is aligned for its dtype."""
    items = sorted(tensors.items(), key=lambda kv: kv[1].dtype != torch.int64)
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in items:
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.int64:
            dt = "I64"
        else:
            t, dt = t.to(torch.float32), "F32"
        b = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print("%-28s %8d bytes, %d tensors" % (os.path.relpath(path, HERE), os.path.getsize(path), len(tensors)))


def relu(x):
    if TRACE is not None:
        TRACE.append(x.detach())
    return F.relu(x)


# TRACE collects every ReLU input while a case runs (see kink_margins).
TRACE = None


def kink_margins(acts, net, tex):
    """Returns how close the run comes to a kink, as a multiple of the margin
    it must keep (>= 1 is safe), for the ReLUs and the ternary thresholds.

    The backward pass is discontinuous in a ReLU input at 0 and, for ternary
    layers, in a latent weight at +-th: an input within float noise of such
    a kink may fall on the other side in Go than in torch, and then whole
    gradient tensors legitimately differ by percents. Measured Go-vs-torch
    noise: pre-ReLU activations differ by at most ~2e-6 * max|v| of their
    tensor in the first forward and ~4e-6 * max|v| in the second (maxima
    over ~10^4 elements; an element near 0 typically errs far less), so every
    ReLU input must keep RELU_MARGIN * max|v| away from 0. After the first
    step the latent weights differ by lr * 1.9 * gradient noise, at most
    ~4e-7 * max|grad| of the layer, so a weight must keep TERN_MARGIN *
    max|grad| + 4 ulps from every threshold. Much stricter margins cannot be
    met: with ~10^5 ReLU inputs per forward and ~2.7 * 10^5 weights, the
    nearest to a kink is typically ~1e-6 * max|v| (~1e-7 * max|grad|) away,
    and the generator already draws hundreds of inputs per case.
    """
    r = min(((a.abs().min() / (RELU_MARGIN * a.abs().max())).item() for a in acts), default=math.inf)
    t = math.inf
    for _, m in net.quantized() if tex else []:
        w = m.weight.detach().abs()
        for i in range(1, tex + 1):
            th = (0.05 * i) * w.max()
            need = TERN_MARGIN * m.weight.grad.abs().max() + 4 * 1.2e-7 * th
            t = min(t, ((w - th).abs().min() / need).item())
    return r, t


RELU_MARGIN = 3e-6
TERN_MARGIN = 4e-7


def run_case(name, tex, xgen, y, init):
    """Draws inputs from xgen until both training steps keep clear of every
    kink (see kink_margins), then writes the case."""
    global TRACE
    for attempt in range(5000):
        x = torch.randn(BATCH, CIN, H, W, generator=xgen)
        TRACE = []
        out = one_case(tex, x, y, init)
        TRACE = None
        if out is not None:
            break
    else:
        raise SystemExit("%s: no input keeps clear of the kinks" % name)
    meta = {
        "torch_version": torch.__version__,
        "arch": "tern_resnet20" if tex else "resnet20",
        "t_ex": str(tex),
        "seed": str(SEED),
        "input_attempt": str(attempt),
        "sgd": "lr=%g momentum=%g nesterov=True weight_decay=%g" % (LR, MOMENTUM, DECAY),
    }
    save_safetensors(os.path.join(HERE, name + ".safetensors"), out, meta)


def one_case(tex, x, y, init):
    net = make_net(tex)
    for k, v in net.state_dict().items():
        assert torch.equal(v, init[k]), "init differs between cases at " + k
    params = dict(net.named_parameters())
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY, nesterov=True)
    out = {"x": x, "labels": y.float()}

    net.train()
    logits = net(x)
    relu0, _ = kink_margins(TRACE, net, 0)
    if relu0 < 1:
        return None
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    out["logits"] = logits
    out["loss"] = loss.reshape(1)
    if tex:
        for lname, m in net.quantized():
            out["alpha." + lname] = alphas(m.weight.detach(), tex)
    for pname, p in params.items():
        out["grad." + pname] = p.grad.clone()  # zero_grad() later zeroes it in place
    for bname, b in net.named_buffers():
        out["after." + bname] = b.clone()
    net.eval()
    with torch.no_grad():
        out["eval_logits"] = net(x)
    net.train()

    opt.step()
    # The thresholds of the second forward move with the step: check them
    # against the weights it will ternarize.
    _, tern1 = kink_margins([], net, tex)
    if tern1 < 1:
        return None
    for pname, p in params.items():
        if p.numel() <= STEP_MAX_NUMEL:
            out["step1." + pname] = p.detach().clone()
    TRACE.clear()
    logits2 = net(x)
    loss2 = F.cross_entropy(logits2, y)
    opt.zero_grad()
    loss2.backward()
    relu1, _ = kink_margins(TRACE, net, 0)
    if relu1 < 1:
        return None
    for pname, p in params.items():
        if p.numel() <= STEP_MAX_NUMEL:
            out["grad2." + pname] = p.grad.clone()
    opt.step()
    out["logits2"] = logits2
    out["loss2"] = loss2.reshape(1)
    for pname, p in params.items():
        if p.numel() <= STEP_MAX_NUMEL:
            out["step2." + pname] = p.detach().clone()
    print("  margins: relu %.2f, %.2f  ternary %.2f" % (relu0, relu1, tern1))
    return out


def ternary_fixture():
    g = torch.Generator().manual_seed(SEED + 2)
    ws = {
        "conv": torch.randn(16, 1, 3, 3, generator=g) * 0.47,
        "wide": torch.randn(10, 64, generator=g) * 0.18,
        "odd": torch.randn(7, generator=g),
        "big": torch.randn(8, 4, 3, 3, generator=g) * 0.8,  # many |W| >= 1
    }
    # Values exactly at +-th for every factor: max|W| = 2 is a power of two,
    # so fl32(t) * 2 is exact and th lands on representable values.
    ties = torch.randn(40, generator=g) * 0.3
    ties[0] = 2.0
    for i, t in enumerate([0.05, 0.1, 0.15000000000000002, 0.2]):
        th = torch.tensor(t, dtype=torch.float32) * 2.0
        ties[1 + 2 * i] = th
        ties[2 + 2 * i] = -th
    ties[9] = -1.0
    ties[10] = 0.0
    ws["ties"] = ties
    ws["equal"] = torch.tensor([0.5, -0.5, 0.5, 0.5, -0.5, 0.5])
    ws["zero"] = torch.zeros(5)
    out = {}
    for name, w in ws.items():
        out[name + ".w"] = w
        gout = torch.randn(w.shape, generator=g)
        out[name + ".gout"] = gout
        for tex in (1, 2, 4):
            wl = w.clone().requires_grad_(True)
            wt = tern_weight(wl, tex)
            wt.backward(gout)
            out["%s.tex%d" % (name, tex)] = wt.detach()
            out["%s.alpha%d" % (name, tex)] = alphas(w, tex)
            out["%s.th%d" % (name, tex)] = torch.stack([(0.05 * i) * w.abs().max() for i in range(1, tex + 1)])
            out["%s.grad%d" % (name, tex)] = wl.grad
    save_safetensors(os.path.join(HERE, "ternary.safetensors"), out, {"torch_version": torch.__version__})


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    init = {k: v.clone() for k, v in make_net(1).state_dict().items()}
    save_safetensors(os.path.join(HERE, "init.safetensors"), init, {"torch_version": torch.__version__, "seed": str(SEED)})
    y = torch.tensor([3, 7, 0, 7])
    for k, (name, tex) in enumerate((("tern1", 1), ("tern2", 2), ("fp", 0))):
        run_case(name, tex, torch.Generator().manual_seed(SEED + 3 + k), y, init)
    ternary_fixture()


if __name__ == "__main__":
    main()
