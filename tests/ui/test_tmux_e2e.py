"""End to end in a real terminal of 80×24: queue with `n`, fork from epoch 1 with another
batch size using only keys, and see the child drawn under its parent, named by what it
changed: `ckpt`, `└ fork@1 bs=64`)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.ui.tmux import Terminal, needs_tmux, wait_for
from tuiexp.queue import daemon
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

FAKE = Path(__file__).resolve().parents[1] / "fake_run.py"
pytestmark = needs_tmux


def test_queue_fork_and_see_the_child_in_tmux(tmp_path: Path):
    (tmp_path / "experiments.toml").write_text(
        f'[experiments.ckpt]\ncommand = "{sys.executable} {FAKE}"\n'
        "epochs = 3\nsteps_per_epoch = 3\ncheckpoint = true\nbatch_size = 32\n")
    logs = LogsDir.at(tmp_path / "logs")
    term = Terminal(tmp_path, 80, 24)
    pane, keys = term.pane, term.keys
    try:
        wait_for(screen=pane, what=lambda: "supervisor" in pane())
        keys("n")
        wait_for(screen=pane, what=lambda: "Queue an experiment" in pane())
        keys("Enter")
        index = Index(logs)
        parent = wait_for(lambda: [r for r in index.runs() if r.status == "finished"], 40, screen=pane)[0]
        wait_for(screen=pane, what=lambda: "finished" in pane())
        keys("f")
        wait_for(screen=pane, what=lambda: "from epoch" in pane())
        keys("Enter")  # open the epoch list (the newest that leaves epochs to train highlighted)
        wait_for(screen=pane, what=lambda: "epoch 1" in pane())  # the list is open
        keys("Home")
        keys("Enter")
        wait_for(screen=pane, what=lambda: "ready to fork from epoch 1" in pane())
        keys("Tab")
        keys("6", "4")
        wait_for(screen=pane, what=lambda: "→ 64" in pane())
        keys("Enter")
        child = wait_for(screen=pane, what=lambda: [r for r in index.runs() if r.parent == parent.id])[0]
        assert child.fork_epoch == 1 and child.params["batch_size"] == 64

        def drawn_under_parent() -> bool:
            lines = pane().splitlines()
            at = [i for i, line in enumerate(lines) if " ckpt " in line and "└" not in line]
            return bool(at) and "└ fork@1 bs=64 " in lines[at[0] + 1]

        wait_for(drawn_under_parent, 15, screen=pane)
        keys("q")
        wait_for(lambda: "supervisor" not in pane(), 10, screen=pane)
        index.close()
    finally:
        term.close()
        daemon.stop(logs)
