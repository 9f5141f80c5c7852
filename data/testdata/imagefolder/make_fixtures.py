"""Makes the torchvision fixtures of data/transform_test.go.

Run with Debian's Python (PyTorch 1.13, torchvision 0.14, Pillow 9.4) from
this folder:  python3 make_fixtures.py

Each case of cases.json applies torchvision transforms to a PIL image
computed by test_image() (data/transform_test.go computes the same one) and
stores the resulting RGB bytes, row-major HWC, in <name>.bin. rrc.json holds
RandomResizedCrop.get_params results for recorded random draws.
"""
import json
import random

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image


def test_image(w, h):
    """A gradient per channel plus hashed noise, so that both smooth areas
    and high frequencies (which antialiasing filters) are covered."""
    x = np.arange(w, dtype=np.uint64)[None, :]
    y = np.arange(h, dtype=np.uint64)[:, None]
    out = np.zeros((h, w, 3), dtype=np.uint8)
    m = np.uint64(0xFFFFFFFF)
    for c in range(3):
        hh = (x * np.uint64(374761393) + y * np.uint64(668265263) + np.uint64(c) * np.uint64(2246822519)) & m
        hh = ((hh ^ (hh >> np.uint64(13))) * np.uint64(1274126177)) & m
        noise = (hh >> np.uint64(16)) & np.uint64(63)
        xx, yy = x + 0 * y, y + 0 * x
        grad = [xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (w + h - 2)][c]
        out[:, :, c] = np.minimum(grad * 3 // 4 + noise, 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")


cases = [
    # Validation: Resize(resize) + CenterCrop(size).
    dict(name="val_down", w=61, h=47, kind="val", resize=36, size=32),
    dict(name="val_portrait_up", w=47, h=61, kind="val", resize=73, size=64),
    dict(name="val_identity", w=40, h=36, kind="val", resize=36, size=32),
    dict(name="val_half_offset", w=41, h=37, kind="val", resize=37, size=32),
    dict(name="val_big", w=300, h=200, kind="val", resize=18, size=16),
    # Training: resized_crop with fixed RandomResizedCrop parameters.
    dict(name="crop_down", w=61, h=47, kind="crop", top=5, left=9, ch=30, cw=41, size=24),
    dict(name="crop_up", w=61, h=47, kind="crop", top=3, left=4, ch=10, cw=7, size=32),
    dict(name="crop_far_down", w=300, h=200, kind="crop", top=0, left=0, ch=200, cw=300, size=16),
    dict(name="crop_exact", w=61, h=47, kind="crop", top=7, left=11, ch=32, cw=32, size=32),
]

for c in cases:
    img = test_image(c["w"], c["h"])
    if c["kind"] == "val":
        out = T.Compose([T.Resize(c["resize"]), T.CenterCrop(c["size"])])(img)
    else:
        out = F.resized_crop(img, c["top"], c["left"], c["ch"], c["cw"], [c["size"], c["size"]])
    a = np.asarray(out, dtype=np.uint8)
    assert a.shape == (c["size"], c["size"], 3), a.shape
    a.tofile(c["name"] + ".bin")

with open("cases.json", "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")


# RandomResizedCrop.get_params, the real torchvision code, fed fixed draws:
# every torch.empty(1).uniform_(a, b) returns a + (b - a)·u and every
# torch.randint(0, n) returns int(u·n), u taken in turn from a list, so
# that data/transform_test.go can replay the same draws through rrcParams.
class Replay:
    def __init__(self, us):
        self.us = iter(us)

    def empty(self, *a, **k):
        rep = self
        class E:
            def uniform_(self, a, b):
                u = next(rep.us)
                return torch.tensor([float(a) + (float(b) - float(a)) * u], dtype=torch.float64)
        return E()

    def randint(self, low, high, size):
        u = next(self.us)
        return torch.tensor([low + int(u * (high - low))])

random.seed(5)
sizes = [(500, 375), (375, 500), (61, 47), (1000, 10), (10, 1000), (13, 11), (224, 224), (2, 3)]
rrc = []
for w, h in sizes:
    for _ in range(6):
        us = [random.random() for _ in range(22)]
        rp = Replay(us)
        real_empty, real_randint = torch.empty, torch.randint
        torch.empty, torch.randint = rp.empty, rp.randint
        try:
            img = Image.new("RGB", (w, h))
            i, j, hh, ww = T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0])
        finally:
            torch.empty, torch.randint = real_empty, real_randint
        rrc.append(dict(w=w, h=h, u=us, top=int(i), left=int(j), ch=int(hh), cw=int(ww)))

with open("rrc.json", "w") as f:
    json.dump(rrc, f, indent=None)
    f.write("\n")
