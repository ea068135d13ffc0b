"""Batched augmentation: shapes kept, flips flip, crops shift, all seeded."""

from __future__ import annotations

import random

import torch

from tuiexp.trainer import augment
from tuiexp.trainer.config import Augment

NONE = Augment(crop_padding=0, flip=False, color_jitter=0.0, rotation=0.0, erasing=0.0)


def images(n: int = 64, c: int = 3, s: int = 12) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_flip_flips_about_half_the_images() -> None:
    x = images()
    out = augment.crop_flip(x, 0, True, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48


def test_crop_shifts_each_image_within_the_padding() -> None:
    x = images(32)
    out = augment.crop_flip(x, 2, False, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for o, p in zip(out, padded, strict=True):  # each output is some window of its padded input
        assert any(torch.equal(o, p[:, dy : dy + 12, dx : dx + 12]) for dy in range(5) for dx in range(5))
    assert not torch.equal(out, x)


def test_same_seed_same_augmentation() -> None:
    aug = Augment(crop_padding=4, flip=True, color_jitter=0.4, rotation=15, erasing=0.5)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    a = augment.prepare(images(), mean, std, aug, torch.Generator().manual_seed(3))
    b = augment.prepare(images(), mean, std, aug, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (64, 3, 12, 12) and a.dtype == torch.float32


def test_prepare_without_augmentation_only_normalises() -> None:
    x = images(4)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    out = augment.prepare(x, mean, std, None, None)
    assert torch.allclose(out, (x.float() / 255 - 0.5) / 0.25)
    assert torch.equal(augment.prepare(x, mean, std, NONE, None), out)


def test_jitter_rotation_and_erasing_keep_shapes_and_change_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    x = images().float() / 255
    jit = augment.color_jitter(x.clone(), 0.5, g)
    rot = augment.rotate(x, 30, g)
    era = augment.erase(x, 1.0, g)
    for out in (jit, rot, era):
        assert out.shape == x.shape and not torch.equal(out, x)
    assert 0 <= jit.min() and jit.max() <= 1
    assert ((era == 0).flatten(1).sum(1) > 0).all()  # every image lost a rectangle
    grey = images(c=1).float() / 255
    assert augment.color_jitter(grey, 0.5, g).shape == grey.shape


def test_mixup_and_cutmix_give_soft_targets_that_sum_to_one() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    y = torch.randint(0, 10, (16,))
    for mixup, cutmix in ((0.4, 0.0), (0.0, 1.0), (0.4, 1.0)):
        out, target = augment.mix(x, y, 10, mixup, cutmix, random.Random(0), g)
        assert out.shape == x.shape and target.shape == (16, 10)
        assert torch.allclose(target.sum(1), torch.ones(16))
