"""What the dashboard's full screens share: the app they belong to, typed."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from ..app import TuiexpApp


class DashboardScreen(Screen[None]):
    """A full screen of the dashboard (it returns nothing when it is popped)."""

    @property
    def tuiexp_app(self) -> TuiexpApp:
        """`self.app` as the `TuiexpApp` it is (its logs, clock, config and [ui] settings);
        Textual types `self.app` as any `App`, and these screens run only in this one."""
        return cast("TuiexpApp", self.app)
