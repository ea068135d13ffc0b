"""A metric's points as the index stores them (chunks), and bounded, downsampled
series: min/max buckets aligned on x.

A bucket covers x in [i·width, (i+1)·width) and keeps (last x, min, max, last
value), so a spike stays visible however long the run. `width` is a power of
two that doubles (merging neighbours) when the series outgrows `size`: points
fed one at a time (live) and the same points cut into buckets in one go with the
same width (backfill, `bucketize`) give the same buckets.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: points per chunk written in bulk (a full chunk, 4,000 bytes of values, fills a 4 KiB
#: page), and the most a live chunk grows to by appends (each append rewrites it)
CHUNK = 500
LIVE_CHUNK = 64
_NATIVE = sys.byteorder == "little"


@dataclass(slots=True)
class Chunk:
    """Points of one metric with consecutive x: xs are x0, x0 + dx, ... (`dx` None: xs
    listed), values float64 (NaN and ±inf as logged). Blobs are little-endian."""

    xs: Sequence[int]
    vs: Sequence[float]

    @classmethod
    def of_row(cls, x0: int, n: int, dx: int | None, xs: bytes | None, vs: bytes) -> Chunk:
        values = _unpack("d", vs)
        if dx is not None:
            return cls(range(x0, x0 + n * dx, dx), values)
        return cls(_unpack("q", xs or b""), values)

    def row(self) -> tuple[int, int, int, int | None, bytes | None, bytes]:
        """(x0, x1, n, dx, xs, vs) for the `series` table (xs listed only when they are
        not evenly spaced)."""
        xs, n = self.xs, len(self.xs)
        x0, x1 = xs[0], xs[-1]
        dx: int | None = (x1 - x0) // (n - 1) if n > 1 else 1
        if n > 1 and (not dx or dx < 0 or (xs if type(xs) is list else list(xs))
                      != list(range(x0, x1 + 1, dx))):
            dx = None
        return x0, x1, n, dx, None if dx is not None else _pack("q", xs), _pack("d", self.vs)


def _pack(code: str, values: Iterable[Any]) -> bytes:
    a = array(code, values)
    if not _NATIVE:
        a.byteswap()
    return a.tobytes()


def _unpack(code: str, blob: bytes) -> array[Any]:
    a = array(code)
    a.frombytes(blob)
    if not _NATIVE:
        a.byteswap()
    return a


def chunks(xs: Sequence[int], vs: Sequence[float], size: int = CHUNK) -> list[Chunk]:
    """Points cut into chunks of `size`."""
    return [Chunk(xs[i:i + size], vs[i:i + size]) for i in range(0, len(xs), size)]


def bucketize(xs: Sequence[int], vs: Sequence[float], size: int) -> Buckets:
    """Points in increasing x as at most `size` buckets: what `Buckets.add` makes of them
    one by one, with the loops in C (min, max over slices). NaN and ±inf are skipped."""
    if not xs:
        return Buckets(size)
    total = sum(vs)
    if total - total != 0:  # a NaN or ±inf somewhere (or an overflowing sum): drop them
        kept = [(x, v) for x, v in zip(xs, vs, strict=True) if v - v == 0]
        if not kept:
            return Buckets(size)
        xs, vs = [p[0] for p in kept], [p[1] for p in kept]
    width = width_for(xs[0], xs[-1], size)
    rows = []
    i, n = 0, len(xs)
    while i < n:
        j = bisect_left(xs, (xs[i] // width + 1) * width, i)
        part = vs[i:j]
        rows.append((xs[j - 1], min(part), max(part), part[-1]))
        i = j
    return Buckets.of(rows, size, width)

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
