"""`?`: every key of every screen; and the command palette's entries."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.table import Table
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from .runs import BINDINGS as RUNS_KEYS

if TYPE_CHECKING:
    from ..app import TuiexpApp

TABLE_KEYS = [("j / k, ↓ / ↑", "next / previous run"), ("g / G, home / end", "first / last run"),
              ("pgdn / pgup", "a page down / up")]
DETAIL_KEYS = [("[ / ]", "previous / next confusion epoch"), ("f", "fork this run"),
               ("esc", "back to the runs")]
FORK_KEYS = [("tab", "next field"), ("enter / ctrl+s", "queue the fork"), ("esc", "cancel")]
GLOBAL_KEYS = [("?", "this help"), ("ctrl+p", "command palette"), ("q", "quit (runs go on)")]


def key_table() -> Table:
    t = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    t.add_column("where")
    t.add_column("key")
    t.add_column("does")
    for b in RUNS_KEYS:
        t.add_row("runs", b.key.replace("slash", "/").replace(",", " / "), b.description)
    for key, does in TABLE_KEYS:
        t.add_row("runs", key, does)
    for where, keys in (("detail", DETAIL_KEYS), ("fork form", FORK_KEYS), ("anywhere", GLOBAL_KEYS)):
        for key, does in keys:
            t.add_row(where, key, does)
    return t


class HelpScreen(Screen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(key_table(), id="keys")
        yield Footer()


def palette_commands(app: TuiexpApp, screen: Screen[Any]) -> Iterable[SystemCommand]:
    """Every runs-screen action, reachable from ctrl+p."""
    from .runs import RunsScreen

    runs = next((s for s in app.screen_stack if isinstance(s, RunsScreen)), None)
    if runs is None:
        return
    for b in RUNS_KEYS:
        if b.action.startswith("move("):
            continue
        key = b.key.split(",")[0].replace("slash", "/")
        yield SystemCommand(f"{b.description} ({key})", f"runs: {b.description.lower()}",
                            partial(runs.run_action, b.action))
    yield SystemCommand("Move up in the queue (K)", "runs: move the queued run up",
                        partial(runs.action_move, -1))
    yield SystemCommand("Move down in the queue (J)", "runs: move the queued run down",
                        partial(runs.action_move, 1))
    yield SystemCommand("Keys (?)", "show every key", app.action_help)
