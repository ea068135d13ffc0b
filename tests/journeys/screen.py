"""Reading a captured tmux pane the way a person reads the screen: the runs table's
header and rows, a column's cell under its title, sparkline cells, chart regions.

Layout-independent on purpose: columns are found by their titles in the header line,
rows by their labels, panels by their content. Nothing here imports tuiexp."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SPARK = set("▁▂▃▄▅▆▇█")
#: right-aligned columns: their values end where their titles end
RIGHT = ("epoch", "best", "lr", "bs", "drop", "seed", "elapsed", "eta", "q#")


def header_index(lines: list[str]) -> int | None:
    """The runs table's header: the first line with the titles `status` and `epoch`."""
    for i, line in enumerate(lines):
        words = line.split()
        if "status" in words and "epoch" in words:
            return i
    return None


def titles(header: str) -> list[tuple[str, int, int]]:
    """(title, start, end) of every word of the header line."""
    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", header)]


@dataclass
class Table:
    """The runs table of one capture."""

    header: str
    lines: list[str]  # the rows, in screen order

    @property
    def columns(self) -> list[str]:
        return [t for t, _, _ in titles(self.header) if not t.startswith(("▼", "▲"))]

    def label(self, line: str) -> str:
        """A row's run label: from after the mark column to the status column."""
        status = next((s for t, s, _ in titles(self.header) if t == "status"), len(line))
        return line[1:status].strip().lstrip("•").strip()

    def labels(self) -> list[str]:
        return [self.label(line) for line in self.lines]

    def row(self, pred: Callable[[str], bool]) -> str | None:
        """The first row whose label satisfies `pred`."""
        return next((line for line in self.lines if pred(self.label(line))), None)

    def cell(self, line: str, title: Callable[[str], bool] | str) -> str | None:
        """The text of `line` under the column whose title matches (None: no such
        column): left-aligned columns run from their title to the next title, right-aligned
        ones end where their title ends."""
        want = (lambda t: t == title) if isinstance(title, str) else title
        cols = titles(self.header)
        for i, (t, start, end) in enumerate(cols):
            if not want(t):
                continue
            if t in RIGHT:
                seg = line[:end]
                if len(seg) < end or seg.endswith(" "):
                    return ""
                return seg.split()[-1]
            nxt = cols[i + 1][1] if i + 1 < len(cols) else len(line)
            return line[start:nxt]
        return None


def table(pane: str) -> Table | None:
    """The runs table of a capture, or None when the runs screen is not shown."""
    lines = pane.splitlines()
    h = header_index(lines)
    if h is None:
        return None
    rows = []
    for line in lines[h + 1:]:
        if not line.strip() or line.lstrip().startswith(("No run", "Filter:")):
            break
        if line.startswith(("▊", "█", "▌")):  # a dialog or the filter box below the table
            break
        rows.append(line)
    return Table(lines[h], rows)


def sparks(text: str | None) -> int:
    """How many sparkline cells a cell shows."""
    return sum(ch in SPARK for ch in text or "")


def is_loss_title(t: str) -> bool:
    """The training loss's sparkline column: `loss`, or the loss's name."""
    return "loss" in t.lower()


def is_metric_title(t: str) -> bool:
    """The primary metric's sparkline column: titled `metric`, or by the metric's name."""
    return t in ("metric", "val_acc") or t.startswith("val_acc")


# -- the detail screen ------------------------------------------------------------------

def chart_region(pane: str) -> str:
    """The lines above the bottom panels (stdout, spec): charts and the confusion panel."""
    lines = pane.splitlines()
    end = next((i for i, line in enumerate(lines) if "╭" in line), len(lines))
    return "\n".join(lines[1:end])  # line 0 is the run's header


def boxes(pane: str) -> list[tuple[int, list[str]]]:
    """The bottom panels: (inner width, content lines) of each box drawn with ╭...╮."""
    lines = pane.splitlines()
    top = next((i for i, line in enumerate(lines) if "╭" in line), None)
    if top is None:
        return []
    out = []
    for m in re.finditer(r"╭[─ \w]*?╮", lines[top]):
        left, right = m.start(), m.end() - 1
        content = []
        for line in lines[top + 1:]:
            if len(line) <= right or line[left] in "╰":
                break
            content.append(line[left + 1:right])
        out.append((right - left - 1, content))
    return out


def axis_labels(region: str) -> list[str]:
    """The numbers written left of a chart's y axis (`0.632│`), top to bottom."""
    return re.findall(r"(?<![\w.])(-?[0-9][0-9.]*(?:e[-+]?[0-9]*)?)│", region)


# -- watching the screen over time ------------------------------------------------------

@dataclass
class Recording:
    """Every distinct capture of some panes while something happened, with its time."""

    frames: dict[str, list[tuple[float, str]]] = field(default_factory=dict)


class Recorder(threading.Thread):
    """Captures each pane every `every` seconds until stopped, keeping the captures that
    differ from the previous one: what a person watching the screen would have seen."""

    def __init__(self, panes: dict[str, Callable[[], str]], every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.panes, self.every = panes, every
        self.recording = Recording({name: [] for name in panes})
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for name, capture in self.panes.items():
                pane = capture()
                frames = self.recording.frames[name]
                if not frames or frames[-1][1] != pane:
                    frames.append((time.monotonic(), pane))
            self._stop_event.wait(self.every)

    def stop(self) -> Recording:
        self._stop_event.set()
        self.join(10)
        return self.recording
