"""`?`: every key of every screen (ui/keys.py), in one table."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..keys import DETAIL_KEYS, FORK_KEYS, GLOBAL_KEYS, RUNS, TABLE_KEYS


def key_table() -> Table:
    t = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    t.add_column("where")
    t.add_column("key")
    t.add_column("does")
    for b in RUNS:
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
