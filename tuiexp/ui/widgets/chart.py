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
    """The chart as rich Text: a legend line cut to `width`, then `height - 1` rows of
    braille with whole numbers on the axes."""
    axis = AXIS
    w, h = max(4, width - axis), max(2, height - 1)
    pts = [(ln, [(_y(x, log_x), _y(y, log_y)) for x, y in ln.points
                 if _ok(y, log_y) and _ok(x, log_x)]) for ln in lines]
    xs = [x for _, p in pts for x, _ in p]
    ys = [y for _, p in pts for _, y in p]
    out = Text(no_wrap=True, overflow="ellipsis")
    # the legend never runs into the chart beside it: whole entries while they fit
    legend = Text(title, style="bold")
    legend.truncate(max(1, width), overflow="ellipsis")
    for ln in lines:
        entry = f"  ━ {ln.label}"
        if ln.label and legend.cell_len + len(entry) <= width:  # an unnamed line: no entry
            legend.append(entry, style=ln.style)
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
    top, bottom = ticks(_unlog(y1, log_y), _unlog(y0, log_y), axis - 1)
    out.append_text(legend)
    for r in range(h):
        label = top if r == 0 else bottom if r == h - 1 else ""
        out.append(f"\n{label:>{axis - 1}}│", style="dim")
        for c in range(w):
            out.append(chr(0x2800 + cells[r][c]) if cells[r][c] else " ", style=colour[r][c] or "")
    left, right = ticks(_unlog(x0, log_x), _unlog(x1, log_x), max(1, w // 2 - 1))
    out.append(f"\n{'':>{axis - 1}}└{left:<{w // 2}}{right:>{w - w // 2}}", style="dim")
    return out


AXIS = 8  # the y axis: a number of up to 7 cells and its line


def fit_number(v: float, width: int, digits: int = 3) -> str:
    """`v` in at most `width` cells with up to `digits` significant digits, fewer where
    it does not fit (`2.99e-05` becomes `3e-05`): never a number cut short."""
    if digits <= 3 and 1000 <= abs(v) < 10 ** width and len(whole := str(round(v))) <= width:
        return whole  # 2160, not 2.16e+03
    for d in range(digits, 0, -1):
        if len(text := format(v, f".{d}g")) <= width:
            return text
    return format(v, ".0e")


def ticks(a: float, b: float, width: int) -> tuple[str, str]:
    """The labels of a scale's two ends, with as many digits as it takes (and fits) to
    tell them apart: 1.1049 and 1.1014 read `1.105` and `1.101`, not `1.1` twice."""
    pair = fit_number(a, width), fit_number(b, width)
    for d in range(4, 8):
        if pair[0] != pair[1] or a == b:
            break
        pair = fit_number(a, width, d), fit_number(b, width, d)
    return pair


def _unlog(v: float, log: bool) -> float:
    return 10 ** v if log else v


def _ok(y: float | None, log_y: bool) -> bool:
    return y is not None and math.isfinite(y) and (y > 0 or not log_y)


def _y(y: float, log_y: bool) -> float:
    return math.log10(y) if log_y else y


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
