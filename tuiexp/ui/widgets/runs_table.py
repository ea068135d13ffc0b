"""The runs table: one row per run, updated cell by cell from poll deltas."""

from __future__ import annotations

from rich.markup import escape
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from ...core import query
from ...core.index import RunRow
from ...core.metrics import fmt_value
from ...core.query import elapsed, epochs_done, eta, progress
from ..data import RunState, bar, duration, fmt_num, lr_of, sparkline, visible_order

WIDTHS = {"id": 32, "experiment": 14, "status": 9, "epoch": 16, "loss": 12, "metric": 12,
          "best": 6, "lr": 7, "bs": 4, "dropout": 7, "gpu": 5, "elapsed": 7, "eta": 6}
COLUMNS = tuple(WIDTHS)
STATUS_STYLE = {
    "queued": "yellow", "starting": "cyan", "running": "bold green", "finished": "blue",
    "failed": "bold red", "crashed": "bold red", "diverged": "magenta", "oom": "bold magenta",
    "cancelled": "dim", "preempted": "yellow", "pruned": "dim cyan",
}


def cells(st: RunState, depth: int, now: float, marked: bool,
          extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The markup of a run's cells (pure: the same inputs give the same strings); `extra`
    are the `[ui] columns` (metric column specs), after the best value."""
    r, p = st.row, st.row.params
    tree = ("  " * (depth - 1) + "└ ") if depth else ""
    mark = "[reverse]•[/]" if marked else " "
    done = f"{epochs_done(r)}/{r.epochs or '?'}"
    return (
        f"{mark}{tree}{escape(r.id)}",
        escape(r.experiment),
        f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]",
        f"{done:>7} {bar(progress(r))}",
        f"[red]{sparkline(st.values(0))}[/]",
        f"[green]{sparkline(st.values(1))}[/]",
        fmt_value(r.metric or "", r.best) if r.best is not None else "",
        *(_metric_cell(r, c) for c in extra),
        fmt_num(lr_of(r), ".1e"),
        fmt_num(p.get("batch_size"), "d") if isinstance(p.get("batch_size"), int) else "",
        fmt_num(p.get("dropout")),
        escape(str(r.gpu)) if r.gpu not in (None, "") else ("cpu" if r.started else ""),
        duration(elapsed(r, now)),
        duration(eta(r, now)),
    )


def _metric_cell(r: RunRow, column: str) -> str:
    v = query.value(r, column)
    return "" if v is None else fmt_value(query.metric_of_column(column) or column, v)


class RunsTable(DataTable):
    """Rows keyed by run id. `show` rebuilds only when the order changes; otherwise it
    writes the cells whose markup changed and repaints only their rows."""

    def __init__(self, extra: tuple[str, ...] = (), **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)  # type: ignore[arg-type]
        self.extra = extra
        at = COLUMNS.index("best") + 1
        self.columns_shown = (*COLUMNS[:at], *extra, *COLUMNS[at:])
        self.states: dict[str, RunState] = {}
        self.order: list[tuple[str, int]] = []
        self.shown: dict[str, tuple[str, ...]] = {}
        self.marked: set[str] = set()
        self.filter_text, self.sort_by, self.as_tree = "", "created", True
        self._second = -1  # the clock's second at the last show: elapsed/ETA move once a second

    def on_mount(self) -> None:
        for name in self.columns_shown:
            self.add_column(name, key=name, width=WIDTHS.get(name, max(8, min(len(name), 14))))

    @property
    def current_id(self) -> str | None:
        if not self.order or self.cursor_row < 0 or self.cursor_row >= len(self.order):
            return None
        return self.order[self.cursor_row][0]

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
        rows = {rid: st.row for rid, st in self.states.items()}
        order = visible_order(rows, self.filter_text, self.sort_by, self.as_tree)
        if order == self.order and dirty is not None:
            tick = int(now) != self._second
            new = dict(self.shown)
            for rid, depth in order:
                if rid in dirty or (tick and rows[rid].status == "running"):
                    new[rid] = cells(self.states[rid], depth, now, rid in self.marked, self.extra)
        else:
            new = {rid: cells(self.states[rid], depth, now, rid in self.marked, self.extra)
                   for rid, depth in order}
        self._second = int(now)
        if order != self.order:
            return self._rebuild(order, new)
        writes: dict[str, list[tuple[str, str]]] = {}
        for rid, row_cells in new.items():
            old = self.shown.get(rid)
            if old is row_cells:
                continue
            for col, (a, b) in enumerate(zip(old or (), row_cells, strict=False)):
                if a != b:
                    writes.setdefault(rid, []).append((self.columns_shown[col], b))
        self.shown = new
        self._write(writes)
        return sum(len(w) for w in writes.values())

    def _write(self, writes: dict[str, list[tuple[str, str]]]) -> None:
        """`update_cell` for many cells, repainting only their rows.

        DataTable's `update_cell` flushes every render cache and repaints the whole
        table for each cell; here the cells are set, only the cache entries of the
        rows written are dropped, and only those rows' lines are refreshed (nothing,
        when they are scrolled out of view)."""
        if not writes:
            return
        try:
            self._write_rows(writes)
        except (AttributeError, KeyError, TypeError, IndexError):  # DataTable internals moved
            for rid, cols in writes.items():
                for col, value in cols:
                    self.update_cell(rid, col, value)

    def _write_rows(self, writes: dict[str, list[tuple[str, str]]]) -> None:
        data = self._data
        cells_written = set()
        for rid, cols in writes.items():
            row = data[RowKey(rid)]
            for col, value in cols:
                row[ColumnKey(col)] = value
                cells_written.add((rid, col))
        rows_written = set(writes)
        indices = {self._row_locations.get(RowKey(rid)) for rid in rows_written}
        header = self.header_height if self.show_header else 0
        lines = [y + header for y, (key, _) in enumerate(self._y_offsets) if key in rows_written]
        # Keys: cell (row_key, column_key, ...), row (row_key, line, ...),
        # renderables (update_count, row_index), line (y, ...). StringKey == str.
        for key in list(self._cell_render_cache.keys()):
            if (_name(key[0]), _name(key[1])) in cells_written:
                self._cell_render_cache.discard(key)
        for key in list(self._row_render_cache.keys()):
            if _name(key[0]) in rows_written:
                self._row_render_cache.discard(key)
        for key in list(self._row_renderable_cache.keys()):
            if key[1] in indices:
                self._row_renderable_cache.discard(key)
        wanted = set(lines)
        for key in list(self._line_cache.keys()):
            if key[0] in wanted:
                self._line_cache.discard(key)
        width = max(self.size.width, self.virtual_size.width)
        for y in lines:
            self._refresh_region(Region(0, y, width, 1))

    def _rebuild(self, order: list[tuple[str, int]], new: dict[str, tuple[str, ...]]) -> int:
        keep = self.current_id
        self.clear()
        for rid, _ in order:
            self.add_row(*new[rid], key=rid)
        self.order, self.shown = order, new
        ids = [rid for rid, _ in order]
        if keep in ids:
            self.move_cursor(row=ids.index(keep), animate=False)
        return len(new) * len(self.columns_shown)

    def select_run(self, run_id: str) -> None:
        ids = [rid for rid, _ in self.order]
        if run_id in ids:
            self.move_cursor(row=ids.index(run_id), animate=False)


def _name(key: object) -> object:
    """The string of a DataTable row or column key (None for the header's)."""
    return getattr(key, "value", key)
