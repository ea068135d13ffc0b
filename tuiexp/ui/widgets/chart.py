"""A small braille line chart: several series, shared axes, no dependencies."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

# braille dot bits for (column, row) inside one character cell (2 x 4 dots)
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[tuple[float, float]]
    style: str = "cyan"


def render_lines(lines: list[Line], width: int, height: int, title: str = "",
                 log_y: bool = False, log_x: bool = False) -> Text:
    """The chart as rich Text: `height` rows of braille plus a legend line."""
    axis = 8
    w, h = max(4, width - axis), max(2, height - 1)
    pts = [(ln, [(_y(x, log_x), _y(y, log_y)) for x, y in ln.points
                 if _ok(y, log_y) and _ok(x, log_x)]) for ln in lines]
    xs = [x for _, p in pts for x, _ in p]
    ys = [y for _, p in pts for _, y in p]
    out = Text()
    legend = Text(f"{title}  " if title else "", style="bold")
    for ln in lines:
        if ln.label:  # an unnamed line needs no legend entry (a chart of one metric)
            legend.append(f"━ {ln.label}  ", style=ln.style)
    if not xs:
        out.append_text(legend)
        out.append("\n(no data yet)", style="dim")
        return out
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:  # a flat line mid-height, on a scale of its own size (an LR of 0.1 is not ±0.5)
        pad = abs(y0) * 0.1 or 0.5
        y0, y1 = y0 - pad, y1 + pad
    cells = [[0] * w for _ in range(h)]
    colour: list[list[str | None]] = [[None] * w for _ in range(h)]
    for ln, p in pts:
        dots = [(round((x - x0) / (x1 - x0) * (2 * w - 1)),
                 round((y1 - y) / (y1 - y0) * (4 * h - 1))) for x, y in p]
        for (ax, ay), (bx, by) in zip(dots, dots[1:] or dots, strict=False):
            n = max(abs(bx - ax), abs(by - ay), 1)
            for i in range(n + 1):
                dx, dy = ax + (bx - ax) * i // n, ay + (by - ay) * i // n
                cells[dy // 4][dx // 2] |= _DOTS[dx % 2][dy % 4]
                colour[dy // 4][dx // 2] = ln.style
    out.append_text(legend)
    for r in range(h):
        label = _tick(y1 if r == 0 else y0 if r == h - 1 else None, log_y)[: axis - 1]
        out.append(f"\n{label:>{axis - 1}}│", style="dim")
        for c in range(w):
            out.append(chr(0x2800 + cells[r][c]) if cells[r][c] else " ", style=colour[r][c] or "")
    out.append(f"\n{'':>{axis - 1}}└{_tick(x0, log_x):<{w // 2}}{_tick(x1, log_x):>{w - w // 2}}",
               style="dim")
    return out


def _ok(y: float | None, log_y: bool) -> bool:
    return y is not None and math.isfinite(y) and (y > 0 or not log_y)


def _y(y: float, log_y: bool) -> float:
    return math.log10(y) if log_y else y


def _tick(v: float | None, log_y: bool) -> str:
    if v is None:
        return ""
    return f"{10 ** v if log_y else v:.3g}"


class Chart(Widget):
    """A line chart widget; set `lines` (attributes down) and it redraws."""

    DEFAULT_CSS = "Chart { height: 10; }"

    def __init__(self, title: str = "", log_y: bool = False, log_x: bool = False, *,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.log_y, self.log_x = log_y, log_x
        self.lines: list[Line] = []

    def plot(self, lines: list[Line]) -> None:
        self.lines = lines
        self.refresh()

    def render(self) -> RenderableType:
        return render_lines(self.lines, self.size.width, self.size.height - 1, self.title,
                            self.log_y, self.log_x)
