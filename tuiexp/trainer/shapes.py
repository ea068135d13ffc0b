""""shapes": a built-in synthetic dataset of 10 classes of small colour images.

Made to be learnable but not trivial, with pairs that a model confuses
(circle/ellipse/ring, square/rectangle/diamond, triangle/arrow, plus/cross), so
its confusion matrix says something. Deterministic in `seed`; the train and
test sets use separate streams, so the test set does not move with num_train.
Vectorised: 6000 images of 32 px take well under a second on a CPU.
"""

from __future__ import annotations

import math

import torch

CLASSES = (
    "circle", "ellipse", "ring", "square", "rectangle",
    "diamond", "triangle", "arrow", "plus", "cross",
)
CLUTTER = 2  # small distractor blobs behind each shape


def generate(n: int, image_size: int, seed: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` images (uint8, N x 3 x S x S) and their labels (int64), balanced over classes."""
    g = torch.Generator().manual_seed(seed * 2 + (split == "test"))
    labels = torch.arange(n) % len(CLASSES)
    labels = labels[torch.randperm(n, generator=g)]
    s = image_size

    def u(*shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return torch.rand(*shape, generator=g) * (hi - lo) + lo

    # pixel-centre coordinates in [0, 1)
    coords = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    yy, xx = coords.view(1, s, 1), coords.view(1, 1, s)

    # any hue, but a light shape on a dark ground or the reverse: the outline stays visible
    dark = (u(n) < 0.5).view(n, 1)
    bg = torch.where(dark, u(n, 3, hi=0.45), u(n, 3, lo=0.55))
    fg = torch.where(dark, u(n, 3, lo=0.55), u(n, 3, hi=0.45))
    img = bg.view(n, 3, 1, 1).expand(n, 3, s, s).clone()
    # a soft gradient across the background
    angle = u(n, hi=2 * math.pi).view(n, 1, 1)
    ramp = (xx * torch.cos(angle) + yy * torch.sin(angle)) * u(n, lo=-0.25, hi=0.25).view(n, 1, 1)
    img = img + ramp.unsqueeze(1)

    for _ in range(CLUTTER):  # distractors: small blobs of other colours
        c = u(n, 2)
        r = u(n, lo=0.03, hi=0.08).view(n, 1, 1)
        blob = ((xx - c[:, 0].view(n, 1, 1)) ** 2 + (yy - c[:, 1].view(n, 1, 1)) ** 2) < r**2
        img = torch.where(blob.unsqueeze(1), u(n, 3).view(n, 3, 1, 1), img)

    radius = u(n, lo=0.22, hi=0.38)
    cx = 0.5 + u(n, lo=-1.0, hi=1.0) * (0.5 - radius) * 0.8
    cy = 0.5 + u(n, lo=-1.0, hi=1.0) * (0.5 - radius) * 0.8
    theta = u(n, lo=-1.0, hi=1.0) * math.radians(15)  # small tilt for the upright classes
    tilt = u(n, lo=-1.0, hi=1.0) * math.radians(30)  # more for the pointed ones
    free = u(n, hi=2 * math.pi)  # any orientation for classes without an upright
    aspect = u(n, lo=0.45, hi=0.7)
    thick = u(n, lo=0.18, hi=0.3)

    mask = torch.zeros(n, s, s, dtype=torch.bool)
    for k, name in enumerate(CLASSES):
        idx = (labels == k).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        rot = {"diamond": theta[idx] + math.pi / 4, "cross": theta[idx] + math.pi / 4,
               "ellipse": free[idx], "rectangle": free[idx], "triangle": tilt[idx],
               "arrow": tilt[idx]}.get(name, theta[idx])
        m = len(idx)
        dx = (xx - cx[idx].view(m, 1, 1)) / radius[idx].view(m, 1, 1)
        dy = (yy - cy[idx].view(m, 1, 1)) / radius[idx].view(m, 1, 1)
        cos, sin = torch.cos(rot).view(m, 1, 1), torch.sin(rot).view(m, 1, 1)
        a, b = dx * cos + dy * sin, -dx * sin + dy * cos  # shape-local coordinates
        mask[idx] = _shape(name, a, b, aspect[idx].view(m, 1, 1), thick[idx].view(m, 1, 1))

    img = torch.where(mask.unsqueeze(1), fg.view(n, 3, 1, 1), img)
    img = img + torch.randn(n, 3, s, s, generator=g) * u(n, lo=0.02, hi=0.08).view(n, 1, 1, 1)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


def _shape(name: str, a: torch.Tensor, b: torch.Tensor, aspect: torch.Tensor,
           thick: torch.Tensor) -> torch.Tensor:
    """The inside of a shape of radius 1 in its own coordinates (a across, b down)."""
    r2 = a**2 + b**2
    if name == "circle":
        return r2 <= 0.8
    if name == "ellipse":
        return a**2 + (b / aspect) ** 2 <= 1
    if name == "ring":
        return (r2 <= 0.9) & (r2 >= (1 - 1.6 * thick) ** 2 * 0.9)
    if name == "square":
        return (a.abs() <= 0.72) & (b.abs() <= 0.72)
    if name == "rectangle":
        return (a.abs() <= 0.9) & (b.abs() <= 0.9 * aspect)
    if name == "diamond":
        return (a.abs() <= 0.72) & (b.abs() <= 0.72)  # a square stood on its corner
    if name == "triangle":
        return (b <= 0.6) & (a.abs() <= (b + 0.9) * 0.62)
    if name == "arrow":
        head = (b <= 0.1) & (a.abs() <= (b + 0.9) * 0.75)
        shaft = (b > 0.1) & (b <= 0.9) & (a.abs() <= thick)
        return head | shaft
    if name in ("plus", "cross"):
        return ((a.abs() <= thick) & (b.abs() <= 0.95)) | ((b.abs() <= thick) & (a.abs() <= 0.95))
    raise ValueError(name)
