"""Bounded, downsampled series: min/max buckets aligned on x.

A bucket covers x in [i·width, (i+1)·width) and keeps (last x, min, max, last
value), so a spike stays visible however long the run. `width` is a power of
two that doubles (merging neighbours) when the series outgrows `size`: points
fed one at a time (live) and the same points aggregated by SQLite with the same
width (backfill, `Index.buckets`) give the same buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

Bucket = list[float]  # [last x, min, max, last value]


def width_for(lo: int, hi: int, size: int) -> int:
    """The smallest power-of-two width that puts x in [lo, hi] into at most `size` buckets."""
    width = 1
    while hi // width - lo // width + 1 > size:
        width *= 2
    return width


class Buckets:
    def __init__(self, size: int = 64, width: int = 1):
        self.size = size
        self.width = width
        self.items: list[Bucket] = []

    def add(self, x: float, y: float | None) -> None:
        """Fold a point with x at or after the last one; NaN and ±inf are skipped."""
        if y is None or not math.isfinite(y):
            return
        if self.items and int(self.items[-1][0]) // self.width == int(x) // self.width:
            b = self.items[-1]
            b[0], b[3] = x, y
            b[1], b[2] = min(b[1], y), max(b[2], y)
            return
        self.items.append([x, y, y, y])
        while len(self.items) > self.size:
            self._double()

    def extend(self, points: Iterable[tuple[float, float | None]]) -> None:
        for x, y in points:
            self.add(x, y)

    def _double(self) -> None:
        self.width *= 2
        merged: list[Bucket] = []
        for b in self.items:
            if merged and int(merged[-1][0]) // self.width == int(b[0]) // self.width:
                m = merged[-1]
                merged[-1] = [b[0], min(m[1], b[1]), max(m[2], b[2]), b[3]]
            else:
                merged.append(list(b))
        self.items = merged

    @classmethod
    def of(cls, rows: Iterable[tuple[float, float, float, float]], size: int, width: int) -> Buckets:
        """Buckets from (last x, min, max, last value) rows already aggregated at `width`."""
        out = cls(size, width)
        out.items = [[float(x), lo, hi, last] for x, lo, hi, last in rows]
        while len(out.items) > size:
            out._double()
        return out

    @property
    def last_x(self) -> float | None:
        return self.items[-1][0] if self.items else None

    def values(self) -> list[float]:
        return [b[3] for b in self.items]

    def __len__(self) -> int:
        return len(self.items)
