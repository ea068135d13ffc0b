"""`f`: a form that queues a child of a run from one of its saved epochs."""

from __future__ import annotations

import sys
from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static, TextArea

from ...config.fork import fork_params
from ...config.params import builtin_schema
from ...config.values import parse_value
from ...errors import TuiexpError
from ...store.index import RunRow
from .. import keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIELDS = ("batch_size", "dropout", "lr", "optimizer", "epochs", "mixup", "weight_decay")
Request = tuple[int, dict[str, Any]]


def epoch_options(epochs: list[int], best: int | None) -> list[tuple[str, int]]:
    """Checkpointed epochs, best and last marked, last first in line to be chosen."""
    out = []
    for e in epochs:
        marks = [m for m, hit in (("best", e == best), ("last", e == epochs[-1])) if hit]
        out.append((f"epoch {e}" + (f" ({', '.join(marks)})" if marks else ""), e))
    return out


def schedule_text(schedule: Any) -> str:
    if not schedule:
        return ""
    phases = ",\n".join("  { " + ", ".join(f"{k} = {_toml(v)}" for k, v in ph.items()) + " }"
                        for ph in schedule)
    return f"schedule = [\n{phases},\n]"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


def plan(parent: dict[str, Any], builtin: bool, epoch: int, texts: dict[str, str],
         schedule: str) -> tuple[dict[str, Any], str | None]:
    """(overrides, the reason the trainer would refuse them or None), from the form's text."""
    base = {**builtin_schema().defaults(), **parent} if builtin else parent
    overrides: dict[str, Any] = {}
    try:
        for key, text in texts.items():
            if text.strip():
                value = parse_value(text.strip(), f"{key}:")
                if value != base.get(key):
                    overrides[key] = value
        if schedule.strip():
            sched = tomllib.loads(schedule).get("schedule")
            if not isinstance(sched, list):
                return overrides, "the schedule must read `schedule = [ {...}, ... ]`."
            if sched != parent.get("schedule"):
                overrides["schedule"] = sched
    except tomllib.TOMLDecodeError as e:
        return overrides, f"the schedule is not valid TOML: {e}."
    except TuiexpError as e:
        return overrides, str(e)
    try:
        fork_params(parent, overrides, epoch, builtin)  # exactly what the client will check
    except TuiexpError as e:
        return overrides, str(e)
    return overrides, None


def diff_text(parent: dict[str, Any], overrides: dict[str, Any]) -> str:
    if not overrides:
        return "[dim]no change from the parent yet: the child continues as is[/]"
    return "\n".join(f"[b]{k}[/]: {escape(_toml(parent.get(k)))} → [green]{escape(_toml(v))}[/]"
                     for k, v in overrides.items())


class ForkScreen(ModalScreen["Request | None"]):
    AUTO_FOCUS = "#epoch"  # the screen focuses it on activation, before any key is read
    BINDINGS = keys.FORK

    def __init__(self, row: RunRow, checkpoints: list[int], name: str = "") -> None:
        super().__init__()
        self.row, self.checkpoints, self.name_shown = row, checkpoints, name or row.id
        self.builtin = row.spec.get("command") is None
        self.error: str | None = None
        self.overrides: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        p = {**builtin_schema().defaults(), **self.row.params} if self.builtin else self.row.params
        with VerticalScroll(classes="dialog"):
            yield Static(f"[b]Fork {escape(self.name_shown)}[/]  ({'built-in trainer' if self.builtin else 'own script'})")
            # the verdict and the diff first, so they stay in view on a short terminal
            yield Static("", id="verdict")
            yield Static("", id="diff")
            with Horizontal(classes="row"):
                yield Label("from epoch", classes="beside-select")
                yield Select(epoch_options(self.checkpoints, self.row.best_epoch),
                             value=self.checkpoints[-1], allow_blank=False, id="epoch")
            for key in FIELDS:
                with Horizontal(classes="row"):
                    yield Label(key)
                    yield Input(_toml(p[key]).strip('"') if key in p else "", id=key,
                                placeholder="(unchanged)", compact=True)
            yield Label("schedule (TOML; phases start at the fork epoch)")
            yield TextArea(schedule_text(p.get("schedule")), id="schedule", language=None)
            yield Static("[dim]tab: next field · enter or ctrl+s: queue · esc: cancel[/]")

    def on_mount(self) -> None:
        self.revalidate()

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def revalidate(self) -> None:
        texts = {k: self.query_one(f"#{k}", Input).value for k in FIELDS}
        self.overrides, self.error = plan(self.row.params, self.builtin, self.epoch, texts,
                                          self.query_one("#schedule", TextArea).text)
        self.query_one("#diff", Static).update(diff_text(self.row.params, self.overrides))
        verdict = self.query_one("#verdict", Static)
        verdict.set_class(bool(self.error), "error")
        verdict.set_class(not self.error, "ok")
        verdict.update(escape(self.error) if self.error else f"ready to fork from epoch {self.epoch}")

    @property
    def epoch(self) -> int:
        value = self.query_one("#epoch", Select).value
        return value if isinstance(value, int) else self.checkpoints[-1]

    @on(Input.Submitted)
    def action_submit(self) -> None:
        self.revalidate()
        if self.error:
            self.notify(self.error, severity="error")
            return
        self.dismiss((self.epoch, self.overrides))
