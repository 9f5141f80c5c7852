#!/usr/bin/env python3
"""Writes the PyTorch fixtures that package pth's tests read.

Run with PyTorch 1.13 and torchvision 0.14 (CI has no torch; it only reads
the output):

    python3 pth/testdata/make_fixtures.py           # writes the fixtures
    python3 pth/testdata/make_fixtures.py --check   # torch.load()s go_written.pth

Every file is written with torch.save, then gzip-compressed (*.gz) for git:

  resnet18.pth            torchvision resnet18 state_dict (1000 classes), zip container
  resnet18_legacy.pth     the same weights as torchvision's own pretrained files
                          are stored (resnet18-5c106cde.pth): legacy container,
                          tensors pickled with torch._utils._rebuild_tensor (v1),
                          no num_batches_tracked entries
  resnet50.pth            torchvision resnet50 state_dict (bottleneck blocks)
  alexnet_bn.pth          the seed's AlexNet with BatchNorm (package models'
                          alexnet_vanilla), 10 classes
  formats.pth             one tensor per dtype (float16, bfloat16, float64, int64,
                          int32, int16, int8, uint8, bool) and per layout (0-dim,
                          empty, transposed, sliced view sharing a storage,
                          stride-0 expand, permuted 4-D), each "x.<case>" with
                          its float32 contiguous copy "want.<case>"
  formats_legacy.pth      the same, legacy container
  seed_tern_resnet20.pth.tar
                          what the seed's main.py saves (PyTorch 0.4.1, so the
                          legacy container): {'epoch', 'arch', 'state_dict'
                          (DataParallel, 'module.' names), 'recorder' (a
                          utils.RecorderMeter holding numpy arrays), 'optimizer'
                          (SGD state with momentum buffers)}; a CIFAR ResNet-20
                          for 1x28x28 input, 10 classes
  expect.safetensors      inputs and PyTorch's eval-mode outputs:
                          x32 [2,3,32,32], x64 [2,3,64,64], x28 [2,1,28,28];
                          out.resnet18, out.resnet18b_fq_lq_tern_tex_2,
                          out.resnet50, out.alexnet_vanilla,
                          out.tern_alexnet_fq_lq, out.tern_resnet20

Why the weights look the way they do: real or random weights do not
compress (ResNet-50 is 100 MB of float32). Every tensor is filled instead with
a periodic sequence, value[i] = ((i*a + b) mod p - (p-1)/2) * s, a prime
period p and a, b that differ per tensor, s scaled so conv and linear weights
have He variance (2/fan_in) and activations neither vanish nor explode; BN
weights near 1, running_var in [0.5, 1.5]. Rows of a weight matrix are shifted
copies of the sequence, so channels and classes differ; gzip (LZ77) shrinks
the files several hundredfold. The primes are chosen so that no weight lies
within 0.1*s of a ternarization threshold t*i*max|W| (t = 0.05, i = 1..4):
the ternary expectations cannot flip on float rounding.

The ternary expectations use the reference ternarization (method.md §1-§3):
Tern(W; t) with th = t*max|W| as a float32 product, alpha = mean |W| over
|W| >= th; with t_ex = k the effective weight is the sum over t = 0.05*i,
i = 1..k; every Conv2d and Linear weight is ternarized (fq_lq), biases and
BatchNorm stay full precision, a bias is added once.
"""
import collections
import gzip
import io
import json
import os
import pickle
import struct
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))


def prime(n):
    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def far_from_thresholds(p):
    # max|W| = h*s with h = (p-1)/2; thresholds 0.05*i*h*s for i = 1..4 must
    # lie at least 0.1*s from every multiple of s: (p-1)*i mod 40 in [4, 36].
    return all(4 <= ((p - 1) * i) % 40 <= 36 for i in range(1, 5))


PRIMES = [p for p in range(29, 400) if prime(p) and far_from_thresholds(p)]
BIG_PRIMES = [p for p in range(900, 1100) if prime(p) and far_from_thresholds(p)]


def periodic(numel, j, p=None):
    """Integers k - (p-1)/2, k = (i*a + b) mod p, as float64 of mean 0."""
    p = p or PRIMES[j % len(PRIMES)]
    a = 1 + (j * 7) % (p - 1)
    b = (j * 13) % p
    i = torch.arange(numel, dtype=torch.int64)
    return ((i * a + b) % p - (p - 1) // 2).double(), p


def fill(sd, classifier):
    """Replaces every tensor of a state_dict by its periodic stand-in."""
    out = collections.OrderedDict()
    for j, (name, t) in enumerate(sd.items()):
        n = t.numel()
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor((j * 37) % 1000 + 1, dtype=torch.int64)
            continue
        v, p = periodic(n, j, BIG_PRIMES[j % len(BIG_PRIMES)] if name == classifier else None)
        h = (p - 1) / 2
        if t.dim() >= 2:  # conv or linear weight: He variance
            fan_in = n // t.shape[0]
            s = (2.0 / fan_in) ** 0.5 / ((p * p - 1) / 12.0) ** 0.5
            w = v * s
        elif name.endswith("running_var"):
            w = 1.0 + v * (0.5 / h)
        elif name.endswith("running_mean"):
            w = v * (0.1 / h)
        elif name.endswith("weight"):  # BatchNorm scale
            w = 1.0 + v * (0.2 / h)
        else:  # BatchNorm shift, linear bias
            w = v * (0.1 / h)
        out[name] = w.float().reshape(t.shape).contiguous()
    return out


def inputs(shape, mult, add):
    i = torch.arange(int(np.prod(shape)), dtype=torch.int64)
    return (((i * mult + add) % 1021 - 510).float() / 256).reshape(shape)


# The reference ternarization (method.md §1-§2).
def tern(w, t):
    th = t * w.abs().max()  # float32: fl32(fl32(t) * max|W|)
    alpha = w.abs()[w.abs() >= th].mean()
    return torch.where(w >= th, alpha, torch.where(w <= -th, -alpha, torch.zeros_like(w)))


def tern_weight(w, tex):
    out = tern(w, 0.05)
    for i in range(2, tex + 1):
        out = out + tern(w, 0.05 * i)
    return out


def ternarized(model, sd, tex):
    """model with every Conv2d and Linear weight replaced by its ternary W_eff."""
    q = collections.OrderedDict(sd)
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            q[name + ".weight"] = tern_weight(sd[name + ".weight"], tex)
    return q


def run(model, sd, x):
    model.load_state_dict(sd)
    model.eval()
    with torch.no_grad():
        return model(x)


def alexnet_bn(classes, cin=3):
    """method.md §4; names as package models' alexnet_vanilla."""
    m = nn.Module()
    m.features = nn.Sequential(
        nn.Conv2d(cin, 96, 11, 4, 2, bias=False), nn.BatchNorm2d(96), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, 1, 2, bias=False), nn.BatchNorm2d(256), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, 1, 1, bias=False), nn.BatchNorm2d(384), nn.ReLU(),
        nn.Conv2d(384, 384, 3, 1, 1, bias=False), nn.BatchNorm2d(384), nn.ReLU(),
        nn.Conv2d(384, 256, 3, 1, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(), nn.MaxPool2d(3, 2))
    m.classifier = nn.Sequential(
        nn.Linear(256, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(),
        nn.Linear(4096, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(),
        nn.Linear(4096, classes))
    m.forward = lambda x: m.classifier(torch.flatten(m.features(x), 1))
    return m


class DownsampleA(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.avg = nn.AvgPool2d(kernel_size=1, stride=stride)

    def forward(self, x):
        x = self.avg(x)
        return torch.cat((x, x.mul(0)), 1)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv_a = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(cout)
        self.conv_b = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(cout)
        self.downsample = DownsampleA(stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = F.relu(self.bn_a(self.conv_a(x)))
        y = self.bn_b(self.conv_b(y))
        return F.relu((self.downsample(x) if self.downsample is not None else x) + y)


class CifarResNet(nn.Module):
    """The reference's CIFAR ResNet (package models' resnet20 names)."""

    def __init__(self, depth, cin, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv_1_3x3 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(16)
        c = 16
        for s, width in enumerate([16, 32, 64]):
            blocks = []
            for i in range(n):
                blocks.append(Block(c, width, 2 if s > 0 and i == 0 else 1))
                c = width
            setattr(self, "stage_%d" % (s + 1), nn.Sequential(*blocks))
        self.classifier = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn_1(self.conv_1_3x3(x)))
        x = self.stage_3(self.stage_2(self.stage_1(x)))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


# The seed's training recorder, pickled as utils.RecorderMeter like its files.
utils = types.ModuleType("utils")
sys.modules["utils"] = utils


class RecorderMeter:
    def __init__(self, total_epoch):
        self.total_epoch = total_epoch
        self.current_epoch = 0
        self.epoch_losses = np.zeros((total_epoch, 2), dtype=np.float32)
        self.epoch_accuracy = np.zeros((total_epoch, 2), dtype=np.float32)


RecorderMeter.__module__ = "utils"
utils.RecorderMeter = RecorderMeter


class OldPickler(pickle.Pickler):
    """Pickles tensors as torch ≤ 0.3 did: _rebuild_tensor(storage, offset, size, stride)."""

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            return (torch._utils._rebuild_tensor, (obj.storage(), obj.storage_offset(), tuple(obj.size()), obj.stride()))
        return NotImplemented


OLD_PICKLE = types.SimpleNamespace(Pickler=OldPickler, dump=pickle.dump, __name__="pickle")


def save_gz(obj, name, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    raw = buf.getvalue()
    # torch.load of the exact bytes, as a user's PyTorch would read them.
    back = torch.load(io.BytesIO(raw))
    with open(os.path.join(HERE, name + ".gz"), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as g:
            g.write(raw)
    print("%-32s %10d bytes, %8d gzipped" % (name, len(raw), os.path.getsize(os.path.join(HERE, name + ".gz"))))
    return back


def save_safetensors_gz(path, tensors):
    """F32 safetensors by hand (the package is not in Debian), gzipped."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    raw = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as g:
            g.write(raw)


def formats():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
    x = collections.OrderedDict()
    x["f32"] = base
    x["f16"] = (base * 3 + 0.1).half()
    x["bf16"] = (base * 5 + 0.3).bfloat16()
    x["f64"] = base.double() / 3
    x["i64"] = torch.tensor([-3, 0, 7, 2 ** 40], dtype=torch.int64)
    x["i32"] = torch.tensor([-70000, 1, 2 ** 30], dtype=torch.int32)
    x["i16"] = torch.tensor([-300, 5, 32767], dtype=torch.int16)
    x["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    x["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    x["bool"] = torch.tensor([True, False, True])
    x["scalar"] = torch.tensor(2.5)
    x["empty"] = torch.zeros(0, 5)
    x["transposed"] = base.t()
    x["slice"] = base[1:3, 2:5]  # storage offset 8, shares base's storage
    x["expanded"] = torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1).expand(3, 4)
    x["permuted"] = torch.arange(120, dtype=torch.float32).reshape(2, 3, 4, 5).permute(0, 2, 3, 1)
    x["f16_transposed"] = (base * 7 - 0.2).half().t()
    assert not x["transposed"].is_contiguous() and x["slice"].storage_offset() == 8
    sd = collections.OrderedDict()
    for k, v in x.items():
        sd["x." + k] = v
    for k, v in x.items():
        sd["want." + k] = v.float().contiguous().clone()
    return sd


def main():
    torch.set_num_threads(2)
    x32 = inputs((2, 3, 32, 32), 7919, 13)
    x64 = inputs((2, 3, 64, 64), 7907, 29)
    x28 = inputs((2, 1, 28, 28), 7901, 3)
    expect = collections.OrderedDict(x32=x32, x64=x64, x28=x28)

    r18 = torchvision.models.resnet18()
    sd18 = fill(r18.state_dict(), "fc.weight")
    back = save_gz(sd18, "resnet18.pth")
    assert all(torch.equal(back[k], sd18[k]) for k in sd18)
    expect["out.resnet18"] = run(r18, sd18, x32)
    expect["out.resnet18b_fq_lq_tern_tex_2"] = run(r18, ternarized(r18, sd18, 2), x32)

    old = collections.OrderedDict((k, v) for k, v in sd18.items() if not k.endswith("num_batches_tracked"))
    back = save_gz(old, "resnet18_legacy.pth", pickle_module=OLD_PICKLE, _use_new_zipfile_serialization=False)
    torchvision.models.resnet18().load_state_dict(back)  # strict: as torchvision loads its own files

    r50 = torchvision.models.resnet50()
    sd50 = fill(r50.state_dict(), "fc.weight")
    save_gz(sd50, "resnet50.pth")
    expect["out.resnet50"] = run(r50, sd50, x32)

    alex = alexnet_bn(10)
    sda = fill(alex.state_dict(), "classifier.6.weight")
    save_gz(sda, "alexnet_bn.pth")
    expect["out.alexnet_vanilla"] = run(alex, sda, x64)
    expect["out.tern_alexnet_fq_lq"] = run(alex, ternarized(alex, sda, 1), x64)

    fm = formats()
    back = save_gz(fm, "formats.pth")
    assert all(torch.equal(back[k], fm[k]) for k in fm)
    back = save_gz(fm, "formats_legacy.pth", _use_new_zipfile_serialization=False)
    assert all(torch.equal(back[k], fm[k]) for k in fm)

    net = CifarResNet(20, 1, 10)
    sd20 = fill(net.state_dict(), "classifier.weight")
    expect["out.tern_resnet20"] = run(net, ternarized(net, sd20, 1), x28)
    net.load_state_dict(sd20)
    dp = nn.DataParallel(net)
    # No weight decay here: it would mix the two periods and spoil the compression.
    opt = torch.optim.SGD(dp.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    for j, p in enumerate(dp.parameters()):
        p.grad = periodic(p.numel(), j + 100)[0].float().reshape(p.shape) * 1e-3
    opt.step()  # creates momentum buffers (the weights change, so save the filled ones)
    sd_dp = collections.OrderedDict(("module." + k, v) for k, v in sd20.items())
    rec = RecorderMeter(200)
    rec.current_epoch = 3
    rec.epoch_losses[:3] = [[2.3, 2.2], [1.1, 1.2], [0.7, 0.9]]
    state = {"epoch": 3, "arch": "tern_resnet20", "state_dict": sd_dp, "recorder": rec, "optimizer": opt.state_dict()}
    back = save_gz(state, "seed_tern_resnet20.pth.tar", _use_new_zipfile_serialization=False)
    assert list(back["state_dict"])[0] == "module.conv_1_3x3.weight"

    for k, v in expect.items():
        if k.startswith("out."):
            # Not degenerate: each sample's logits take many distinct values.
            assert all(len(torch.unique(row)) > min(8, row.numel() // 2) for row in v), k
            assert not torch.allclose(v[0], v[1]), k
    save_safetensors_gz(os.path.join(HERE, "expect.safetensors.gz"), expect)
    print("wrote expect.safetensors.gz:", ", ".join(expect))


def check():
    """go_written.pth is written by TestGolden (go test ./pth -run Golden -update)."""
    sd = torch.load(os.path.join(HERE, "go_written.pth"))
    want = golden_state_dict()
    assert list(sd) == list(want), (list(sd), list(want))
    for k in want:
        assert sd[k].dtype == want[k].dtype and torch.equal(sd[k], want[k]), k
    m = nn.Sequential(nn.Conv2d(2, 3, 1, bias=True), nn.BatchNorm2d(3))
    m.load_state_dict(sd)  # strict
    print("go_written.pth: torch.load and load_state_dict accept it;", ", ".join("%s %s" % (k, tuple(v.shape)) for k, v in sd.items()))


def golden_state_dict():
    """What TestGolden writes (must match pth/write_test.go)."""
    return collections.OrderedDict([
        ("0.weight", (torch.arange(6, dtype=torch.float32) * 0.5 - 1).reshape(3, 2, 1, 1)),
        ("0.bias", torch.tensor([0.25, -0.5, 1e-3])),
        ("1.weight", torch.tensor([1.0, 2.0, 3.0])),
        ("1.bias", torch.tensor([0.0, -0.0, 7.5])),
        ("1.running_mean", torch.tensor([0.1, 0.2, 0.3])),
        ("1.running_var", torch.tensor([1.0, 0.5, 2.0])),
        ("1.num_batches_tracked", torch.tensor(123456, dtype=torch.int64)),
    ])


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        check()
    else:
        main()
