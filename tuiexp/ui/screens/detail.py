"""`enter`: one run's curves (after its lineage's prefix), confusion, stdout, spec."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import Footer, Log, Static

from ...store.index import Index, RunRow
from ...store.metrics import default_mode, fmt_value
from ...store.query import counts_steps, progress_text
from ...store.spec import INTERNAL_PARAMS
from .. import keys
from ..data import Delta, Detail, MetricChart, load_detail, summarize_confusion
from ..messages import DetailLoaded, ForkAsked
from ..widgets.chart import Chart, Line
from .base import DashboardScreen

PREFIX = "grey50"
CHARTS_PER_PAGE = 4
COLOURS = ("green", "red", "cyan", "magenta", "yellow", "bright_blue")


def chart_lines(c: MetricChart, colour: str) -> list[Line]:
    """A metric's line after its lineage's prefix; where buckets merged many points, the
    per-bucket maximum too, dim, so a spike stays visible."""
    own = [(x, last) for x, _lo, _hi, last in c.buckets.items]
    lines = []
    if c.prefix:
        lines.append(Line("parent", c.prefix, PREFIX))
        own = c.prefix[-1:] + own
    lines.append(Line("", own, colour))
    if c.buckets.width > 1:
        lines.append(Line("max", [(x, hi) for x, _lo, hi, _ in c.buckets.items], f"dim {colour}"))
    return lines


def heat(count: int, total: int) -> str:
    share = count / total if total else 0
    return " " if not count else "░▒▓█"[min(3, int(share * 4))]


def confusion_text(cur: dict[str, Any], prev: dict[str, Any] | None) -> Text:
    s = summarize_confusion(cur, prev)
    out = Text()
    # at most 30 columns a line: the panel is that narrow beside the charts at 80×24
    out.append(f"Confusion, epoch {s.epoch} ([ ] other)\n", style="bold")
    out.append(f"{'worst classes':<14} {'acc':>6} {'of':>4}\n", style="underline")
    for name, acc, n in s.worst:
        out.append(f"  {name[:12]:<12} {acc:6.1%} {n:>4}\n")
    out.append("most confused   true→pred\n", style="underline")
    for t, p, c, share in s.pairs:
        out.append(f"  {t[:8]:>8}→{p[:8]:<8} {c:4d} {share:4.0%}\n")
    if s.changes:
        out.append("since the previous epoch\n", style="underline")
        for name, d in s.changes:
            out.append(f"  {name[:12]:<12} {d:+6.1%}\n", style="green" if d > 0 else "red")
    if len(s.labels) <= 20:
        out.append("heatmap (rows: true)\n", style="underline")
        for i, name in enumerate(s.labels):
            total = sum(s.matrix[i])
            cells = "".join(heat(c, total) for c in s.matrix[i])
            out.append(f"  {name[:10]:>10} {cells}\n")
    return out


class DetailScreen(DashboardScreen):
    BINDINGS = keys.DETAIL

    def __init__(self, run_id: str, names: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.names = names or {}  # run labels, as the table names the runs
        self.detail: Detail | None = None
        self.cm_epoch: int | None = None  # None: follow the latest
        self.shown_stdout = ""
        self.page = 0

    def compose(self) -> ComposeResult:
        yield Static(f"run {escape(self.run_id)} — loading…", id="header")
        with Horizontal(id="top"):
            with Grid(id="charts"):
                for i in range(CHARTS_PER_PAGE):
                    yield Chart(id=f"chart{i}")
            yield Static("", id="confusion")
        with Horizontal(id="bottom"):
            yield Log(max_lines=500, id="stdout")
            with VerticalScroll(id="spec"):
                yield Static("", id="spec-body")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def apply_poll(self, delta: Delta) -> None:
        if self.run_id in delta.removed:
            self.query_one("#header", Static).update(
                f"run {escape(self.run_id)} was archived (logs/archive/{escape(self.run_id)}).")
        elif any(st.id == self.run_id for st in delta.changed) and self.is_current:
            self.load()

    @work(thread=True, exit_on_error=False, exclusive=True)
    def load(self) -> None:
        logs = self.dashboard.logs
        with Index(logs) as index:
            detail = load_detail(index, logs, self.run_id, self.cm_epoch)
        self.post_message(DetailLoaded(detail))

    def on_detail_loaded(self, msg: DetailLoaded) -> None:
        d = self.detail = msg.detail
        if d is None:
            self.query_one("#header", Static).update(f"run {escape(self.run_id)} is gone.")
            return
        r = d.row
        self.draw_charts()
        self.show_stdout(d.stdout or ("(no output yet)" if r.status in ("queued", "starting", "running")
                                      else "(printed nothing)"))
        self.query_one("#spec-body", Static).update(spec_table(d.row.spec))
        panel = self.query_one("#confusion", Static)
        panel.set_class(d.confusion is None, "hidden")  # the charts take the width instead
        if d.confusion:
            panel.update(confusion_text(d.confusion, d.prev_confusion))

    def draw_header(self, pages: int) -> None:
        """The run, where it stands, the page of charts, its constants, tags and note."""
        if self.detail is None:
            return
        r = self.detail.row
        best = (f"best {r.metric} {fmt_value(r.metric, r.best)} @{r.best_at}"
                if r.metric and r.best is not None else "")
        second = [r.id]
        if r.parent:
            second.append(f"fork of {self.names.get(r.parent, r.parent)} at epoch {r.fork_epoch}")
        if pages > 1:
            second.append(f"charts {self.page + 1}/{pages} (n/p)")
        moving = {name for name, scope in r.summaries if (name, scope) not in self.detail.constants}
        fixed = {name: v for (name, _), v in self.detail.constants.items() if name not in moving}
        if fixed:
            second.append("constant: " + ", ".join(f"{n} {fmt_value(n, v)}" for n, v in fixed.items()))
        self.query_one("#header", Static).update(
            f"[b]{escape(self.names.get(r.id, r.experiment))}[/]  {r.status} {escape(r.message)}"
            f"  {'' if counts_steps(r) else 'epoch '}{progress_text(r)}  {best}"
            f"\n[dim]{escape(' · '.join(second))}[/]" + notes_text(r)
            + "".join(f"\n[bold yellow]warning[/] {escape(w)}" for w in r.warnings[:2]))

    def draw_charts(self) -> None:
        """The current page of the run's metrics, the primary one first."""
        charts = self.detail.charts if self.detail else []
        pages = max(1, -(-len(charts) // CHARTS_PER_PAGE))
        self.page = min(self.page, pages - 1)
        self.draw_header(pages)
        shown = charts[self.page * CHARTS_PER_PAGE:(self.page + 1) * CHARTS_PER_PAGE]
        for i in range(CHARTS_PER_PAGE):
            chart = self.query_one(f"#chart{i}", Chart)
            chart.display = i < len(shown) or (i == 0 and not charts)  # no empty frames
            if i >= len(shown):
                chart.title, chart.log_y = "no metric logged yet", False
                chart.plot([])
                continue
            c = shown[i]
            n = self.page * CHARTS_PER_PAGE + i + 1
            chart.title = f"{c.name} by {c.scope}"
            chart.log_y = default_mode(c.name) == "min" and "loss" in c.name.lower()
            chart.plot(chart_lines(c, COLOURS[(n - 1) % len(COLOURS)]))

    def action_page(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self.draw_charts()

    def show_stdout(self, text: str) -> None:
        """Append what is new, so a reader scrolled back is not thrown to the top each tick."""
        log, shown = self.query_one("#stdout", Log), self.shown_stdout
        if text.startswith(shown):
            if len(text) > len(shown):
                log.write(text[len(shown):])
        else:  # the tail window moved on: start again
            log.clear()
            log.write(text)
        self.shown_stdout = text

    def action_confusion(self, step: int) -> None:
        epochs = self.detail.confusion_epochs if self.detail else []
        if not epochs:
            return
        cur = self.cm_epoch if self.cm_epoch in epochs else epochs[-1]
        self.cm_epoch = epochs[max(0, min(len(epochs) - 1, epochs.index(cur) + step))]
        self.load()

    def action_fork(self) -> None:
        """Back to the runs screen, with the fork form of this run open (the app's)."""
        self.post_message(ForkAsked(self.run_id))


NOTE_LINES = 3  # of the note in the header; `tuiexp show` prints all of it


def notes_text(r: RunRow) -> str:
    """The run's tags and note as header lines (markup), '' when it has neither."""
    out = f"\n[cyan]tags[/] {escape(' '.join(r.tags))}" if r.tags else ""
    lines = r.note.splitlines()
    for i, line in enumerate(lines[:NOTE_LINES]):
        more = " …" if i == NOTE_LINES - 1 and len(lines) > NOTE_LINES else ""
        out += f"\n{'[cyan]note[/] ' if i == 0 else '     '}{escape(line)}{more}"
    return out


#: the params a reader looks for first, in this order; then the rest by name
FIRST_PARAMS = ("optimizer", "lr", "schedule", "batch_size", "dropout", "epochs", "model")


def param_text(v: object) -> str:
    """A param's value as a reader writes it: strings bare, the rest as compact JSON."""
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def param_order(params: Mapping[str, object]) -> list[str]:
    """The params that matter first (FIRST_PARAMS), then the rest by name, internal last."""
    first = [k for k in FIRST_PARAMS if k in params]
    rest = sorted(k for k in params if k not in FIRST_PARAMS and k not in INTERNAL_PARAMS)
    return first + rest + sorted(k for k in params if k in INTERNAL_PARAMS)


def spec_table(spec: dict[str, Any]) -> Table:
    """The frozen spec: the params that matter first, then where the run came from."""
    t = Table(box=None, show_header=False, padding=(0, 1), title="spec")
    params = spec.get("params", {})
    for k in param_order(params):
        style = "dim" if k in INTERNAL_PARAMS else ""
        t.add_row(f"[{style}]{escape(k)}[/]" if style else escape(k), escape(param_text(params[k])),
                  style=style or None)
    for k in ("seed", "parent", "fork_epoch", "experiment", "id", "git_commit", "command"):
        if spec.get(k) is not None:
            t.add_row(f"[dim]{k}[/]", escape(str(spec[k] if k != "command" else " ".join(spec[k]))))
    return t
