"""The runs table: one line per run, drawn with Textual's line API (`ScrollView` +
`render_line`), so only the visible rows are ever rendered and nothing private of a
Textual widget is touched.

Each row's cells are markup strings computed from a `RunState` (`cells`, pure); the
widget keeps the last cells of every row and a cache of rendered lines. A poll delta
recomputes the changed rows' cells, drops only their cached lines and repaints only
those of them on screen. Columns carry a priority: as the terminal narrows the least
important hide, and the run label takes what width is left.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.markup import escape
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...config.params import defaults_for
from ...errors import UsageError
from ...store import query
from ...store.index import RunRow
from ...store.metrics import fmt_value
from ...store.query import elapsed, eta, progress, progress_text
from .. import keys
from ..data import RunState, bar, duration, fmt_num, lr_of, sparkline, visible_order

STATUS_STYLE = {
    "queued": "yellow", "starting": "cyan", "running": "bold green", "finished": "blue",
    "failed": "bold red", "crashed": "bold red", "diverged": "magenta", "oom": "bold magenta",
    "cancelled": "dim", "preempted": "yellow", "pruned": "dim cyan",
}


@dataclass(frozen=True)
class Column:
    """A table column: `priority` 0 always shows; higher numbers hide first as the
    terminal narrows. The `grow` column takes the width left, up to what its cells need."""

    key: str
    title: str
    width: int
    priority: int
    right: bool = False
    grow: bool = False


BEFORE_EXTRA = (
    Column("run", "run", 20, 0, grow=True),
    Column("id", "id", 26, 9),
    Column("experiment", "experiment", 12, 8),
    Column("status", "status", 10, 0),
    Column("pos", "q#", 3, 4, right=True),
    Column("epoch", "epoch", 7, 1, right=True),
    Column("progress", "progress", 8, 7),
    # one sparkline always fits 80 columns: a live view's point is its curves
    Column("loss", "loss", 12, 1),
    Column("metric", "metric", 12, 4),
    Column("best", "best", 7, 1, right=True),
)
AFTER_EXTRA = (
    Column("tags", "tags", 10, 3),
    Column("lr", "lr", 7, 5, right=True),
    Column("bs", "bs", 4, 6, right=True),
    Column("dropout", "drop", 5, 6, right=True),
    Column("seed", "seed", 4, 5, right=True),
    Column("gpu", "gpu", 4, 8),
    Column("job", "job", 8, 7),
    Column("node", "node", 8, 7),
    Column("reason", "pending", 12, 7),
    Column("elapsed", "elapsed", 7, 5, right=True),
    Column("eta", "eta", 6, 2, right=True),
)
LIVE = ("queued", "starting", "running")


def _live(r: RunRow) -> bool:
    return r.status in LIVE


#: optional columns, each shown while some row can have a value in it: decided by what
#: a run is (live, swept, tagged), not by what it logged so far, so no column comes and
#: goes while a run trains
OPTIONAL: dict[str, Callable[[RunRow], bool]] = {
    "pos": lambda r: r.status == "queued",
    "seed": lambda r: r.seed is not None,
    "gpu": lambda r: bool(r.gpu) or (r.started is not None and not r.job_id),
    "eta": lambda r: r.status in ("starting", "running"),
    "lr": lambda r: _live(r) or lr_of(r) is not None,
    "bs": lambda r: isinstance(r.params.get("batch_size"), int),
    "dropout": lambda r: r.params.get("dropout") is not None,
    "best": lambda r: _live(r) or r.best is not None,
    "elapsed": lambda r: _live(r) or r.started is not None,
    "tags": lambda r: bool(r.tags),
    "job": lambda r: bool(r.job_id),
    "node": lambda r: bool(r.node) and r.status in ("starting", "running"),
    "reason": lambda r: bool(r.reason) and r.status == "starting",
}
COLUMNS = tuple(c.key for c in (*BEFORE_EXTRA, *AFTER_EXTRA))
#: the column whose header shows the sort's arrow
SORT_COLUMN = {"created": "run", "id": "id", "experiment": "experiment", "status": "status",
               "best": "best", "epoch": "epoch"}


def columns_for(extra: tuple[str, ...]) -> tuple[Column, ...]:
    """Every column, `[ui] columns` metric columns after the best value."""
    extras = tuple(Column(c, c, max(7, min(len(c), 12)), 3, right=True)
                   for c in dict.fromkeys(extra) if c not in COLUMNS)  # "best" is shown already
    return (*BEFORE_EXTRA, *extras, *AFTER_EXTRA)


def layout(columns: Iterable[Column], width: int, grow_to: int = 0,
           hidden: Iterable[str] = ()) -> list[tuple[Column, int]]:
    """The columns that fit in `width` cells (one space between), in table order, each
    with its width. The most important come first (priority 0 always); the `grow` column
    widens up to `grow_to` before columns of priority 5 and above get any room."""
    skip = set(hidden)
    cols = [c for c in columns if c.key not in skip]
    used, keep = 0, set()
    grow = next((c for c in cols if c.grow), None)

    def take(wanted: Iterable[Column]) -> None:
        nonlocal used
        for c in sorted(wanted, key=lambda c: c.priority):
            if used + c.width + 1 <= width or c.priority == 0:
                keep.add(c.key)
                used += c.width + 1

    take(c for c in cols if c.priority < 5)
    extra = max(0, min(width - used, grow_to - grow.width)) if grow else 0
    used += extra
    take(c for c in cols if c.priority >= 5)
    return [(c, c.width + extra if c.grow else c.width) for c in cols if c.key in keep]


# -- labels --------------------------------------------------------------------------

def run_labels(rows: dict[str, RunRow]) -> dict[str, str]:
    """Each run's label as every view writes it (`query.labels`, resolved params)."""
    return query.run_labels(rows, defaults_for)


def queue_positions(rows: Iterable[RunRow]) -> dict[str, int]:
    """1-based place of each queued run in the queue (the supervisor's order)."""
    queued = sorted((r for r in rows if r.status == "queued"),
                    key=lambda r: (-r.priority, r.queue_pos, r.id))
    return {r.id: i for i, r in enumerate(queued, 1)}


# -- cells -----------------------------------------------------------------------------

def cells(st: RunState, depth: int, now: float, marked: bool, extra: tuple[str, ...] = (),
          label: query.Label | None = None, pos: int | None = None) -> dict[str, str]:
    """The markup of a run's cells by column key (pure: the same inputs give the same
    strings); `extra` are the `[ui] columns` (metric column specs)."""
    r, p = st.row, st.row.params
    tree = ("  " * (depth - 1) + "└ ") if depth else ""
    name = (label.under_parent if depth else label.text) if label else r.id
    mark = "[reverse]•[/]" if marked else " "
    out = {
        "run": f"{mark}{tree}{escape(name)}",
        "id": escape(r.id),
        "experiment": escape(r.experiment),
        # `!`: the run has warnings (a script whose output gave no metric...): the detail
        # and `tuiexp show` say them
        "status": f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]"
                  + ("[bold yellow]![/]" if r.warnings else ""),
        "pos": str(pos) if pos else "",
        "epoch": progress_text(r, width=7),
        "progress": bar(progress(r)),
        "loss": f"[red]{sparkline(st.values(0))}[/]",
        "metric": f"[green]{sparkline(st.values(1))}[/]",
        "best": fmt_value(r.metric or "", r.best) if r.best is not None else "",
        "tags": f"[cyan]{escape(' '.join(r.tags))}[/]" if r.tags else "",
        "lr": fmt_num(lr_of(r), ".1e"),
        "bs": fmt_num(p.get("batch_size"), "d") if isinstance(p.get("batch_size"), int) else "",
        "dropout": fmt_num(p.get("dropout")),
        "seed": "" if r.seed is None else str(r.seed),
        "gpu": escape(str(r.gpu)) if r.gpu not in (None, "") else (
            "cpu" if r.started and not r.job_id else ""),  # a Slurm job's node says where
        "job": escape(r.job_id or ""),
        "node": escape(r.node or "") if r.status in ("starting", "running") else "",
        "reason": escape(r.reason) if r.status == "starting" else "",
        "elapsed": duration(elapsed(r, now)),
        "eta": duration(eta(r, now)),
    }
    for c in extra:
        out.setdefault(c, _metric_cell(r, c))
    return out


def _metric_cell(r: RunRow, column: str) -> str:
    v = query.value(r, column)
    return "" if v is None else fmt_value(query.metric_of_column(column) or column, v)


class RunsTable(ScrollView, can_focus=True):
    """Rows keyed by run id, in tree order. `show` recomputes the cells of the rows that
    changed (live ones once a second, for the clocks) and repaints only those lines."""

    BINDINGS: ClassVar[list[BindingType]] = keys.TABLE
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "runs-table--header", "runs-table--even", "runs-table--odd", "runs-table--cursor",
        "runs-table--hint"}
    DEFAULT_CSS = """
    RunsTable { background: $surface; color: $foreground; overflow-x: hidden; }
    RunsTable > .runs-table--header { text-style: bold; background: $panel; color: $foreground; }
    RunsTable > .runs-table--even { background: $surface-lighten-1 50%; }
    RunsTable > .runs-table--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    RunsTable:focus > .runs-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    RunsTable > .runs-table--hint { color: $text-muted; }
    """

    class Selected(Message):
        """A row was double-clicked."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    def __init__(self, extra: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(**kw)
        self.extra = extra
        self.columns = columns_for(extra)
        self.states: dict[str, RunState] = {}
        self.order: list[tuple[str, int]] = []
        self.index_of: dict[str, int] = {}  # run id -> its row
        self.shown: dict[str, dict[str, str]] = {}
        self.labels: dict[str, query.Label] = {}
        self._logged: dict[str, dict[str, Any]] = {}  # the params reported at the last labelling
        self.positions: dict[str, int] = {}
        self.marked: set[str] = set()
        self.filter_text, self.sort_by, self.as_tree = "", "created", True
        self.filter_error: str | None = None  # the sentence on a filter term not understood
        self.cursor_row = 0
        self.drawn = False  # a first delta arrived: an empty table means no runs
        self._second = -1  # the clock's second at the last show: elapsed/ETA move once a second
        self._lines: dict[tuple[str, bool], Strip] = {}  # rendered rows (id, under cursor)
        self._layout: list[tuple[Column, int]] = []
        self._layout_width = -1
        self._label_width = 0
        self._empty: frozenset[str] = frozenset()  # optional columns with no value
        self._header = ""  # the sort the header was drawn for

    # -- the model ---------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def current_id(self) -> str | None:
        if not self.order or not 0 <= self.cursor_row < len(self.order):
            return None
        return self.order[self.cursor_row][0]

    @property
    def names(self) -> dict[str, str]:
        """Each run's label (`query.labels`): how dialogs name the runs of this table."""
        return {rid: label.text for rid, label in self.labels.items()}

    def get_cell(self, run_id: str, column: str) -> str:
        """The markup of one cell as last drawn."""
        return self.shown[run_id][column]

    def fold(self, changed: list[RunState], removed: list[str]) -> None:
        """Take a poll delta in without drawing (the screen is hidden)."""
        for st in changed:
            self.states[st.id] = st
        for rid in removed:
            self.states.pop(rid, None)
            self.marked.discard(rid)

    def apply(self, changed: list[RunState], removed: list[str], now: float) -> int:
        """Fold a poll delta in and redraw; returns the number of cells written."""
        self.fold(changed, removed)
        return self.show(now, {st.id for st in changed})

    def show(self, now: float, dirty: set[str] | None = None) -> int:
        """Redraw; with `dirty`, only those rows and, once a second, live ones are recomputed."""
        self.drawn = True
        rows = {rid: st.row for rid, st in self.states.items()}
        try:
            order = visible_order(rows, self.filter_text, self.sort_by, self.as_tree)
            self.filter_error = None
        except UsageError as e:  # the hint line says what is wrong with the filter
            order, self.filter_error = [], str(e)
        relabel = dirty is None or order != self.order or any(
            rid not in self.labels or rid in self.positions or rows[rid].status == "queued"
            or rows[rid].logged_params != self._logged.get(rid) for rid in dirty)
        if relabel:  # labels and queue places depend on the other runs
            labels, positions = query.labels(rows, defaults_for), queue_positions(rows.values())
            dirty = None if (labels != self.labels or positions != self.positions) else dirty
            self.labels, self.positions = labels, positions
            self._logged = {rid: r.logged_params for rid, r in rows.items()}
        if order == self.order and dirty is not None:
            tick = int(now) != self._second
            new = dict(self.shown)
            for rid, depth in order:
                if rid in dirty or (tick and rows[rid].status == "running"):
                    new[rid] = self._cells(rid, depth, now)
        else:
            new = {rid: self._cells(rid, depth, now) for rid, depth in order}
        self._second = int(now)
        shown = [rows[rid] for rid, _ in order]
        empty = frozenset(k for k, can in OPTIONAL.items() if not any(map(can, shown)))
        if not order:  # the hint names the filter, which may have changed
            self.refresh()
        if order != self.order or empty != self._empty:
            self._empty = empty
            return self._rebuild(order, new)
        if self._header != self.sort_by:
            self.refresh(Region(0, 0, self.size.width, 1))
        written = 0
        for rid, row_cells in new.items():
            old = self.shown.get(rid)
            if old is row_cells:
                continue
            n = sum(1 for k, v in row_cells.items() if old is None or old.get(k) != v)
            if n:
                written += n
                self._repaint(rid)
        self.shown = new
        return written

    def _cells(self, rid: str, depth: int, now: float) -> dict[str, str]:
        return cells(self.states[rid], depth, now, rid in self.marked, self.extra,
                     self.labels.get(rid), self.positions.get(rid))

    def _rebuild(self, order: list[tuple[str, int]], new: dict[str, dict[str, str]]) -> int:
        keep = self.current_id
        self.order, self.shown = order, new
        self.index_of = {rid: i for i, (rid, _) in enumerate(order)}
        self._label_width = max((Text.from_markup(c["run"]).cell_len for c in new.values()),
                                default=0)
        self._layout_width = -1  # the run column's width may change
        self._lines.clear()
        self.virtual_size = Size(self.scrollable_content_region.width, len(order) + 1)
        self.move_cursor(row=self.index_of.get(keep, self.cursor_row) if keep else self.cursor_row)
        self.refresh()
        return sum(len(c) for c in new.values())

    def _repaint(self, rid: str) -> None:
        """Drop a row's rendered lines and repaint it if it is on screen."""
        self._lines.pop((rid, False), None)
        self._lines.pop((rid, True), None)
        index = self.index_of.get(rid)
        if index is not None:
            top = int(self.scroll_offset.y)
            if top <= index < top + self.size.height:
                self.refresh_line(index + 1)

    def select_run(self, run_id: str) -> None:
        """Put the cursor on a run (if it is shown)."""
        if run_id in self.index_of:
            self.move_cursor(row=self.index_of[run_id])

    # -- the cursor ----------------------------------------------------------------------
    def move_cursor(self, row: int, animate: bool = False) -> None:
        """Put the cursor on `row` (clamped) and scroll it into view."""
        old = self.current_id
        self.cursor_row = max(0, min(row, len(self.order) - 1))
        new = self.current_id
        for rid in {r for r in (old, new) if r is not None}:
            self._repaint(rid)
        if self.order:
            top, rows = int(self.scroll_offset.y), max(1, self.size.height - 1)
            if self.cursor_row < top:
                self.scroll_to(y=self.cursor_row, animate=animate)
            elif self.cursor_row >= top + rows:
                self.scroll_to(y=self.cursor_row - rows + 1, animate=animate)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.order) - 1)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.size.height - 2))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = int(self.scroll_offset.y) + offset.y - 1
        if row < len(self.order):
            self.move_cursor(row)
            if event.chain >= 2:
                self.post_message(self.Selected(self.order[row][0]))

    # -- drawing ---------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._layout_width = -1
        self._lines.clear()
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.order) + 1)

    def visible_columns(self) -> list[tuple[Column, int]]:
        """The columns shown at the current width, with their widths."""
        width = self.scrollable_content_region.width
        if width != self._layout_width:
            self._layout = layout(self.columns, width - 1, self._label_width, self._empty)
            self._layout_width = width
        return self._layout

    def header_text(self) -> Text:
        """The header line: column titles, the sorted column with an arrow."""
        cols = self.visible_columns()
        self._header = self.sort_by
        shown = {c.key for c, _ in cols}
        by = SORT_COLUMN.get(self.sort_by, "run")
        if by not in shown:
            by = "run"
        titles = []
        for c, _ in cols:
            title = c.title
            if c.key == by:
                title += " ▼" if by != "run" else f" ▼{'age' if self.sort_by == 'created' else self.sort_by}"
            titles.append(title)
        return self._line([Text(t) for t in titles], cols)

    def _line(self, texts: list[Text], cols: list[tuple[Column, int]]) -> Text:
        line = Text(" ", no_wrap=True, end="")
        for (c, w), t in zip(cols, texts, strict=True):
            if t.cell_len > w:
                t.truncate(w, overflow="ellipsis")
            pad = w - t.cell_len
            if c.right:
                line.append(" " * pad)
                line.append_text(t)
            else:
                line.append_text(t)
                line.append(" " * pad)
            line.append(" ")
        return line

    def _strip(self, text: Text, style: Style) -> Strip:
        width = self.scrollable_content_region.width
        segments = list(text.render(self.app.console))
        return Strip(segments).apply_style(style).crop_extend(0, width, style)

    def render_line(self, y: int) -> Strip:
        """Line 0 is the header; below it the rows from the scroll position down."""
        if y == 0:
            return self._strip(self.header_text(), self.get_component_rich_style("runs-table--header"))
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.order):
            hint = self._hint_lines() if not self.order and self.drawn else []
            if 0 <= y - 2 < len(hint):
                return self._strip(Text(f" {hint[y - 2]}"),
                                   self.get_component_rich_style("runs-table--hint"))
            return Strip.blank(self.scrollable_content_region.width, self.rich_style)
        rid = self.order[index][0]
        key = (rid, index == self.cursor_row)
        strip = self._lines.get(key)
        if strip is None:
            cols = self.visible_columns()
            row = self.shown[rid]
            text = self._line([Text.from_markup(row.get(c.key, "")) for c, _ in cols], cols)
            if key[1]:
                style = self.get_component_rich_style("runs-table--cursor")
            else:
                style = self.rich_style + self.get_component_rich_style(
                    "runs-table--even" if index % 2 else "runs-table--odd")
            strip = self._lines[key] = self._strip(text, style)
        return strip

    def _hint_lines(self) -> list[str]:
        """The empty hint, wrapped to the width (a filter's error can be long)."""
        return textwrap.wrap(self.empty_hint(), max(20, self.scrollable_content_region.width - 2))

    def empty_hint(self) -> str:
        """What to do when no row shows."""
        if self.filter_error:
            return f"Filter: {self.filter_error[0].upper()}{self.filter_error[1:]}"
        if self.states:
            return f"No run matches {self.filter_text.strip()!r}; esc clears the filter."
        return "No runs yet: press n to queue one (? lists every key)."

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
