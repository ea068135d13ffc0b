"""The first hour of a new user, shared by the steps of a journey: one project folder
with an experiments.toml and an EMPTY logs directory, and the dashboard opened in it
the way the README says (`tuiexp`), in two real terminals at once (80×24 and 100×30),
so every step is seen at both sizes while the runs train only once.

Only layout-independent means: tmux captures, the real CLI (`tuiexp ls --json`,
`tuiexp fork`, ...) and files in the project folder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_RUN, tuiexp
from tests.journeys.screen import Recorder, Recording, Table, table
from tests.trainer.conftest import tiny_toml
from tests.ui.tmux import Terminal, tmux, wait_for

#: what a new user's experiments.toml looks like, shrunk to seconds on a CPU: `smoke`
#: trains long enough (a few seconds an epoch) to be watched, the rest are tiny
CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 2

[defaults]
{tiny}
[experiments.smoke]
description = "a tiny ResNet on shapes, watched while it trains"
num_train = 6000
epochs = 5
log_every = 80

[experiments.dropout]
description = "does dropout help? two seeds each"
sweep.dropout = [0.0, 0.3]
seeds = [0, 1]

[experiments.bs]
description = "a script's batch sizes, slow enough to be cancelled"
command = "python {fake}"
epochs = 3
steps_per_epoch = 20
sleep = 0.5
batch_size = 32
sweep.batch_size = [16, 32, 64]

[experiments.tune]
description = "a study whose trials are a script's runs"
command = "python {fake}"
epochs = 2
steps_per_epoch = 3
lr = 0.1
dropout = 0.1
search = {{ sampler = "random", pruner = "none", trials = 2, parallel = 2, lr = {{ log_uniform = [0.001, 0.1] }}, dropout = {{ uniform = [0.0, 0.5] }} }}

[experiments.script]
description = "a script speaking tuiexp.track"
command = "python {fake}"
epochs = 1
steps_per_epoch = 2

[experiments.ping]
description = "a script that ends at once"
command = "python {fake}"
epochs = 1
steps_per_epoch = 1
"""
#: the experiments in the order the `n` dialog lists them
EXPERIMENTS = ("smoke", "dropout", "bs", "tune", "script", "ping")
LIVE = ("queued", "starting", "running")


class Journey:
    """The project folder, its two terminals and what earlier steps left for later ones."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "experiments.toml").write_text(
            CONFIG.format(tiny=tiny_toml(checkpoint_every=1), fake=FAKE_RUN))
        self.small = Terminal(root, 80, 24)
        self.wide = Terminal(root, 100, 30)
        self.terminals = {"80x24": self.small, "100x30": self.wide}
        for term in self.terminals.values():  # a dashboard that dies leaves its last words
            tmux("set-option", "-t", term.session, "remain-on-exit", "on")
        self.recorder: Recorder | None = None
        self.recording: Recording | None = None
        self.notes: dict[str, Any] = {}  # what a step saw, for a later step

    # -- the command line, as a user would use it beside the dashboard --------------
    def cli(self, *args: str) -> str:
        return tuiexp(self.root, *args, check=True).stdout

    def runs(self, *filters: str) -> list[dict[str, Any]]:
        args = ("ls", "--json", *(("--filter", " ".join(filters)) if filters else ()))
        return json.loads(self.cli(*args))

    def wait_runs(self, what: Callable[[list[dict[str, Any]]], bool], *filters: str,
                  timeout: float = 60) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            rows = self.runs(*filters)
            return rows if what(rows) else None
        return wait_for(check, timeout, lambda: self.small.pane() + "\n" + self.cli("ls"))

    # -- the dashboard ---------------------------------------------------------------
    def table(self, term: Terminal, timeout: float = 30) -> Table:
        return term.wait(lambda: table(term.pane()), timeout)

    def open_new(self, term: Terminal) -> str:
        """`n`: the dialog listing the experiments (`n` again if the first was lost)."""
        for _ in range(3):
            term.keys("n")
            try:
                return seen(term, lambda p: dialog_open(p) and EXPERIMENTS[0] in p, 5)
            except AssertionError:
                continue
        return seen(term, lambda p: dialog_open(p) and EXPERIMENTS[0] in p, 1)

    def queue_with_n(self, term: Terminal, experiment: str) -> None:
        """`n`, the experiment picked with the arrow keys, enter."""
        self.open_new(term)
        term.keys(*["Down"] * EXPERIMENTS.index(experiment), "Enter")
        term.wait(lambda: not dialog_open(term.pane()))

    def show_only(self, term: Terminal, text: str, rows: int | None = None) -> Table:
        """The filter `text`, once the table shows it (`rows` of them when given)."""
        self.clear(term)
        term.filter(text)

        def shown() -> Table | None:
            t = table(term.pane())
            ok = t is not None and t.lines and (rows is None or len(t.lines) == rows)
            return t if ok and "enter keeps" not in term.pane() else None
        return term.wait(shown)

    def clear(self, term: Terminal) -> None:
        """Back to the whole table: screens and dialogs closed, no filter, nothing marked
        (a key at a time, looking at the screen before each, as a person would)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pane = term.pane()
            if dialog_open(pane) or table(pane) is None or "▊" in pane:  # ▊: the filter line
                term.keys("Escape")
            elif "•" in pane:
                term.keys("u")
            else:
                return
        raise AssertionError(f"could not get back to the runs table; the screen:\n{term.pane()}")

    def mark_all(self, term: Terminal, n: int) -> None:
        term.keys("g", *["Space"] * n)
        term.wait(lambda: term.pane().count("•") >= n)

    def after(self, step: str) -> None:
        """Fail at once, not after a long wait, when an earlier step this one needs failed."""
        if not self.notes.get(step):
            pytest.fail(f"the step that {step} did not pass", pytrace=False)

    def close(self) -> None:
        for rid in [r["id"] for r in self.runs() if r["status"] in LIVE]:
            tuiexp(self.root, "cancel", rid)
        tuiexp(self.root, "daemon", "stop")
        for term in self.terminals.values():
            term.close()


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    j = Journey(tmp_path_factory.mktemp("first-hour"))
    try:
        yield j
    finally:
        if j.recorder is not None:
            j.recorder.stop()
        j.close()


def dialog_open(pane: str) -> bool:
    """A modal dialog (its thick top border) is on screen."""
    return "█▀▀" in pane


def seen(term: Terminal, what: Callable[[str], bool], timeout: float = 30) -> str:
    """The screen, once `what` holds for it."""
    return term.wait(lambda: (p if what(p := term.pane()) else ""), timeout)


def dialog_text(pane: str) -> str:
    """The words inside the modal dialog on screen, one space between them."""
    lines = pane.splitlines()
    top = next((i for i, line in enumerate(lines) if "█▀▀" in line), None)
    if top is None:
        return ""
    left, right = lines[top].index("█"), lines[top].rindex("█")
    inside = []
    for line in lines[top + 1:]:
        if "█▄▄" in line:
            break
        inside.append(line[left + 1:right])
    return " ".join(" ".join(inside).split())
