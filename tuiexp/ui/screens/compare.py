"""`C`: the marked runs' curves overlaid, and the params that differ."""

from __future__ import annotations

import json

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ...core.index import Index
from ..data import lineage_prefix
from ..messages import DetailLoaded
from ..widgets.chart import Chart, Line
from .detail import curve

PALETTE = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_cyan")


def differing(params: dict[str, dict]) -> list[tuple[str, list[str]]]:
    """Params whose value is not the same in every run, each with one text per run."""
    keys = sorted({k for p in params.values() for k in p})
    out = []
    for k in keys:
        vals = [json.dumps(p.get(k)) if k in p else "—" for p in params.values()]
        if len(set(vals)) > 1:
            out.append((k, vals))
    return out


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids

    def compose(self) -> ComposeResult:
        yield Static("comparing " + ", ".join(escape(r) for r in self.run_ids), id="header")
        with Vertical(id="top"):
            yield Chart("val accuracy (forks after their parent's prefix)", id="acc")
            yield Chart("val loss", log_y=True, id="loss")
        yield DataTable(id="params", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True)
    def load(self) -> None:
        with Index(self.app.logs) as index:  # type: ignore[attr-defined]
            rows = [r for r in (index.run(rid) for rid in self.run_ids) if r is not None]
            data = [(r, lineage_prefix(index, r) + index.epochs(r.id)) for r in rows]
        self.post_message(DetailLoaded(data))  # type: ignore[arg-type]

    def on_detail_loaded(self, msg: DetailLoaded) -> None:
        data = msg.detail or []
        colours = {r.id: PALETTE[i % len(PALETTE)] for i, (r, _) in enumerate(data)}
        for chart, key in (("#acc", "val_acc"), ("#loss", "val_loss")):
            self.query_one(chart, Chart).plot(
                [Line(r.id[-12:], curve(eps, key), colours[r.id]) for r, eps in data])
        table = self.query_one("#params", DataTable)
        table.clear(columns=True)
        table.add_column("param")
        for r, _ in data:
            table.add_column(f"[{colours[r.id]}]{escape(r.id[-16:])}[/]")
        rows = differing({r.id: {**r.params, "best_val_acc": r.best_val_acc, "status": r.status}
                          for r, _ in data})
        for k, vals in rows:
            table.add_row(k, *vals)
