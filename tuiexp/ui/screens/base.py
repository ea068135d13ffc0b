"""What the dashboard's full screens share: what they need of the app, as a protocol
(the app module imports the screens, never the reverse)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, cast

from textual.screen import Screen

from ...config.model import UiSettings
from ...store.paths import LogsDir


class Dashboard(Protocol):
    """The app as its screens see it: the logs directory, the clock, the experiments
    file and its [ui] settings (ui/app.py's `TuiexpApp`)."""

    logs: LogsDir
    clock: Callable[[], float]
    config_path: Path
    ui: UiSettings


class DashboardScreen(Screen[None]):
    """A full screen of the dashboard (it returns nothing when it is popped)."""

    @property
    def dashboard(self) -> Dashboard:
        """`self.app` as the dashboard it is; Textual types `self.app` as any `App`, and
        these screens run only in tuiexp's."""
        return cast(Dashboard, self.app)
