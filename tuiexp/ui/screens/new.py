"""`n`: pick an experiment from experiments.toml, override values, queue it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from ...config import loader, model, values
from ...errors import TuiexpError
from ...queue import preflight
from .. import keys

Request = tuple[model.Config, str, dict[str, Any]]


def experiment_options(cfg: model.Config) -> list[Option]:
    out = []
    for name, exp in cfg.experiments.items():
        n = exp.num_runs
        desc = f"  [dim]{escape(exp.description)}[/]" if exp.description else ""
        out.append(Option(f"[b]{escape(name)}[/]  {n} run{'s' if n != 1 else ''}{desc}", id=name))
    return out


class NewScreen(ModalScreen["Request | None"]):
    AUTO_FOCUS = "OptionList"
    BINDINGS = keys.NEW

    def __init__(self, config_path: Path) -> None:
        super().__init__()
        self.config_path = config_path
        self.config: model.Config | None = None
        self.error = ""

    def compose(self) -> ComposeResult:
        try:
            self.config = loader.load(self.config_path)
        except TuiexpError as e:
            self.error = str(e)
        with Vertical(classes="dialog"):
            yield Static(f"[b]Queue an experiment[/] from {escape(str(self.config_path))}")
            yield OptionList(*(experiment_options(self.config) if self.config else []),
                             id="experiments")
            yield Label("overrides, one key=value per line (TOML values)")
            yield TextArea("", id="overrides", language=None)
            yield Static("", id="verdict")
            yield Static("[dim]enter on an experiment or ctrl+s: queue · tab: overrides · esc[/]")

    def on_mount(self) -> None:
        if self.error:
            self.notify(self.error, severity="error", timeout=8)
            self.dismiss(None)
            return
        if self.config and self.config.experiments:
            self.query_one(OptionList).highlighted = 0

    def check(self) -> tuple[str, dict[str, Any], int] | str:
        """(experiment, overrides, how many runs) as the form reads now, or the sentence
        on what is wrong with it: checked before anything is written."""
        opts = self.query_one(OptionList)
        if self.config is None or opts.highlighted is None:
            return "Pick an experiment."
        name = opts.get_option_at_index(opts.highlighted).id or ""
        lines = [x.strip() for x in self.query_one("#overrides", TextArea).text.splitlines()]
        try:
            overrides = values.parse_overrides([x for x in lines if x and not x.startswith("#")])
            n = len(preflight.require(self.config, name, overrides))  # what `check` says, before anything is written
            exp = self.config.experiment(name)
            return name, overrides, 0 if exp.search is not None or exp.pbt is not None else n
        except TuiexpError as e:
            return form_wording(str(e))

    @on(TextArea.Changed, "#overrides")
    @on(OptionList.OptionHighlighted)
    def revalidate(self) -> None:
        """Say at once what ctrl+s would queue, or what is wrong (and nothing once fixed)."""
        checked = self.check()
        verdict = self.query_one("#verdict", Static)
        verdict.set_class(isinstance(checked, str), "error")
        if isinstance(checked, str):
            verdict.update(Text(checked))
        else:
            name, _, n = checked
            verdict.update(Text(f"{n} run{'s' if n != 1 else ''} of {name}" if n
                                else f"the study of {name}", style="dim"))

    @on(OptionList.OptionSelected)
    def action_submit(self) -> None:
        checked = self.check()
        if isinstance(checked, str):
            self.query_one("#verdict", Static).update(Text(checked))
            self.notify(checked, severity="error")
            return
        assert self.config is not None
        name, overrides, n = checked
        exp = self.config.experiment(name)
        if exp.search is not None or exp.pbt is not None:  # as `tuiexp run` does (search/launch.py)
            what = "population" if exp.pbt is not None else "study"
            self.notify(f"Starting the {what} of {name}…", timeout=3)
        else:
            self.notify(f"Queueing {n} run{'s' if n != 1 else ''} of {name}…", timeout=3)
        self.dismiss((self.config, name, overrides))


def form_wording(message: str) -> str:
    """The config's sentence about `--set` overrides, in this form's words (no CLI flag,
    no "?." where a suggestion ends the sentence)."""
    for cli, form in (("(e.g. --set ", "(e.g. "), ("--set: ", "override: "),
                      ("--set value ", "override value "), ("--set ", "override "), ("?.", "?")):
        message = message.replace(cli, form)
    return message
