"""The runs table: one row per run, updated cell by cell from poll deltas."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import DataTable

from ..data import RunState, bar, duration, elapsed, eta, fmt_num, lr_of, sparkline, visible_order

WIDTHS = {"id": 32, "experiment": 14, "status": 9, "epoch": 16, "loss": 12, "val acc": 12,
          "best": 6, "lr": 7, "bs": 4, "dropout": 7, "gpu": 5, "elapsed": 7, "eta": 6}
COLUMNS = tuple(WIDTHS)
STATUS_STYLE = {
    "queued": "yellow", "starting": "cyan", "running": "bold green", "finished": "blue",
    "failed": "bold red", "crashed": "bold red", "diverged": "magenta", "oom": "bold magenta",
    "cancelled": "dim",
}


def cells(st: RunState, depth: int, now: float, marked: bool) -> tuple[str, ...]:
    """The markup of a run's cells (pure: the same inputs give the same strings)."""
    r, p = st.row, st.row.params
    tree = ("  " * (depth - 1) + "└ ") if depth else ""
    mark = "[reverse]•[/]" if marked else " "
    done = f"{r.epoch or 0}/{r.epochs or '?'}"
    return (
        f"{mark}{tree}{escape(r.id)}",
        escape(r.experiment),
        f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]",
        f"{done:>7} {bar((r.epoch or 0) / r.epochs if r.epochs else 0)}",
        f"[red]{sparkline(st.loss.values())}[/]",
        f"[green]{sparkline(st.acc.values())}[/]",
        f"{r.best_val_acc:.1%}" if r.best_val_acc is not None else "",
        fmt_num(lr_of(r), ".1e"),
        fmt_num(p.get("batch_size"), "d") if isinstance(p.get("batch_size"), int) else "",
        fmt_num(p.get("dropout")),
        escape(str(r.gpu)) if r.gpu not in (None, "") else ("cpu" if r.started else ""),
        duration(elapsed(r, now)),
        duration(eta(r, now)),
    )


class RunsTable(DataTable):
    """Rows keyed by run id. `show` rebuilds only when the order changes."""

    def __init__(self, **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)  # type: ignore[arg-type]
        self.states: dict[str, RunState] = {}
        self.order: list[tuple[str, int]] = []
        self.shown: dict[str, tuple[str, ...]] = {}
        self.marked: set[str] = set()
        self.filter_text, self.sort_by, self.as_tree = "", "created", True

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name, width=WIDTHS[name])

    @property
    def current_id(self) -> str | None:
        if not self.order or self.cursor_row < 0 or self.cursor_row >= len(self.order):
            return None
        return self.order[self.cursor_row][0]

    def apply(self, changed: list[RunState], removed: list[str], now: float) -> int:
        """Fold a poll delta in and redraw; returns the number of cells written."""
        for st in changed:
            self.states[st.id] = st
        for rid in removed:
            self.states.pop(rid, None)
            self.marked.discard(rid)
        return self.show(now, {st.id for st in changed})

    def show(self, now: float, dirty: set[str] | None = None) -> int:
        """Redraw; with `dirty`, only those rows and live ones (their clocks) are recomputed."""
        rows = {rid: st.row for rid, st in self.states.items()}
        order = visible_order(rows, self.filter_text, self.sort_by, self.as_tree)
        if order == self.order and dirty is not None:
            new = dict(self.shown)
            for rid, depth in order:
                if rid in dirty or rows[rid].status == "running":
                    new[rid] = cells(self.states[rid], depth, now, rid in self.marked)
        else:
            new = {rid: cells(self.states[rid], depth, now, rid in self.marked)
                   for rid, depth in order}
        if order != self.order:
            return self._rebuild(order, new)
        written = 0
        for rid, row_cells in new.items():
            old = self.shown.get(rid)
            for col, (a, b) in enumerate(zip(old or (), row_cells, strict=False)):
                if a != b:
                    self.update_cell(rid, COLUMNS[col], b)
                    written += 1
        self.shown = new
        return written

    def _rebuild(self, order: list[tuple[str, int]], new: dict[str, tuple[str, ...]]) -> int:
        keep = self.current_id
        self.clear()
        for rid, _ in order:
            self.add_row(*new[rid], key=rid)
        self.order, self.shown = order, new
        ids = [rid for rid, _ in order]
        if keep in ids:
            self.move_cursor(row=ids.index(keep), animate=False)
        return len(new) * len(COLUMNS)

    def select_run(self, run_id: str) -> None:
        ids = [rid for rid, _ in self.order]
        if run_id in ids:
            self.move_cursor(row=ids.index(run_id), animate=False)
