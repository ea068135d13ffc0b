"""Open metric names: the naming rule, per-key summaries, and which metric is "best".

A run may log any name (`val/acc`, `Accuracy/val`, `f1`) at step or epoch
level; the built-in trainer's names are just names. Everything here is pure:
the index folds events through `KeySummary.add`, and every view asks
`primary()` and `KeySummary.best()` instead of deciding for itself.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .events import RESERVED

NAME = re.compile(r"[A-Za-z0-9_./-]{1,128}")
SCOPES = ("epoch", "step")  # where a metric was logged; epoch first wherever both exist
MAX_STEP = 2**63  # steps and epochs are SQLite INTEGERs
#: epochs are counted by a person: 2**31 is beyond any training and keeps an EPOCH column
#: readable (a step keeps SQLite's range: a global step may be large)
MAX_EPOCH = 2**31
MAX_NAMES = 10_000  # distinct metric names per run; later names are dropped with a warning
MODES = ("max", "min")
_BAD_TAG = re.compile(r"[^-/\w.]", re.ASCII)  # TensorBoard's _clean_tag rule

#: a name with one of these parts (split at `/ . _ -`) is minimised: `val/loss`,
#: `Loss/train`, `error_rate`, `top5_err`, `mse`, `ppl`, `epoch_time`
_LOWER_IS_BETTER = re.compile(r"(?:^|[/._-])(?:\w*loss|error|err|mse|mae|rmse|nll|perplexity|ppl|"
                              r"wer|cer|time|latency|mem|memory)(?:$|[/._-])", re.IGNORECASE)
_HIGHER_IS_BETTER = re.compile(r"acc|accuracy|f1|auc|precision|recall|iou|map|bleu|rouge|"
                               r"top1|top5|score|r2", re.IGNORECASE)
_HELD_OUT = re.compile(r"val|valid|test|eval", re.IGNORECASE)
DEFAULT_METRIC = "val_acc"


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None and name not in RESERVED


def clean_tag(tag: str) -> str:
    """A TensorBoard tag as a metric name: TensorBoard's own cleaning (other characters
    become `_`, no leading `/`), at most 128 characters; a reserved field name (`step`,
    `epoch`, `v`, `t`, `kind`) gains a trailing `_`."""
    name = _BAD_TAG.sub("_", str(tag)).lstrip("/")[:128] or "_"
    return name + "_" if name in RESERVED else name


def is_number(v: Any) -> bool:
    """A real number as JSON gives it (NaN and ±inf included; bool is not a number)."""
    t = type(v)
    return t is float or t is int


@lru_cache(maxsize=4096)
def default_mode(name: str) -> str:
    """"min" for a name that reads as a loss, an error or a cost, else "max"."""
    return "min" if _LOWER_IS_BETTER.search(name) else "max"


def primary(metric: str | None, mode: str | None, logged: list[str] | set[str]) -> tuple[str | None, str]:
    """The metric that decides "best" for a run, and its mode.

    The spec's `metric` wins; else `val_acc` when logged; else the first held-out
    accuracy-like name, then any accuracy-like, then a held-out loss-like name."""
    if metric:
        return metric, mode or default_mode(metric)
    return _primary_of(mode, frozenset(logged))


@lru_cache(maxsize=1024)  # runs of a project log the same names: the regexes run once
def _primary_of(mode: str | None, logged: frozenset[str]) -> tuple[str | None, str]:
    names = sorted(logged)
    if DEFAULT_METRIC in logged:
        return DEFAULT_METRIC, mode or "max"
    for want in (
        lambda n: _HELD_OUT.search(n) and _HIGHER_IS_BETTER.search(n),
        lambda n: _HIGHER_IS_BETTER.search(n) and not _LOWER_IS_BETTER.search(n),
        lambda n: _HELD_OUT.search(n) and _LOWER_IS_BETTER.search(n),
    ):
        found = [n for n in names if want(n)]
        if found:
            return found[0], mode or default_mode(found[0])
    return None, mode or "max"


def matching(patterns: list[str], names: list[str] | set[str]) -> list[str]:
    """Names matching any of `patterns` (globs: `val/*`), in pattern then name order."""
    out: list[str] = []
    for p in patterns:
        for n in sorted(names) if any(c in p for c in "*?[") else [p]:
            if fnmatch.fnmatchcase(n, p) and n in names and n not in out:
                out.append(n)
    return out


@dataclass
class KeySummary:
    """One metric of one run at one scope: last value, finite min and max and where
    each occurred, the count and the sum of finite values. NaN is a value (it can be
    the last), never a min, max or best."""

    name: str
    scope: str  # "epoch" | "step"
    count: int = 0
    last: float | None = None
    last_at: int | None = None
    min: float | None = None
    min_at: int | None = None
    max: float | None = None
    max_at: int | None = None
    total: float = 0.0

    def add(self, x: int, v: float) -> None:
        """Fold one point, in increasing x (a repeated x is the index's job to recompute)."""
        self.count += 1
        self.last, self.last_at = v, x
        if v - v != 0:  # NaN or ±inf: shown as the last value, never a min, max or sum
            return
        self.total += v
        if self.min is None or v < self.min:
            self.min, self.min_at = v, x
        if self.max is None or v > self.max:
            self.max, self.max_at = v, x

    def extend(self, xs: list[int], vs: list[float]) -> None:
        """Fold a batch of points in increasing x: the same as `add` point by point, with
        the loops in C (min, max, sum over lists) for ingest speed."""
        if not vs:
            return
        self.count += len(vs)
        self.last, self.last_at = vs[-1], xs[-1]
        total = sum(vs)
        finite = vs
        if total - total != 0:  # a NaN or ±inf among them (or a sum past the float range)
            finite = [v for v in vs if v - v == 0]
            if not finite:
                return
            total = sum(finite)
        self.total += total
        lo, hi = min(finite), max(finite)
        if self.min is None or lo < self.min:
            self.min, self.min_at = lo, xs[vs.index(lo)]
        if self.max is None or hi > self.max:
            self.max, self.max_at = hi, xs[vs.index(hi)]

    def best(self, mode: str) -> tuple[float | None, int | None]:
        """(value, where) of the best finite value in `mode`."""
        v, at = (self.max, self.max_at) if mode == "max" else (self.min, self.min_at)
        return (v, at) if v is not None else (None, None)


@lru_cache(maxsize=4096)
def _percent(name: str) -> bool:
    return _HIGHER_IS_BETTER.search(name) is not None


def fmt_values(name: str, values: list[Any]) -> list[str]:
    """`fmt_value` of a column of values of one metric. A column of floats is formatted
    in one call (`%` over a format of `%.4g` fields): the same strings, where no value
    is an integer of 5 to 9 digits (`fmt_value` writes 12345, `%.4g` 1.234e+04: such a
    column is written value by value)."""
    percent = _percent(name)
    if values and set(map(type, values)) == {float}:
        cells: str | None = None
        if not percent:
            cells = ("\0".join(["%.4g"] * len(values)) % tuple(values))
            cells = None if "e+" in cells else cells
        elif (total := sum(values)) == total and min(values) >= 0.0 and max(values) <= 1.0:
            cells = "\0".join(["%.1f%%"] * len(values)) % tuple(map((100.0).__mul__, values))
        if cells is not None:
            out = cells.split("\0")
            return out if "-0" not in out else ["0" if c == "-0" else c for c in out]  # -0.0
    out = []
    for v in values:
        if type(v) is not float:
            out.append(fmt_value(name, v))
        elif percent and 0.0 <= v <= 1.0:
            out.append(f"{100 * v:.1f}%")
        elif v.is_integer() and abs(v) < 1e9:
            out.append(f"{int(v)}")
        else:
            out.append(f"{v:.4g}")
    return out


def fmt_value(name: str, v: Any) -> str:
    """A metric value for a table cell: fractions of accuracy-like names as percent."""
    if type(v) is float:  # the common case first (NaN and ±inf format as nan, inf, -inf)
        if 0.0 <= v <= 1.0 and _percent(name):
            return f"{100 * v:.1f}%"
        if v.is_integer() and abs(v) < 1e9:
            return f"{int(v)}"
        return f"{v:.4g}"
    if v is None:
        return "-"
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return str(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if 0.0 <= v <= 1.0 and _percent(name):
        return f"{100 * v:.1f}%"
    if isinstance(v, int) or (float(v).is_integer() and abs(v) < 1e9):
        return f"{int(v)}"
    return f"{v:.4g}"
