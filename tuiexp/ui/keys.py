"""Every key of the dashboard, in one place: each screen binds its list from here, and `?`
and the command palette read the same lists (`SCREENS`), so no key is bound without
being listed. The few keys a focused widget handles itself (an Input's enter) are
written beside their screen's list (`WIDGET_KEYS`)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

#: on every screen that does not take them for itself: help and quit, shown in footers
GLOBAL: list[BindingType] = [
    Binding("question_mark", "app.help", "Keys"),
    Binding("q", "app.quit", "Quit"),
]

# the footer shows the shown bindings in this order, cut at the terminal's width: what a
# new user needs first comes first (80 columns show up to `q`)
RUNS: list[BindingType] = [
    Binding("enter", "detail", "Detail", tooltip="the run's charts, confusion, output and spec"),
    Binding("n", "new", "New", tooltip="queue an experiment of experiments.toml (or start its study)"),
    Binding("f", "fork", "Fork", tooltip="a child of the run from one of its checkpoints"),
    Binding("slash", "filter", "Filter", tooltip="words, tag:T, status:S, exp:E, lr=0.1, -TERM"),
    *GLOBAL,
    Binding("c", "cancel", "Cancel", tooltip="the marked runs, else the one under the cursor"),
    Binding("r", "resume", "Resume", tooltip="queue the marked runs again from their checkpoints"),
    Binding("C", "compare", "Compare", tooltip="the marked runs' curves and the params that differ"),
    Binding("e", "export", "Export", tooltip="the marked runs, else those the filter shows, else all"),
    Binding("d", "archive", "Archive", tooltip="move ended runs to logs/archive"),
    Binding("K,ctrl+up", "move(-1)", "Move up in the queue", show=False),
    Binding("J,ctrl+down", "move(1)", "Move down in the queue", show=False),
    Binding("space", "mark", "Mark", show=False, tooltip="mark the run (and go to the next)"),
    Binding("u", "unmark", "Unmark all", show=False),
    Binding("T", "tags", "Tags", show=False, tooltip="tags of the marked runs: +best -old"),
    Binding("N", "note", "Note", show=False, tooltip="the note of the marked runs"),
    Binding("s", "sort", "Sort", show=False,
            tooltip="cycle the sort: age, id, experiment, status, best, epoch"),
    Binding("t", "tree", "Tree", show=False, tooltip="forks under their parent, or a flat list"),
    Binding("S", "study", "Study of a trial", show=False,
            tooltip="the study of the trial under the cursor: its trials, the best so far"),
    Binding("L", "lr_find", "LR range test", show=False,
            tooltip="LR range test of the experiment of the run under the cursor"),
    Binding("escape", "clear_filter", "Clear filter", show=False),
]

#: the runs table's own keys (RunsTable binds them; they work while it has the focus)
TABLE: list[BindingType] = [
    Binding("down,j", "cursor(1)", "Next run", show=False),
    Binding("up,k", "cursor(-1)", "Previous run", show=False),
    Binding("home,g", "first", "First run", show=False),
    Binding("end,G", "last", "Last run", show=False),
    Binding("pagedown,ctrl+f", "page(1)", "A page down", show=False),
    Binding("pageup,ctrl+b", "page(-1)", "A page up", show=False),
]

DETAIL: list[BindingType] = [
    Binding("escape", "app.pop_screen", "Back"),
    Binding("n,pagedown", "page(1)", "More charts"),
    Binding("p,pageup", "page(-1)", "Previous charts", show=False),
    Binding("f", "fork", "Fork"),
    # the confusion panel's title says these two
    Binding("left_square_bracket", "confusion(-1)", "Prev epoch", show=False,
            tooltip="the confusion summary of the previous logged epoch"),
    Binding("right_square_bracket", "confusion(1)", "Next epoch", show=False,
            tooltip="the confusion summary of the next logged epoch"),
    *GLOBAL,
]

COMPARE: list[BindingType] = [Binding("escape", "app.pop_screen", "Back"), *GLOBAL]

STUDY: list[BindingType] = [Binding("escape", "app.pop_screen", "Back"), *GLOBAL]

LRFIND: list[BindingType] = [
    Binding("y", "queue", "Queue with the suggested LR"),
    Binding("escape", "back", "Back (stops a test still running)"),
    *GLOBAL,
]

HELP: list[BindingType] = [Binding("escape,question_mark,q", "app.pop_screen", "Back")]

# dialogs: what they type is text, so no global single-letter keys there
FORK: list[BindingType] = [Binding("ctrl+s", "submit", "Queue the fork"),
                           Binding("escape", "dismiss(None)", "Cancel")]
NEW: list[BindingType] = [Binding("ctrl+s", "submit", "Queue"),
                          Binding("escape", "dismiss(None)", "Cancel")]
PICKER: list[BindingType] = [Binding("escape", "dismiss(None)", "Cancel")]
TAGS: list[BindingType] = [Binding("escape", "dismiss(None)", "Cancel")]
NOTE: list[BindingType] = [Binding("ctrl+s", "save", "Save (an empty note clears it)"),
                           Binding("escape", "dismiss(None)", "Cancel")]
CONFIRM: list[BindingType] = [Binding("y", "answer(True)", "Yes"),
                              # q, the dashboard's quit, answers no here: a user backing
                              # out of a question never loses the dashboard with it
                              Binding("n,escape,q", "answer(False)", "No")]
EXPORT: list[BindingType] = [Binding("ctrl+s", "write", "Write the file"),
                             Binding("escape", "dismiss(None)", "Close")]

#: keys the focused widget of a dialog handles itself: (key, what it does)
WIDGET_KEYS: dict[str, list[tuple[str, str]]] = {
    "fork form": [("tab", "next field"), ("enter", "queue the fork")],
    "new run": [("enter", "queue the experiment under the cursor"), ("tab", "the overrides")],
    "LR range test": [("enter", "in the list of experiments: test that one")],
    "tags": [("enter", "save the tags (+best -old; a bare word adds)")],
    "export": [("enter", "write the file")],
    "filter": [("enter", "keep the filter"), ("escape", "clear it")],
}

#: every screen's keys, in the order `?` lists them
SCREENS: list[tuple[str, list[BindingType]]] = [
    ("runs", RUNS + TABLE),
    ("detail", DETAIL),
    ("compare", COMPARE),
    ("fork form", FORK),
    ("new run", NEW),
    ("LR range test", LRFIND + PICKER),
    ("study", STUDY),
    ("tags", TAGS),
    ("note", NOTE),
    ("export", EXPORT),
    ("confirm", CONFIRM),
    ("keys", HELP),
]

#: how keys are written for a reader
KEY_NAMES = {"slash": "/", "question_mark": "?", "left_square_bracket": "[",
             "right_square_bracket": "]", "space": "space", "escape": "esc",
             "pagedown": "pgdn", "pageup": "pgup"}


def _lower(text: str) -> str:
    """`Next run` -> `next run` (the help's voice); `LR range test` stays."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def key_text(keys: str) -> str:
    """`n,pagedown` -> `n / pgdn`."""
    return " / ".join(KEY_NAMES.get(k, k) for k in keys.split(","))


def rows() -> list[tuple[str, str, str]]:
    """(where, keys, what they do) of every key of every screen, then the ones that work
    anywhere."""
    out = []
    for where, bindings in SCREENS:
        for b in bindings:
            if isinstance(b, Binding) and b not in GLOBAL:
                out.append((where, key_text(b.key), b.tooltip or _lower(b.description)))
        out += [(where, key, does) for key, does in WIDGET_KEYS.get(where, [])]
    out += [("filter", key, does) for key, does in WIDGET_KEYS["filter"]]
    out += [("anywhere", "?", "every key (this list)"), ("anywhere", "ctrl+p", "command palette"),
            ("anywhere", "q", "quit (the runs go on)")]
    return out
