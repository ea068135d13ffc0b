"""`T` and `N`: edit the tags and the note of the marked runs (else the one under the
cursor). The dialogs only collect the edit; the runs screen writes it in a worker
(store/notes.py through the client), and the table shows it at the next poll."""

from __future__ import annotations

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static, TextArea

from ...errors import UsageError
from ...store import notes
from ...store.index import RunRow
from .. import keys
from ..actions import Names, names

TagEdit = tuple[list[str], list[str]]  # (tags to add, tags to remove)


def which(rows: list[RunRow], labels: Names) -> str:
    """The runs a dialog edits, as its title says them (as the table names them)."""
    return names(rows, labels) if len(rows) == 1 else f"{len(rows)} runs ({names(rows, labels, 3)})"


def tag_counts(rows: list[RunRow]) -> str:
    """The tags the runs carry now: `best old` for one run, `best (3), old (1)` for more."""
    if len(rows) == 1:
        return " ".join(rows[0].tags) or "(none)"
    counts: dict[str, int] = {}
    for r in rows:
        for t in r.tags:
            counts[t] = counts.get(t, 0) + 1
    return ", ".join(f"{t} ({n})" for t, n in counts.items()) or "(none)"


class TagScreen(ModalScreen["TagEdit | None"]):
    """`+best -old` edits (a bare word adds), checked as they are typed."""

    BINDINGS = keys.TAGS

    def __init__(self, rows: list[RunRow], labels: Names) -> None:
        super().__init__()
        self.rows, self.labels = rows, labels

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]Tags of {escape(which(self.rows, self.labels))}[/]")
            yield Static(f"now: {escape(tag_counts(self.rows))}", id="now")
            yield Input(placeholder="+best -old  (a bare word adds)", id="edits")
            yield Static("", id="verdict")
            yield Static("[dim]enter saves · esc closes · the filter /tag:NAME shows a tag's "
                         "runs[/]")

    def on_mount(self) -> None:
        self.query_one("#edits", Input).focus()

    def edit(self) -> tuple[TagEdit | None, str | None]:
        """The edit typed so far, or the sentence on what is wrong with it."""
        try:
            add, remove = notes.parse_edits([self.query_one("#edits", Input).value])
        except UsageError as e:
            return None, str(e)
        return (add, remove), None

    @on(Input.Changed, "#edits")
    def check(self) -> None:
        edit, error = self.edit()
        verdict = self.query_one("#verdict", Static)
        verdict.set_class(error is not None, "error")
        if error is not None:
            verdict.update(escape(error))
        elif edit and (edit[0] or edit[1]):
            parts = [f"add {' '.join(edit[0])}" if edit[0] else "",
                     f"remove {' '.join(edit[1])}" if edit[1] else ""]
            verdict.update(escape("; ".join(p for p in parts if p)))
        else:
            verdict.update("")

    @on(Input.Submitted, "#edits")
    def save(self) -> None:
        edit, error = self.edit()
        if error is not None:
            self.notify(error, severity="error")
            return
        self.dismiss(edit if edit and (edit[0] or edit[1]) else None)


class NoteScreen(ModalScreen["str | None"]):
    """The note, in full; what is saved replaces the note of every run edited."""

    BINDINGS = keys.NOTE

    def __init__(self, rows: list[RunRow], labels: Names) -> None:
        super().__init__()
        self.rows, self.labels = rows, labels

    def compose(self) -> ComposeResult:
        texts = {r.note for r in self.rows}
        same = len(texts) == 1
        with Vertical(classes="dialog"):
            yield Static(f"[b]Note of {escape(which(self.rows, self.labels))}[/]")
            if not same:
                yield Static("[dim]these runs have different notes; what you save replaces "
                             "them all[/]")
            yield TextArea(texts.pop() if same else "", id="note", language=None)
            yield Static("[dim]ctrl+s saves (an empty note clears it) · esc closes[/]")

    def on_mount(self) -> None:
        area = self.query_one("#note", TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def action_save(self) -> None:
        text = self.query_one("#note", TextArea).text
        try:
            notes.check_note(text)
        except UsageError as e:
            self.notify(str(e), severity="error")
            return
        self.dismiss(text.strip())
