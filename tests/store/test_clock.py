"""The run clock across attempts: elapsed, ETA and the current LR of a run that was
killed and resumed, folded by the real index from an event log written by hand
(tests/trainer/test_e2e.py does the same with the real trainer)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tuiexp.store import events, query, runstore
from tuiexp.store.index import Index, RunRow
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


def fold(tmp_path: Path, log: list[tuple[float, str, dict[str, object]]]) -> RunRow:
    logs = LogsDir.at(tmp_path)
    paths = runstore.create(logs, RunSpec(id="r", experiment="x", params={"epochs": 4}))
    for t, kind, fields in log:
        events.append(paths.events, kind, t, fields)
    with Index(logs) as index:
        index.reindex_run("r")
        row = query.get_run(index, "r")
    assert row is not None
    return row


#: attempt 1 runs 1000-1025 and is killed in epoch 3 (no status); attempt 2, a day
#: later, resumes after epoch 1. Each epoch is logged in two events (train, then val).
KILLED_AND_RESUMED = [
    (1000.0, "start", {}),
    (1001.0, "step", {"step": 1, "lr": 0.1}),
    (1010.0, "epoch", {"epoch": 1, "train_loss": 1.0}),
    (1011.0, "epoch", {"epoch": 1, "val_acc": 0.5, "lr": 0.09}),
    (1020.0, "epoch", {"epoch": 2, "train_loss": 0.9}),
    (1021.0, "epoch", {"epoch": 2, "val_acc": 0.6, "lr": 0.07}),
    (1025.0, "step", {"step": 25, "lr": 0.05}),
    (87400.0, "start", {}),
    (87405.0, "step", {"step": 11, "lr": 0.085}),
]


def test_a_killed_and_resumed_run_keeps_true_time(tmp_path: Path) -> None:
    row = fold(tmp_path, KILLED_AND_RESUMED)
    running = replace(row, status="running")
    assert query.elapsed(running, now=87410.0) == pytest.approx(25 + 10)  # not a day and more
    # the resumed attempt's own LR, not step 25's of the attempt that died
    assert query.current_lr(running) == 0.085
    # one whole epoch (1 -> 2) took 10 s; epoch 2 of 4 logged: 2 left, the first of them
    # begun when the attempt started, and counting down from there (issue 18.10)
    assert (row.epoch_secs, row.epoch_gaps) == (10.0, 1)
    assert row.epoch_at == 87400.0
    assert [query.eta(running, now=87400.0 + s) for s in (0, 4, 10, 30)] == pytest.approx(
        [20.0, 16.0, 10.0, 10.0])  # an epoch that runs long holds at the epochs after it
    # waiting in the queue again (or starting): the clock stands still
    for status in ("queued", "starting", "cancelled"):
        still = replace(row, status=status, ended=None)
        assert query.elapsed(still, now=99999.0) == pytest.approx(25 + 5)


def test_a_new_attempt_is_silent_on_the_lr_until_it_logs_one(tmp_path: Path) -> None:
    row = fold(tmp_path, KILLED_AND_RESUMED[:-1])
    assert query.current_lr(row) is None


def test_a_launched_attempt_that_has_not_logged_yet_counts_from_its_launch(tmp_path: Path) -> None:
    row = fold(tmp_path, KILLED_AND_RESUMED[:7])  # attempt 1 only, killed at 1025
    # the supervisor launched attempt 2 at 90000 (`started`); its start event is not in yet
    launched = replace(row, status="running", started=90000.0)
    assert query.elapsed(launched, now=90003.0) == pytest.approx(25 + 3)
    ended = replace(row, status="cancelled", ended=1026.0)
    assert query.elapsed(ended, now=99999.0) == pytest.approx(26)


def test_rows_built_by_hand_keep_the_old_rules() -> None:
    row = RunRow(id="h", experiment="x", status="finished", started=10.0, ended=40.0)
    assert query.elapsed(row, now=100.0) == 30.0 and query.current_lr(row) is None
