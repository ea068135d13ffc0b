"""Every key of the dashboard, in one place: the runs screen binds `RUNS`, and `?` and
the command palette list them with the keys of the other screens."""

from __future__ import annotations

from textual.binding import Binding

RUNS = [
    Binding("enter", "detail", "Detail"),
    Binding("f", "fork", "Fork"),
    Binding("n", "new", "New"),
    Binding("c", "cancel", "Cancel"),
    Binding("r", "resume", "Resume"),
    Binding("d", "archive", "Archive"),
    Binding("K,ctrl+up", "move(-1)", "Move up", show=False),
    Binding("J,ctrl+down", "move(1)", "Move down", show=False),
    Binding("space", "mark", "Mark", show=False),
    Binding("u", "unmark", "Unmark all", show=False),
    Binding("C", "compare", "Compare"),
    Binding("e", "export", "Export"),
    Binding("T", "tags", "Tags", show=False),
    Binding("N", "note", "Note", show=False),
    Binding("slash", "filter", "Filter"),
    Binding("s", "sort", "Sort", show=False),
    Binding("t", "tree", "Tree", show=False),
    Binding("S", "study", "Study of a trial", show=False),
    Binding("L", "lr_find", "LR range test", show=False),
    Binding("escape", "clear_filter", "Clear filter", show=False),
]

TABLE_KEYS = [("j / k, ↓ / ↑", "next / previous run"), ("g / G, home / end", "first / last run"),
              ("pgdn / pgup", "a page down / up")]
DETAIL_KEYS = [("[ / ]", "previous / next confusion epoch"), ("f", "fork this run"),
               ("esc", "back to the runs")]
FORK_KEYS = [("tab", "next field"), ("enter / ctrl+s", "queue the fork"), ("esc", "cancel")]
GLOBAL_KEYS = [("?", "this help"), ("ctrl+p", "command palette"), ("q", "quit (runs go on)")]
