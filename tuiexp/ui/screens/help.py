"""`?`: every key of every screen, read from the lists the screens bind (ui/keys.py)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from .. import keys


def key_table() -> Table:
    t = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    t.add_column("where")
    t.add_column("key")
    t.add_column("does")
    for where, key, does in keys.rows():
        t.add_row(where, key, does)
    return t


class HelpScreen(Screen[None]):
    BINDINGS = keys.HELP

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("Every key; pgdn / pgup or the arrows scroll, esc goes back.", id="help-hint")
            yield Static(key_table(), id="keys")
        yield Footer()
