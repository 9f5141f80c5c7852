#!/usr/bin/env python3
"""Writes torch_parity.json: parameters and optimizer buffers after each of
5 optimizer steps, buffers named "<param>.<buffer>" as tnn names them.

Run with PyTorch 1.13 (the version the Go optimizers mirror); CI only reads
the JSON. Gradients are stored rather than regenerated so the Go test needs no
torch RNG. Shapes are chosen so that, with AVX2 (8 floats per vector, 16 per
unrolled iteration), some elements take torch's vectorised path and some its
scalar tail: they could round differently (fused or unfused multiply-add),
though in 1.13's AVX2 build both fuse.

    /usr/bin/python3 optim/testdata/make_fixtures.py > optim/testdata/torch_parity.json
"""
import json
import re
import sys

import torch

STEPS = 5
SHAPES = {"a.weight": [3], "b.weight": [4, 5], "c.weight": [2, 2, 3, 3]}

CASES = [
    ("sgd_nesterov_wd", "SGD", dict(lr=0.1, momentum=0.9, weight_decay=3e-4, nesterov=True)),
    ("sgd_momentum", "SGD", dict(lr=0.05, momentum=0.9)),
    ("sgd_plain_wd", "SGD", dict(lr=0.1, weight_decay=1e-2)),
    ("adam_wd", "Adam", dict(lr=1e-3, weight_decay=5e-6)),
    ("adam", "Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
]


def flat(t):
    # Nine significant digits identify a float32 exactly (parse as float32).
    return [float("%.9g" % x) for x in t.detach().reshape(-1).tolist()]


def main():
    if not torch.__version__.startswith("1.13"):
        print("warning: torch %s, the fixture is meant for 1.13" % torch.__version__, file=sys.stderr)
    g = torch.Generator().manual_seed(2019)
    init = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}
    # Per-element magnitudes from 1e-4 to 10 so that eps matters for some
    # elements of Adam's denominator and the decayed moments are comparable
    # to the new terms (where fused and unfused rounding differ).
    grads = [
        {
            n: torch.randn(s, generator=g)
            * 10.0 ** torch.randint(-4, 2, s, generator=g).float()
            for n, s in SHAPES.items()
        }
        for k in range(STEPS)
    ]
    cap = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    out = {
        "torch_version": torch.__version__,
        # Which kernels rounded: DEFAULT builds do not fuse multiply-adds.
        "cpu_capability": cap.group(1) if cap else "unknown",
        "shapes": SHAPES,
        "init": {n: flat(t) for n, t in init.items()},
        "grads": [{n: flat(t) for n, t in gs.items()} for gs in grads],
        "cases": [],
    }
    for name, kind, hyper in CASES:
        params = [torch.nn.Parameter(init[n].clone()) for n in SHAPES]
        opt = getattr(torch.optim, kind)(params, **hyper)
        after = []
        for k in range(STEPS):
            for p, n in zip(params, SHAPES):
                p.grad = grads[k][n].clone()
            opt.step()
            rec = {}
            for p, n in zip(params, SHAPES):
                rec[n] = flat(p)
                for buf, t in opt.state[p].items():
                    if buf != "step" and t is not None:
                        rec[n + "." + buf] = flat(t)
            after.append(rec)
        h = dict(hyper)
        if "betas" in h:
            h["beta1"], h["beta2"] = h.pop("betas")
        out["cases"].append({"name": name, "kind": kind, "hyper": h, "after": after})
    json.dump(out, sys.stdout, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
