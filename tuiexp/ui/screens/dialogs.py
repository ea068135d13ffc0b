"""Small modal dialogs: a yes/no confirmation and the export form."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ...results import export
from .. import keys


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = keys.CONFIRM

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question)
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


FORMAT_NAMES = {"csv": "CSV", "md": "Markdown", "latex": "LaTeX", "json": "JSON"}


class ExportScreen(ModalScreen["tuple[str, Path] | None"]):
    """Write the run table to a file in one of the export formats."""

    AUTO_FOCUS = "#path"  # enter writes; tab reaches the format list
    BINDINGS = keys.EXPORT

    def __init__(self, what: str = "the run table") -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]Export {escape(self.what)}[/]")
            with Horizontal(classes="row"):
                yield Label("format", classes="beside-select")
                yield Select([(v, k) for k, v in FORMAT_NAMES.items()], value="csv",
                             allow_blank=False, id="format")
            with Horizontal(classes="row"):
                yield Label("file")
                yield Input("runs.csv", id="path", compact=True)
            yield Static("enter or ctrl+s writes; esc closes", classes="dim")

    @on(Select.Changed, "#format")
    def format_changed(self, event: Select.Changed) -> None:
        box = self.query_one("#path", Input)
        name = box.value.strip() or "runs"
        box.value = str(Path(name).with_suffix(export.SUFFIX[str(event.value)]))

    @on(Input.Submitted, "#path")
    def action_write(self) -> None:
        fmt = str(self.query_one("#format", Select).value)
        path = self.query_one("#path", Input).value.strip()
        if not path:
            self.notify("Give the file to write the table to.", severity="error")
            return
        self.dismiss((fmt, Path(path).expanduser()))
