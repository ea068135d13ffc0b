"""The journey of issue 11 in real terminals of 80×24 and 100×30, by keys only, each
step asserted on the captured screen: open, filter, sort, mark three runs, bulk-cancel,
resume, read lr/optimizer/schedule/dropout in the detail's first screen, fork with a
new schedule, compare parent and fork (only the real differences), export the
filtered table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.tmux import Terminal, needs_tmux
from tuiexp.queue import daemon
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

FAKE = Path(__file__).resolve().parents[1] / "fake_run.py"
pytestmark = needs_tmux

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 2

[experiments.base]
command = "{python} {fake}"
epochs = 2
steps_per_epoch = 2
checkpoint = true
lr = 0.1
optimizer = "sgd"
dropout = 0.1
schedule = [{{ epochs = 2, lr = 0.1 }}]

[experiments.slow]
command = "{python} {fake}"
epochs = 3
steps_per_epoch = 400
sleep = 0.2
lr = 0.1
optimizer = "sgd"
dropout = 0.1
sweep.dropout = [0.2, 0.3, 0.4]
"""
NEW_SCHEDULE = [{"epochs": 2, "lr": 0.05}]


def table_rows(pane: str, label: str) -> list[str]:
    """Rows of the runs table whose label starts with `label` (after the mark column)."""
    return [line for line in pane.splitlines() if line[2:].startswith(label)]


def panel_keys(pane: str) -> set[str]:
    """The first word of every panel line: the spec's param names, among others."""
    return {cell.split()[0] for line in pane.splitlines() for cell in line.split("│")[1:]
            if cell.strip()}


def compare_params(pane: str) -> list[str]:
    """The names in the compare screen's table of differences."""
    lines = pane.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:1] == ["param"])
    return [line.split()[0] for line in lines[head + 1:] if line.strip()]


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_the_journey_by_keys_in_a_small_terminal(tmp_path: Path, size: tuple[int, int]):
    (tmp_path / "experiments.toml").write_text(CONFIG.format(python=sys.executable, fake=FAKE))
    for exp in ("base", "slow"):
        subprocess.run([sys.executable, "-m", "tuiexp", "run", exp], cwd=tmp_path, check=True,
                       capture_output=True)
    logs = LogsDir.at(tmp_path / "logs")
    index = Index(logs)
    slow = sorted(r.id for r in index.runs() if r.experiment == "slow")
    status = lambda rid: index.run(rid).status  # noqa: E731
    term = Terminal(tmp_path, *size)
    try:
        # open: every run listed; the base run finishes (it is forked below)
        term.wait_text("supervisor", "slow d=0.4")
        parent = term.wait(lambda: [r for r in index.runs() if r.experiment == "base"
                                    and r.status == "finished"], 60)[0]
        # filter
        term.filter("slow")
        pane = term.wait(lambda: p if len(table_rows(p := term.pane(), "slow d=")) == 3
                         and not table_rows(p, "base") else "")
        # sort: the header marks the sorted column
        term.keys("s")
        term.wait_text("▼id")
        # mark three
        term.keys("g", "Space", "Space", "Space")
        term.wait(lambda: term.pane().count("•slow d=") == 3)
        # bulk cancel: the dialog names every run and what happens to it
        term.keys("c")
        pane = " ".join(term.wait_text("Yes (y)").split())
        assert all(f"slow d={d}" in pane for d in ("0.2", "0.3", "0.4")), pane  # as the table names them
        term.keys("y")
        term.wait(lambda: all(status(r) == "cancelled" for r in slow), 30)
        term.wait(lambda: term.pane().count("cancelled") == 3)
        # resume them all
        term.keys("r")
        term.wait_text("Queue 3 runs again")
        term.keys("y")
        term.wait(lambda: not any(status(r) == "cancelled" for r in slow), 30)
        # detail of the base run: the params that matter on its first screen
        term.keys("Escape")  # alone: an ESC with a key right after it reads as alt+key
        term.wait(lambda: table_rows(term.pane(), "base") and table_rows(term.pane(), "slow"))
        term.filter("base")
        term.wait(lambda: table_rows(term.pane(), "base") and not table_rows(term.pane(), "slow"))
        term.keys("g", "Enter")
        pane = term.wait_text("spec")
        assert {"optimizer", "lr", "schedule", "dropout"} <= panel_keys(pane), pane
        # fork from epoch 1 with a new schedule
        term.keys("f")
        term.wait_text("from epoch", "ready to fork from epoch 1")  # the last leaves none to train
        term.keys("Enter")  # the list of epochs with a checkpoint
        term.wait_text("epoch 2 (best, last)")
        term.keys("Home", "Enter")
        term.wait_text("ready to fork from epoch 1")
        term.keys(*["Tab"] * 8, "F7")  # past the 7 fields to the schedule; select all of it
        term.type("schedule = [{ epochs = 2, lr = 0.05 }]")
        term.wait_text("ready to fork from epoch 1", "schedule: [{ epochs = 2, lr = 0.1 }] → [{ epochs = 2, lr = 0.05 }]")
        term.keys("C-s")
        child = term.wait(lambda: [r for r in index.runs() if r.parent == parent.id])[0]
        assert child.fork_epoch == 1 and child.params["schedule"] == NEW_SCHEDULE
        # compare parent and fork: only what really differs
        term.keys("Escape")
        term.wait(lambda: table_rows(term.pane(), "base") and table_rows(term.pane(), "└ fork@1 sched"))
        term.keys("u", "g", "Space", "Space", "C")  # the slow runs are still marked
        pane = term.wait_text("comparing", "schedule")
        params = compare_params(pane)
        assert "schedule" in params, pane
        assert not {"dropout", "lr", "optimizer", "epochs", "schedule_start"} & set(params), pane
        # export the filtered table
        term.keys("Escape")
        term.wait(lambda: "comparing" not in term.pane())
        term.keys("u", "Escape")  # the filter cleared: every run listed again
        term.wait(lambda: table_rows(term.pane(), "slow"))
        term.filter("slow")
        term.wait(lambda: len(table_rows(term.pane(), "slow d=")) == 3)
        term.keys("e")
        term.wait_text("Export the 3 runs matching 'slow'")
        term.keys("C-s")
        term.wait_text("Wrote 3 runs")
        with open(tmp_path / "runs.csv", newline="") as f:
            exported = list(csv.DictReader(f))
        assert sorted(row["run"] for row in exported) == slow
        term.keys("q")
        term.wait(lambda: "supervisor" not in term.pane(), 10)
    finally:
        term.close()
        daemon.stop(logs)
        index.close()
    assert json.loads((logs.run(child.id).dir / "run.json").read_text())["params"]["schedule"] == NEW_SCHEDULE
