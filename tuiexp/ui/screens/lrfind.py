"""`L`: the LR range test of an experiment (the built-in trainer's `tuiexp lr-find`), run
as a subprocess from a worker thread, its curve drawn as it comes; then loss against LR,
the suggested LR and why, the PNG's place, and `y` to queue the experiment with it."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, ProgressBar, Static

from ...config import loader, model
from ...errors import TuiexpError
from ...queue.client import Client
from ...search import lrfind
from ...search.launch import launch
from .. import keys
from ..widgets.chart import Chart, Line
from .base import DashboardScreen
from .new import experiment_options

#: how a client command reaches the queue: the runs screen's worker (a notification after)
CallClient = Callable[[Callable[[Client], str]], object]
Points = list[tuple[float, float]]
DRAW_EVERY = 0.25  # seconds between redraws of the curve while the test runs


class ExperimentPicker(ModalScreen["str | None"]):
    """Pick the experiment to test (when no run is under the cursor)."""

    BINDINGS = keys.PICKER

    def __init__(self, config_path: Path) -> None:
        super().__init__()
        self.config_path = config_path
        self.error = ""
        self.options: list[Any] = []

    def compose(self) -> ComposeResult:
        try:
            self.options = experiment_options(loader.load(self.config_path))
        except TuiexpError as e:
            self.error = str(e)
        with Vertical(classes="dialog"):
            yield Static(f"[b]LR range test[/] of an experiment of {escape(str(self.config_path))}")
            yield OptionList(*self.options, id="experiments")
            yield Static("[dim]enter: run the test · esc[/]")

    def on_mount(self) -> None:
        if self.error or not self.options:
            self.notify(self.error or f"{self.config_path} has no experiment to test.",
                        severity="error", timeout=8)
            self.dismiss(None)
            return
        self.query_one(OptionList).focus()
        self.query_one(OptionList).highlighted = 0

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class LrFindScreen(DashboardScreen):
    """The range test of one experiment: progress, then the curve and the suggestion."""

    DEFAULT_CSS = """
    LrFindScreen #lrf-chart { height: 1fr; min-height: 8; }
    LrFindScreen #lrf-result { height: auto; padding: 0 1; }
    """
    BINDINGS = keys.LRFIND

    def __init__(self, experiment: str, call_client: CallClient,
                 steps: int = lrfind.STEPS) -> None:
        super().__init__()
        self.experiment, self.call_client, self.steps = experiment, call_client, steps
        self.config: model.Config | None = None
        self.job: lrfind.Plan | None = None
        self.result: dict[str, Any] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._gone = threading.Event()  # the screen went away: the worker stops quietly

    def compose(self) -> ComposeResult:
        yield Static(f"LR range test of [b]{escape(self.experiment)}[/]: starting…", id="lrf-head")
        yield ProgressBar(total=self.steps, show_eta=False, id="lrf-progress")
        yield Chart("loss (smoothed) against learning rate", log_x=True, id="lrf-chart")
        yield Static("", id="lrf-result")
        yield Footer()

    def on_mount(self) -> None:
        self.run_test()

    def on_unmount(self) -> None:
        self._gone.set()
        self._stop()

    def _stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    # -- the worker ---------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="lrfind")
    def run_test(self) -> None:
        """Plan the test, run it as a subprocess, follow its progress lines, read its result."""
        app = self.dashboard
        try:
            self.config = loader.load(app.config_path)
            self.job = lrfind.plan(app.logs, self.config, self.experiment, {}, self.steps,
                                   progress=True)
        except TuiexpError as e:
            self._post(self.fail, str(e))
            return
        job = self.job
        if self._gone.is_set():  # closed while the config was read: start nothing
            return
        try:
            with open(job.out / "stderr.log", "w") as err:
                self._proc = subprocess.Popen(job.argv, stdout=subprocess.PIPE, stderr=err,
                                              text=True, cwd=self.config.path.parent)
                self._follow(self._proc)
                code = self._proc.wait()
        except OSError as e:
            self._post(self.fail, f"The LR range test of {self.experiment} did not start: {e}.")
            return
        if self._gone.is_set():
            return
        if code != 0 or not job.result_path.exists():
            self._post(self.fail, failure(self.experiment, job.out / "stderr.log", code))
            return
        result = lrfind.read_result(job.result_path)
        problem = lrfind.diverged_at_once(result, self.experiment)
        if problem:
            self._post(self.fail, problem)
        else:
            self._post(self.show_result, result)

    def _follow(self, proc: subprocess.Popen[str]) -> None:
        points: Points = []
        drawn = 0.0
        assert proc.stdout is not None
        for line in proc.stdout:
            parsed = parse_progress(line)
            if parsed is None:
                continue
            step, total, lr, loss = parsed
            points.append((lr, loss))
            if time.monotonic() - drawn > DRAW_EVERY or step == total:
                drawn = time.monotonic()
                self._post(self.show_progress, step, total, list(points))

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if not self._gone.is_set():
            self.app.call_from_thread(fn, *args)

    # -- on the UI thread ---------------------------------------------------------------
    def show_progress(self, step: int, total: int, points: Points) -> None:
        if not self.is_mounted:
            return
        lr, loss = points[-1]
        self.query_one("#lrf-head", Static).update(
            f"LR range test of [b]{escape(self.experiment)}[/]: step {step}/{total}, "
            f"lr {lr:.3g}, loss {loss:.4g} · esc stops it")
        self.query_one(ProgressBar).update(total=total, progress=step)
        self.query_one(Chart).plot([Line("loss", clip_divergence(points), "cyan")])

    def show_result(self, result: dict[str, Any]) -> None:
        if not self.is_mounted:
            return
        self.result = result
        lr: float = result["suggestion"]
        points = clip_divergence(list(zip(result["lrs"], result["losses"], strict=True)))
        ys = [y for _, y in points]
        self.query_one(ProgressBar).update(total=result["steps"], progress=result["steps"])
        self.query_one(Chart).plot([Line("loss (smoothed)", points, "cyan"),
                                    Line(f"suggested {lr:.3g}", [(lr, min(ys)), (lr, max(ys))],
                                         "red")])
        self.query_one("#lrf-head", Static).update(
            f"LR range test of [b]{escape(self.experiment)}[/]: {result['steps']} steps; "
            f"stopped: {escape(result['stopped'])}")
        png = result.get("png")
        where = f"plot: {escape(png)}" if png else "no PNG (matplotlib is not installed)"
        self.query_one("#lrf-result", Static).update(
            f"suggested lr [b]{lr:.3g}[/]. {escape(lrfind.why(result))}\n{where}\n"
            f"[b]y[/]: queue {escape(self.experiment)} with lr = {lrfind.queued_lr(lr):g} · "
            f"[b]esc[/]: back")

    def fail(self, text: str) -> None:
        self.notify(text, severity="error", timeout=10)
        if self.is_current:
            self.dismiss()

    def action_back(self) -> None:
        self._stop()
        self.dismiss()

    def action_queue(self) -> None:
        if self.result is None or self.config is None:
            self.notify("The range test has not finished yet.", severity="warning")
            return
        cfg, name = self.config, self.experiment
        overrides = {"lr": lrfind.queued_lr(self.result["suggestion"])}
        self.call_client(lambda c: launch(c, cfg, name, overrides).text)
        self.dismiss()


def parse_progress(line: str) -> tuple[int, int, float, float] | None:
    """`step steps lr loss` as the trainer's `--progress` prints it (None: another line)."""
    parts = line.split()
    if len(parts) != 4:
        return None
    try:
        return int(parts[0]), int(parts[1]), float(parts[2]), float(parts[3])
    except ValueError:
        return None


def clip_divergence(points: Points) -> Points:
    """The curve with its divergent tail capped a little above its start, so the descent
    stays readable (as `tuiexp lr-find` draws it)."""
    if len(points) < 2:
        return points
    first, low = points[0][1], min(y for _, y in points)
    top = first + 0.5 * (first - low) if first > low else max(y for _, y in points)
    return [(x, min(y, top)) for x, y in points]


def failure(experiment: str, stderr: Path, code: int) -> str:
    """One sentence for a test that did not finish: the trainer's last line of stderr."""
    try:
        lines = [x.strip() for x in stderr.read_text().splitlines() if x.strip()]
    except OSError:
        lines = []
    last = lines[-1].removeprefix("tuiexp lr-find: ") if lines else f"exit status {code}"
    last = last.rstrip(".")
    return f"The LR range test of {experiment} failed: {last} (see {stderr})."
