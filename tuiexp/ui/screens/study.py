"""`S` on a trial's row: its study — the trials (pruned apart from failed), the best so
far and which params mattered — refreshed every 2 s while open."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import Footer, Static

from ...errors import TuiexpError
from ...search import studies
from .. import keys
from .base import DashboardScreen

REFRESH = 2.0  # seconds between reads of the study's journal


class StudyScreen(DashboardScreen):
    BINDINGS = keys.STUDY

    def __init__(self, name: str) -> None:
        super().__init__()
        self.study_name = name

    def compose(self) -> ComposeResult:
        yield Static(f"study {self.study_name}: reading…", id="study")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(REFRESH, self.load)

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        """Read the study off the UI thread (Optuna's import and the journal's replay)."""
        try:
            text = studies.summary(self.dashboard.logs, self.study_name)
        except (TuiexpError, OSError, ValueError) as e:
            text = f"study {self.study_name}: {e}"
        self.app.call_from_thread(self.query_one("#study", Static).update, Text(text))  # not markup
