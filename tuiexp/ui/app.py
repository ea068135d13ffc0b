"""The dashboard app: a thin shell that owns the poller and the screens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import get_current_worker

from ..config import loader
from ..config.model import UiSettings
from ..errors import TuiexpError
from ..queue import daemon
from ..store.paths import LogsDir
from . import keys
from .data import Delta, Poller, needs_daemon
from .messages import ClientFailed, ClientSucceeded, ForkAsked, IndexPolled
from .screens.help import HelpScreen
from .screens.runs import RunsScreen
from .widgets.runs_table import RunsTable

Observer = Callable[[IndexPolled, float], None]
#: statuses worth telling the user about when a run reaches them: severity, words
ENDINGS: dict[str, tuple[SeverityLevel, str]] = {
    "finished": ("information", "finished"),
    "failed": ("error", "failed"),
    "crashed": ("error", "crashed"),
    "diverged": ("warning", "diverged"),
    "oom": ("error", "ran out of memory"),
}


class TuiexpApp(App[int]):
    """Reads the index at `interval` seconds; every change goes through `IndexPolled`."""

    CSS_PATH = "app.tcss"
    TITLE = "tuiexp"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Keys"),
    ]

    def __init__(self, logs: LogsDir, config_path: str | Path, clock: Callable[[], float] = time.time,
                 interval: float = 0.5, spawn_daemon: bool = True,
                 observer: Observer | None = None) -> None:
        super().__init__()
        self.logs, self.config_path, self.clock = logs, Path(config_path), clock
        self.interval, self.spawn_daemon, self.observer = interval, spawn_daemon, observer
        self.ui, self.config_error = read_ui_settings(self.config_path)
        self.poller = Poller(logs, clock, sparklines=self.ui.sparklines)
        self._wake = threading.Event()  # set to poll now (after a command)
        self._applied = threading.Event()  # set once the UI applied the last delta
        self._statuses: dict[str, str] = {}  # each run's status at the last delta

    async def on_mount(self) -> None:
        await self.push_screen(RunsScreen())  # mounted before the first delta arrives
        if self.config_error:
            self.notify(f"{self.config_error} The [ui] settings are ignored until it is fixed.",
                        severity="warning", timeout=10)
        self.watch_index()

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "poller")
        self._wake.set()
        self._applied.set()

    def poke(self) -> None:
        """Poll again now rather than at the next tick (a command changed the queue)."""
        self._wake.set()

    @work(thread=True, exit_on_error=False, group="poller")
    def watch_index(self) -> None:
        """Poll the index; wait until each delta is applied, so polls never pile up.

        Once the UI applied a delta, the same thread does the chores that are no tick's
        business (history backfill, resources, removals, the supervisor check), then
        sleeps what is left of `interval` unless a command pokes it."""
        worker = get_current_worker()
        checked = 0.0
        while not worker.is_cancelled:
            started = time.monotonic()
            self._applied.clear()
            try:
                delta = self.poller.poll()
                self.post_message(IndexPolled(delta))
                self._applied.wait(5)  # chores after the apply: they never compete with it
                self.poller.chores(budget=self.interval / 2)
                if self.spawn_daemon and started - checked > 10:
                    checked = started
                    self._ensure_daemon()
            except Exception as e:  # a locked or broken index: say so, try again
                self.post_message(ClientFailed(f"Cannot read the index: {e}."))
            self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
            self._wake.clear()
        self.poller.close()

    def _ensure_daemon(self) -> None:
        if self.poller.index is not None and needs_daemon(self.logs, self.poller.index):
            if not daemon.spawn(self.logs):
                self.post_message(ClientFailed(
                    f"The supervisor did not start; see {self.logs.daemon_log}."))

    def on_index_polled(self, msg: IndexPolled) -> None:
        started = time.perf_counter()
        try:
            self.tell_endings(msg.delta)
            for screen in self.screen_stack:
                if hasattr(screen, "apply_poll") and screen.is_mounted:
                    screen.apply_poll(msg.delta)
        finally:
            if msg.delta.first:  # let the first table paint before the backfill starts
                self.call_after_refresh(self._applied.set)
            else:
                self._applied.set()
        if self.observer:  # the bench times each tick: poll + apply
            self.observer(msg, msg.delta.seconds + time.perf_counter() - started)

    def tell_endings(self, delta: Delta) -> None:
        """A notification (and the bell, with `[ui] bell = true`) for each run that ended
        since the last delta, whatever screen is open. Runs already ended when the app
        opened are not news; a run first seen later, already ended, is."""
        news = []
        for st in delta.changed:
            before = self._statuses.get(st.id, None if delta.first else "")
            self._statuses[st.id] = st.row.status
            if before is not None and before != st.row.status and st.row.status in ENDINGS:
                news.append(st.row)
        runs = next((s for s in self.screen_stack if isinstance(s, RunsScreen)), None)
        names = runs.table.names if runs is not None and runs.query(RunsTable) else {}
        for row in news:
            severity, text = ENDINGS[row.status]
            message = f" ({row.message})" if row.message and row.status != "finished" else ""
            self.notify(f"{names.get(row.id, row.id)} {text}{message}.", severity=severity,
                        timeout=10 if severity == "error" else 6)
        if news and self.ui.bell:
            self.bell()

    def on_client_succeeded(self, msg: ClientSucceeded) -> None:
        if msg.text:
            self.notify(msg.text, timeout=6)
        self.poke()

    def on_client_failed(self, msg: ClientFailed) -> None:
        self.notify(msg.text, severity="error", timeout=8)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self)

    async def on_fork_asked(self, msg: ForkAsked) -> None:
        """The detail screen's `f`: back to the runs screen, with the fork form open."""
        await self.pop_screen()
        if isinstance(self.screen, RunsScreen):  # the runs screen is always under the detail
            self.screen.open_fork(msg.run_id)


def read_ui_settings(path: Path) -> tuple[UiSettings, str | None]:
    """The `[ui]` table of the experiments file (defaults when the file is missing or has
    a mistake, with the mistake's sentence to show)."""
    if not path.exists():
        return UiSettings(), None
    try:
        return loader.load_ui(path), None
    except TuiexpError as e:
        return UiSettings(), str(e)


def make_app(logs: LogsDir, config_path: str | Path, clock: Callable[[], float] = time.time,
             **options: Any) -> TuiexpApp:
    """Build the dashboard for a logs directory and an experiments file (CLI and tests);
    `options` are TuiexpApp's keyword arguments."""
    return TuiexpApp(logs, config_path, clock, **options)


def run_app(logs: LogsDir, config_path: str) -> int:
    """`tuiexp` with no command: open the dashboard; closing it stops no run."""
    app = make_app(logs, config_path)
    app.run()
    return app.return_code or 0


def palette_commands(app: TuiexpApp) -> Iterable[SystemCommand]:
    """Every runs-screen action, reachable from ctrl+p."""
    runs = next((s for s in app.screen_stack if isinstance(s, RunsScreen)), None)
    if runs is None:
        return
    for b in keys.RUNS:
        if not isinstance(b, Binding) or b in keys.GLOBAL or b.action.startswith("move("):
            continue
        key = b.key.split(",")[0].replace("slash", "/")
        yield SystemCommand(f"{b.description} ({key})", f"runs: {b.description.lower()}",
                            partial(runs.run_action, b.action))
    yield SystemCommand("Move up in the queue (K)", "runs: move the queued run up",
                        partial(runs.action_move, -1))
    yield SystemCommand("Move down in the queue (J)", "runs: move the queued run down",
                        partial(runs.action_move, 1))
    yield SystemCommand("Keys (?)", "show every key", app.action_help)
