"""Parameter budgets: the built-in families' parameter counts, computed without torch, and
the `model_args` that bring a family within ±5 % of a budget (docs/SEARCH.md).

Torch-free on purpose: the core sizes every run of a `param_budget` experiment when it
loads experiments.toml (through the `tuiexp.schemas` entry point), in processes that never
train. tests/trainer/test_sizing.py checks every count here against torch's
`sum(p.numel())` of the model models.py builds.

Sizing rules, per family (the user's own model_args are kept; what sizing changes is
named here):

- vgg: `widths` = the template (model_args.widths, default [32, 64, 128]) times a scale,
  rounded, at least 1 (the last one nudged by up to 2 for a closer count); `blocks_per_stage` (unless set): 1 below 100k, else 2.
- resnet: the same for `widths` (template default [16, 32, 64]); `depths` (unless set):
  1 per stage below 200k, else 2.
- mbconv: `width_mult` (rounded to 4 significant digits); `depth_mult` (unless set): 0.5
  below 50k, else 1.0.

The scale is searched on a fine geometric grid and the closest count wins; when the
preferred depth misses ±5 %, the family's other depths are tried before giving up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

#: how far a sized model may land from its budget
TOLERANCE = 0.05
#: the scale grid: coarse steps to find where the budget is, then 0.25 % steps around it
_MIN_SCALE, _MAX_SCALE, _COARSE, _STEP = 1e-3, 1e4, 1.1, 1.0025

Counter = Callable[[Mapping[str, Any], int, int], int]


class SizingError(ValueError):
    """No model of this family lands within ±5 % of the budget, or it has no sizing rule."""


# -- counts ------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, k: int = 3, groups: int = 1) -> int:
    """Conv (no bias) + BatchNorm (weight and bias; running stats are buffers)."""
    return cin // groups * cout * k * k + 2 * cout


def _head(width: int, num_classes: int) -> int:
    return width * num_classes + num_classes


def count_vgg(args: Mapping[str, Any], num_classes: int, in_channels: int) -> int:
    """Parameters of models.vgg(**args)."""
    widths = list(args.get("widths") or [32, 64, 128])
    blocks = int(args.get("blocks_per_stage", 2))
    total, cin = 0, in_channels
    for w in widths:
        for _ in range(blocks):
            total += _conv_bn(cin, w)
            cin = w
    return total + _head(cin, num_classes)


def count_resnet(args: Mapping[str, Any], num_classes: int, in_channels: int) -> int:
    """Parameters of models.resnet(**args)."""
    widths = list(args.get("widths") or [16, 32, 64])
    depths = list(args.get("depths") or [1] * len(widths))
    total = _conv_bn(in_channels, widths[0], int(args.get("stem_kernel", 3)))
    cin = widths[0]
    for i, (w, d) in enumerate(zip(widths, depths, strict=True)):
        for j in range(d):
            stride = 2 if i > 0 and j == 0 else 1
            total += _conv_bn(cin, w) + _conv_bn(w, w)
            if stride != 1 or cin != w:
                total += _conv_bn(cin, w, 1)
            cin = w
    return total + _head(cin, num_classes)


#: models.MBCONV_STAGES: (width as a multiple of base_width, depth, stride) per stage
MBCONV_STAGES = ((1, 1, 1), (1.5, 2, 2), (2.5, 2, 2), (5, 3, 2), (7, 1, 1))


def count_mbconv(args: Mapping[str, Any], num_classes: int, in_channels: int) -> int:
    """Parameters of models.mbconv(**args)."""
    width_mult = float(args.get("width_mult", 1.0))
    depth_mult = float(args.get("depth_mult", 1.0))
    base, expand = int(args.get("base_width", 16)), int(args.get("expand", 4))
    se, head_width = bool(args.get("se", True)), int(args.get("head_width", 0))

    def width(m: float) -> int:
        return max(4, int(round(base * m * width_mult / 4)) * 4)

    cin = width(1)
    total = _conv_bn(in_channels, cin)
    for m, d, _stride in MBCONV_STAGES:
        cout = width(m)
        for _ in range(max(1, math.ceil(d * depth_mult))):
            total += _mbconv_block(cin, cout, 1 if m == 1 else expand, se)
            cin = cout
    if head_width:
        total += _conv_bn(cin, head_width, 1)
        cin = head_width
    return total + _head(cin, num_classes)


def _mbconv_block(cin: int, cout: int, expand: int, se: bool) -> int:
    mid = cin * expand
    total = _conv_bn(cin, mid, 1) if expand != 1 else 0
    total += _conv_bn(mid, mid, 3, groups=mid)
    if se:
        sq = max(1, cin // 4)
        total += (mid * sq + sq) + (sq * mid + mid)  # two 1×1 convs with bias
    return total + _conv_bn(mid, cout, 1)


COUNTERS: dict[str, Counter] = {"vgg": count_vgg, "resnet": count_resnet, "mbconv": count_mbconv}


# -- classes and channels without loading the data ------------------------------------------


def data_shape(params: Mapping[str, Any], shapes: Mapping[str, tuple[int | None, int | None]],
               default_root: str) -> tuple[int, int]:
    """(classes, input channels) of the run's dataset: from the table of known datasets,
    or for imagefolder from the class folders under data_root/train (as the trainer finds
    them). Raises SizingError when the disk does not tell."""
    dataset = str(params.get("dataset", "shapes"))
    classes, channels = shapes.get(dataset, (None, None))
    if classes is not None and channels is not None:
        return classes, channels
    root = Path(str(params.get("data_root") or default_root)).expanduser()
    train = root / "train"
    found = [p for p in train.iterdir() if p.is_dir()] if train.is_dir() else []
    if not found:
        raise SizingError(f"needs the number of classes, and {train} holds no class folders")
    return len(found), channels or 3


# -- sizing --------------------------------------------------------------------------------


def size(family: str, args: Mapping[str, Any], budget: float, num_classes: int,
         in_channels: int) -> tuple[dict[str, Any], int]:
    """model_args for `family` whose count lands within ±5 % of `budget` (the user's own
    args kept, widths/depths sized), and that count; SizingError when none does."""
    if family not in COUNTERS:
        raise SizingError(f"cannot be met: model {family!r} has no sizing rule "
                          f"(only {', '.join(COUNTERS)} have one)")
    count = COUNTERS[family]
    best: tuple[float, dict[str, Any], int] | None = None
    lo = hi = None
    for depth_args in _depths(family, args, budget):
        for cand in _candidates(family, {**args, **depth_args}, budget, count, num_classes,
                                in_channels):
            n = count(cand, num_classes, in_channels)
            lo, hi = min(lo or n, n), max(hi or n, n)
            miss = abs(n - budget) / budget
            if best is None or miss < best[0]:
                best = (miss, cand, n)
        if best is not None and best[0] <= TOLERANCE:
            return best[1], best[2]
    raise SizingError(_miss_sentence(family, budget, lo, hi, best))


def _miss_sentence(family: str, budget: float, lo: int | None, hi: int | None,
                   best: tuple[float, dict[str, Any], int] | None) -> str:
    if best is None or lo is None or hi is None:  # pragma: no cover - every family yields one
        return f"cannot be reached by any {family} model"
    if budget < lo:
        return (f"is below the smallest {family} model for these data ({_n(lo)} parameters); "
                "raise it or pick a smaller family")
    return (f"cannot be reached: no {family} width lands within ±5 % of it (the closest "
            f"has {_n(best[2])} parameters)")


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _depths(family: str, args: Mapping[str, Any], budget: float) -> list[dict[str, Any]]:
    """The depth settings to try, the family's rule first; none when the user set depth."""
    rule: float
    options: list[float]
    if family == "vgg":
        key, rule, options = "blocks_per_stage", 1 if budget < 1e5 else 2, [1, 2, 3]
    elif family == "resnet":
        n = len(args.get("widths") or [16, 32, 64])
        if "depths" in args:
            return [{}]
        return [{"depths": [d] * n} for d in _ordered(1 if budget < 2e5 else 2, [1, 2, 3])]
    else:
        key, rule, options = "depth_mult", 0.5 if budget < 5e4 else 1.0, [0.5, 1.0, 1.5, 0.3]
    if key in args:
        return [{}]
    return [{key: d} for d in _ordered(rule, options)]


def _ordered(first: Any, options: list[Any]) -> list[Any]:
    return [first, *(o for o in options if o != first)]


def _candidates(family: str, args: dict[str, Any], budget: float, count: Counter,
                num_classes: int, in_channels: int) -> Iterator[dict[str, Any]]:
    """The smallest model, then model_args on a fine geometric grid of scales around
    where the count crosses the budget (found with coarse steps: counts grow with the
    scale); for vgg and resnet each scale's last width also ±1 and ±2 (it alone feeds
    the head: the finest step at small sizes)."""
    scale = _MIN_SCALE
    yield _scaled(family, args, scale)
    while scale < _MAX_SCALE and count(_scaled(family, args, scale), num_classes, in_channels) < budget:
        scale *= _COARSE
    seen: set[tuple[int, ...]] = set()
    fine, stop = max(_MIN_SCALE, scale / _COARSE ** 2), min(_MAX_SCALE, scale * _COARSE)
    while fine <= stop:
        for cand in _nudged(family, _scaled(family, args, fine)):
            shape = _shape(family, cand)
            if shape not in seen:
                seen.add(shape)
                yield cand
        fine *= _STEP


def _nudged(family: str, cand: dict[str, Any]) -> list[dict[str, Any]]:
    if family == "mbconv":
        return [cand]
    *head, last = cand["widths"]
    return [{**cand, "widths": [*head, last + d]} for d in (0, -1, 1, -2, 2) if last + d >= 1]


def _shape(family: str, cand: Mapping[str, Any]) -> tuple[int, ...]:
    """What a candidate builds (mbconv: its stage widths; width_mults that round alike
    build the same model)."""
    if family != "mbconv":
        return tuple(cand["widths"])
    base, mult = int(cand.get("base_width", 16)), float(cand["width_mult"])
    return tuple(max(4, int(round(base * m * mult / 4)) * 4) for m in (1, *(s[0] for s in MBCONV_STAGES)))


def _scaled(family: str, args: dict[str, Any], scale: float) -> dict[str, Any]:
    if family == "mbconv":
        return {**args, "width_mult": float(f"{scale:.4g}")}
    template = list(args.get("widths") or ([32, 64, 128] if family == "vgg" else [16, 32, 64]))
    return {**args, "widths": [max(1, round(w * scale)) for w in template]}
