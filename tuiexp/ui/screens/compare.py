"""`C`: the marked runs' curves overlaid, and the params that differ."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static

from ...config.params import defaults_for
from ...results.report import curve_metrics
from ...store import query
from ...store.index import Index
from ...store.metrics import fmt_value
from ...store.spec import INTERNAL_PARAMS
from .. import keys
from ..messages import CompareLoaded
from ..widgets.chart import Chart, Line
from .base import DashboardScreen
from .detail import param_order, param_text

PALETTE = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_cyan")


def differing(params: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Params whose value is not the same in every run, each with one text per run.
    Values are compared in a canonical form (a table's key order is no difference);
    internal params (`schedule_start`) are left out."""
    keys = [k for k in param_order({k: None for p in params.values() for k in p})
            if k not in INTERNAL_PARAMS]
    out = []
    for k in keys:
        vals = [param_text(p[k]) if k in p else "—" for p in params.values()]
        if len(set(vals)) > 1:
            out.append((k, vals))
    return out


def with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """A run's params with its trainer's defaults filled in (the built-in trainer's
    schema; a script's params as they are), so an unset default is no difference."""
    return {**defaults_for(spec), **spec.get("params", {})}


def short_id(run_id: str) -> str:
    """A run id without its date and time stamp: `sweep-aaaa`."""
    return re.sub(r"^\d{8}-\d{6}-", "", run_id)


class CompareScreen(DashboardScreen):
    BINDINGS = keys.COMPARE

    def __init__(self, run_ids: list[str], labels: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.labels = {rid: (labels or {}).get(rid) or short_id(rid) for rid in run_ids}

    def compose(self) -> ComposeResult:
        yield Static("comparing " + ", ".join(escape(self.labels[r]) for r in self.run_ids),
                     id="header")
        with Vertical(id="top"):
            yield Chart(id="primary")
            yield Chart(log_y=True, id="loss")
        yield DataTable(id="params", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True)
    def load(self) -> None:
        with Index(self.dashboard.logs) as index:
            rows = [r for r in (query.get_run(index, rid) for rid in self.run_ids) if r]
            names = curve_metrics(rows)
            query.attach_curves(index, rows, names)
            data = [(r, {n: pts + r.curves.get(n, []) for n, pts in
                         query.lineage_prefix(index, r, names).items()}) for r in rows]
        self.post_message(CompareLoaded(names, data))

    def on_compare_loaded(self, msg: CompareLoaded) -> None:
        names, data = msg.names, msg.runs
        colours = {r.id: PALETTE[i % len(PALETTE)] for i, (r, _) in enumerate(data)}
        for chart_id, name in zip(("#primary", "#loss"), (*names, None, None), strict=False):
            chart = self.query_one(chart_id, Chart)
            chart.title = name or ""  # a fork's line starts on its parent's prefix
            chart.plot([Line(self.labels.get(r.id, r.id), curves.get(name, []), colours[r.id])
                        for r, curves in data] if name else [])
        table = self.query_one("#params", DataTable)
        table.clear(columns=True)
        table.add_column("param")
        for r, _ in data:
            table.add_column(f"[{colours[r.id]}]{escape(self.labels.get(r.id, r.id))}[/]")
        rows = differing({r.id: {**with_defaults({**r.spec, "params": r.params}),
                                 **({f"best {r.metric}": fmt_value(r.metric, r.best)}
                                    if r.metric else {}),
                                 "status": r.status}
                          for r, _ in data})
        for k, vals in rows:
            table.add_row(k, *vals)
