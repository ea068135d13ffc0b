"""`f`: a form that queues a child of a run from one of its saved epochs."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static, TextArea

from ...config.fork import SCHEDULE_EXAMPLE, fork_params, parse_schedule, schedule_template
from ...config.params import builtin_schema
from ...config.values import parse_value, sentence
from ...errors import TuiexpError
from ...store.index import RunRow
from .. import keys

FIELDS = ("batch_size", "dropout", "lr", "optimizer", "epochs", "mixup", "weight_decay")
Request = tuple[int, dict[str, Any]]


def epoch_options(epochs: list[int], best: int | None) -> list[tuple[str, int]]:
    """Checkpointed epochs, best and last marked."""
    out = []
    for e in epochs:
        marks = [m for m, hit in (("best", e == best), ("last", e == epochs[-1])) if hit]
        out.append((f"epoch {e}" + (f" ({', '.join(marks)})" if marks else ""), e))
    return out


def first_epoch(checkpoints: list[int], best: int | None, epochs: Any) -> int:
    """The epoch the form opens on: the newest checkpoint that leaves epochs to train,
    else the best, else the last (the form then asks for more epochs)."""
    room = [e for e in checkpoints if not isinstance(epochs, int) or e < epochs]
    if room:
        return room[-1]
    return best if best in checkpoints else checkpoints[-1]


def schedule_text(schedule: Any) -> str:
    """A schedule as the field shows it: its value, one phase a line."""
    if not schedule:
        return ""
    one_line = "[" + ", ".join(_toml(ph) for ph in schedule) + "]"
    if len(one_line) <= 72:
        return one_line
    phases = ",\n".join("  { " + ", ".join(f"{k} = {_toml(v)}" for k, v in ph.items()) + " }"
                        for ph in schedule)
    return f"[\n{phases},\n]"


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
         schedule: str, template: str = "") -> tuple[dict[str, Any], str | None]:
    """(overrides, the reason the trainer would refuse them or None), from the form's
    text; a schedule field still holding its `template` changes nothing."""
    base = {**builtin_schema().defaults(), **parent} if builtin else parent
    overrides: dict[str, Any] = {}
    try:
        for key, text in texts.items():
            if text.strip():
                value = parse_value(text.strip(), f"{key}:")
                if value != base.get(key):
                    overrides[key] = value
        if schedule.strip() != template.strip():
            sched = parse_schedule(schedule)
            if sched is not None and sched != base.get("schedule"):
                overrides["schedule"] = sched
    except TuiexpError as e:
        return overrides, sentence(str(e))
    try:
        fork_params(parent, overrides, epoch, builtin)  # exactly what the client will check
    except TuiexpError as e:
        return overrides, str(e)
    return overrides, None


def diff_text(parent: dict[str, Any], overrides: dict[str, Any]) -> str:
    if not overrides:
        return "[dim]no change from the parent yet: the child continues as is[/]"
    return "\n".join(f"[b]{k}[/]: {escape(_toml(parent.get(k, '(unset)')))} → "
                     f"[green]{escape(_toml(v))}[/]" for k, v in overrides.items())


class ForkScreen(ModalScreen["Request | None"]):
    AUTO_FOCUS = "#epoch"  # the screen focuses it on activation, before any key is read
    BINDINGS = keys.FORK

    def __init__(self, row: RunRow, checkpoints: list[int], name: str = "") -> None:
        super().__init__()
        self.row, self.checkpoints, self.name_shown = row, checkpoints, name or row.id
        self.builtin = row.spec.get("command") is None
        self.error: str | None = None
        self.overrides: dict[str, Any] = {}
        self.template = ""  # the schedule field's text until it is edited
        #: the built-in trainer's runs have a schedule; a script's, if it takes one
        self.has_schedule = self.builtin or "schedule" in row.params

    def compose(self) -> ComposeResult:
        p = self.base
        epoch = first_epoch(self.checkpoints, self.row.best_epoch, p.get("epochs"))
        with VerticalScroll(classes="dialog"):
            yield Static(f"[b]Fork {escape(self.name_shown)}[/]  ({'built-in trainer' if self.builtin else 'own script'})")
            # the verdict and the diff first, so they stay in view on a short terminal
            yield Static("", id="verdict")
            yield Static("", id="diff")
            with Horizontal(classes="row"):
                yield Label("from epoch", classes="beside-select")
                yield Select(epoch_options(self.checkpoints, self.row.best_epoch),
                             value=epoch, allow_blank=False, id="epoch")
            for key in FIELDS:
                with Horizontal(classes="row"):
                    yield Label(key)
                    value = _toml(p[key]).strip('"') if key in p else ""
                    if key == "epochs" and isinstance(p.get(key), int) and p[key] <= epoch:
                        value = str(epoch + 1)  # the last epoch: one more, so it has some to train
                    yield Input(value, id=key, placeholder="(unchanged)", compact=True)
            if self.has_schedule:
                yield Label(f"schedule from the fork epoch on (phases such as {SCHEDULE_EXAMPLE})")
                self.template = self.schedule_template(epoch)
                yield TextArea(self.template, id="schedule", language=None)
            yield Static("[dim]tab: next field · enter or ctrl+s: queue · esc: cancel[/]")

    @property
    def base(self) -> dict[str, Any]:
        """The parent's params with its trainer's defaults filled in."""
        return {**builtin_schema().defaults(), **self.row.params} if self.builtin else self.row.params

    def schedule_template(self, epoch: int) -> str:
        """The schedule field's text before it is edited: the parent's phases, or one
        phase of what it trains with over the epochs left after `epoch`."""
        p = self.base
        left = p["epochs"] - epoch if isinstance(p.get("epochs"), int) else 1
        return schedule_text(schedule_template(p, left))

    def on_mount(self) -> None:
        self.revalidate()

    @on(Select.Changed, "#epoch")
    def epoch_changed(self) -> None:
        """A new epoch: the untouched template follows it (the epochs left change)."""
        if not self.has_schedule:
            return
        area = self.query_one("#schedule", TextArea)
        if area.text == self.template:
            self.template = self.schedule_template(self.epoch)
            area.load_text(self.template)

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def revalidate(self) -> None:
        texts = {k: self.query_one(f"#{k}", Input).value for k in FIELDS}
        schedule = self.query_one("#schedule", TextArea).text if self.has_schedule else ""
        self.overrides, self.error = plan(self.row.params, self.builtin, self.epoch, texts,
                                          schedule, self.template)
        self.query_one("#diff", Static).update(diff_text(self.base, self.overrides))
        verdict = self.query_one("#verdict", Static)
        verdict.set_class(bool(self.error), "error")
        verdict.set_class(not self.error, "ok")
        verdict.update(Text(self.error) if self.error else f"ready to fork from epoch {self.epoch}")

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
