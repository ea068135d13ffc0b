"""Batched augmentation on the device: every image of a batch gets its own random
crop, flip, jitter, rotation and erasing, in a handful of tensor ops — no per-image
Python. All randomness comes from one generator, so a resume can restore it.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from .config import Augment


def prepare(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, aug: Augment | None,
            gen: torch.Generator | None, channels_last: bool = False) -> torch.Tensor:
    """uint8 N x C x H x W → normalised float; augmented when `aug` is given (training)."""
    if aug is not None and (aug.crop_padding or aug.flip):
        x = crop_flip(x, aug.crop_padding, aug.flip, gen)
    x = x.float().div_(255)
    if aug is not None and aug.color_jitter:
        x = color_jitter(x, aug.color_jitter, gen)
    if aug is not None and aug.rotation:
        x = rotate(x, aug.rotation, gen)
    x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    if aug is not None and aug.erasing:
        x = erase(x, aug.erasing, gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _rand(gen: torch.Generator | None, *shape: int, device: torch.device) -> torch.Tensor:
    return torch.rand(*shape, generator=gen, device=device)


def crop_flip(x: torch.Tensor, padding: int, flip: bool, gen: torch.Generator | None) -> torch.Tensor:
    """Random crop of the zero-padded image back to its size, and a random horizontal flip."""
    n, c, h, w = x.shape
    dev = x.device
    rows = torch.arange(h, device=dev).expand(n, h)
    cols = torch.arange(w, device=dev).expand(n, w)
    if padding:
        x = F.pad(x, (padding,) * 4)
        oy = (_rand(gen, n, device=dev) * (2 * padding + 1)).long().clamp_max(2 * padding)
        ox = (_rand(gen, n, device=dev) * (2 * padding + 1)).long().clamp_max(2 * padding)
        rows, cols = rows + oy[:, None], cols + ox[:, None]
    if flip:
        flipped = _rand(gen, n, device=dev) < 0.5
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    # one gather: image b takes rows[b] x cols[b]
    b = torch.arange(n, device=dev)[:, None, None, None]
    ch = torch.arange(c, device=dev)[None, :, None, None]
    return x[b, ch, rows[:, None, :, None], cols[:, None, None, :]]


def color_jitter(x: torch.Tensor, strength: float, gen: torch.Generator | None) -> torch.Tensor:
    """Brightness, contrast and saturation, each scaled by a factor in [1-s, 1+s]."""
    n, dev = x.shape[0], x.device
    f = 1 + (_rand(gen, 3, n, 1, 1, 1, device=dev) * 2 - 1) * strength
    x = x * f[0]
    gray = x.mean(dim=1, keepdim=True) if x.shape[1] > 1 else x
    x = (x - gray.mean(dim=(2, 3), keepdim=True)) * f[1] + gray.mean(dim=(2, 3), keepdim=True)
    if x.shape[1] > 1:
        gray = x.mean(dim=1, keepdim=True)
        x = gray + (x - gray) * f[2]
    return x.clamp_(0, 1)


def rotate(x: torch.Tensor, degrees: float, gen: torch.Generator | None) -> torch.Tensor:
    """Rotate each image by an angle in [-degrees, degrees] (bilinear, black corners)."""
    n, dev = x.shape[0], x.device
    a = (_rand(gen, n, device=dev) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def erase(x: torch.Tensor, p: float, gen: torch.Generator | None) -> torch.Tensor:
    """Random erasing: with probability p, zero a rectangle of 2-33 % of the image."""
    n, _, h, w = x.shape
    dev = x.device
    r = _rand(gen, 5, n, device=dev)
    area = (0.02 + r[0] * 0.31) * h * w
    aspect = torch.exp(math.log(0.3) + r[1] * (math.log(3.3) - math.log(0.3)))
    eh = (area * aspect).sqrt().clamp(1, h)
    ew = (area / aspect).sqrt().clamp(1, w)
    y0 = r[2] * (h - eh)
    x0 = r[3] * (w - ew)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    box = (ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1)) \
        & (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ew).view(n, 1, 1))
    box &= (r[4] < p).view(n, 1, 1)
    return x.masked_fill(box.unsqueeze(1), 0.0)


def mix(x: torch.Tensor, y: torch.Tensor, num_classes: int, mixup: float, cutmix: float,
        rng: random.Random, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp or CutMix (one of them per batch, when both are on) → inputs and soft targets."""
    use_cutmix = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
    lam = rng.betavariate(cutmix, cutmix) if use_cutmix else rng.betavariate(mixup, mixup)
    perm = torch.randperm(x.shape[0], generator=gen, device=x.device)
    target = F.one_hot(y, num_classes).float()
    if use_cutmix:
        h, w = x.shape[2:]
        ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = rng.randrange(h), rng.randrange(w)
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the area actually pasted
    else:
        x = x * lam + x[perm] * (1 - lam)
    return x, target * lam + target[perm] * (1 - lam)
