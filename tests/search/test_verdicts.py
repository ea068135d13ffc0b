"""The rules of a trial's verdict, each alone (issue 20): how a run's end is told to Optuna,
when a run that was asked to stop is `pruned`, and where a trial waits for its pruner."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tuiexp.search.outcome import COMPLETE, FAIL, PRUNED, RUNNING, outcome
from tuiexp.search.study import next_verdict
from tuiexp.store import atomic, runstore
from tuiexp.store.index import RunRow
from tuiexp.store.metrics import KeySummary
from tuiexp.store.paths import RunPaths
from tuiexp.track import run as run_module
from tuiexp.track.run import Run


def row(status: str, epoch: int | None = 6, last_at: int | None = 6, best: float | None = 0.9,
        message: str = "") -> RunRow:
    r = RunRow(id="r", experiment="x", status=status, message=message, epoch=epoch,
               metric="val/acc", mode="max", best=best)
    if last_at is not None:
        s = KeySummary("val/acc", "epoch")
        s.add(last_at, best if best is not None else float("nan"))
        r.summaries[("val/acc", "epoch")] = s
    return r


@pytest.mark.parametrize(("r", "state"), [
    (row("finished"), COMPLETE),
    (row("running"), RUNNING),
    (row("queued", epoch=None, last_at=None, best=None), RUNNING),
    (row("pruned", epoch=2, last_at=2), PRUNED),
    (row("failed", message="exited with code 1"), FAIL),
    (row("cancelled"), FAIL),
    (row("finished", epoch=6, last_at=4), FAIL),  # stopped logging it: a partial value
    (row("finished", best=None, last_at=None), FAIL),
])
def test_only_a_finished_run_with_its_metric_at_its_last_epoch_is_complete(r: RunRow,
                                                                          state: str) -> None:
    said = outcome(r)
    assert said.state == state
    if state == COMPLETE:
        assert said.value == 0.9 and not said.reason
    if state == FAIL:
        assert said.reason  # the journal and `study show` say why


def test_a_finished_run_that_stopped_logging_its_metric_says_where() -> None:
    assert outcome(row("finished", epoch=6, last_at=4)).reason == (
        "finished, but its last epoch (6) has no val/acc (last at epoch 4)")


SEARCH = {"warmup": 1, "startup_trials": 3, "reduction": None}


@pytest.mark.parametrize(("pruner", "completed", "after", "epochs", "expected"), [
    ("none", 10, 0, 10, None),
    ("median", 2, 0, 10, None),      # startup: no verdict before 3 trials are complete
    ("median", 3, 0, 10, 1),
    ("median", 3, 4, 10, 5),
    ("median", 3, 8, 10, 9),
    ("median", 3, 9, 10, None),      # the last epoch is never judged
    ("median", 3, 9, None, 10),      # (unknown length: every epoch is)
    ("asha", 0, 0, 20, 1),           # rungs 1, 4, 16 (min resource 1, η 4)
    ("asha", 0, 1, 20, 4),
    ("asha", 0, 5, 20, 16),
    ("asha", 0, 16, 20, None),
    ("hyperband", 0, 1, 20, 3),      # every bracket's rungs: 1, 3, 9 (η 3)
    ("hyperband", 0, 3, 20, 9),
])
def test_a_verdict_can_come_only_where_the_pruner_rules(pruner: str, completed: int, after: int,
                                                       epochs: int | None,
                                                       expected: int | None) -> None:
    assert next_verdict({**SEARCH, "pruner": pruner}, completed, after, epochs) == expected


def test_the_rungs_match_optunas_pruners() -> None:
    """ASHA prunes a hopeless trial at a rung step and never between rungs."""
    from tuiexp.search.study import make_pruner, optuna_module

    optuna = optuna_module()
    search = {**SEARCH, "pruner": "asha", "reduction": 2}
    study = optuna.create_study(direction="maximize", pruner=make_pruner(optuna, search, 8))
    for _ in range(4):  # good trials reach every rung
        good = study.ask()
        for step in range(1, 9):
            good.report(1.0, step)
            assert not good.should_prune()
        study.tell(good, 1.0)
    bad = study.ask()
    ruled = []
    for step in range(1, 9):
        bad.report(0.0, step)
        if bad.should_prune():
            ruled.append(step)
            break
    rungs, at = [], 0
    while (at := next_verdict(search, 4, at, 8)) is not None:
        rungs.append(at)
    assert rungs == [1, 2, 4] and ruled and ruled[0] in rungs


def ended_run(tmp_path: Path, status: str, *, prune_at: float | None, started: float,
              cancel: bool = False) -> tuple[RunPaths, dict[str, object]]:
    paths = RunPaths(runstore.create_standalone(tmp_path, "t", {}))
    atomic.write_json(paths.proc, {"pid": 1, "attempt": 1, "started": started})
    if prune_at is not None:
        atomic.write_json(paths.prune, {"epoch": 2, "t": prune_at})
    if cancel:
        paths.cancel.write_text("1\n")
    return paths, {"kind": "status", "status": status, "t": started + 10}


@pytest.mark.parametrize(("status", "prune_at", "cancel", "expected"), [
    ("finished", 5.0, False, "pruned"),    # stopped on the verdict and said finish()
    ("preempted", 5.0, False, "pruned"),   # (and is not queued again)
    ("cancelled", 5.0, False, "pruned"),
    ("cancelled", 5.0, True, "cancelled"),  # the user's cancel stays the user's
    ("failed", 5.0, False, "failed"),       # a failure stays a failure
    ("finished", -5.0, False, "finished"),  # a request older than this attempt
    ("finished", 15.0, False, "finished"),  # a request that came after the end
    ("finished", None, False, "finished"),
])
def test_a_run_that_ends_after_its_prune_request_is_pruned(tmp_path: Path, status: str,
                                                           prune_at: float | None, cancel: bool,
                                                           expected: str) -> None:
    now = time.time()
    paths, last = ended_run(tmp_path, status, started=now,
                            prune_at=None if prune_at is None else now + prune_at, cancel=cancel)
    verdict = runstore.derive_status(paths, last)
    assert verdict.status == expected
    if expected == "pruned":
        assert verdict.message == "pruned by its study after epoch 2"


def test_an_older_prune_request_holding_a_bare_time_counts_too(tmp_path: Path) -> None:
    now = time.time()
    paths, last = ended_run(tmp_path, "finished", started=now, prune_at=None)
    paths.prune.write_text(f"{now + 1}\n")  # as a population's pruner writes it
    assert runstore.derive_status(paths, last).status == "pruned"


def trial(tmp_path: Path, judged: dict[str, object] | None) -> Run:
    paths = RunPaths(runstore.create_standalone(tmp_path, "trial", {}))
    atomic.write_json(paths.spec, {**(runstore.read_json(paths.spec) or {}), "study": "s",
                                   "trial": 0})
    if judged is not None:
        atomic.write_json(paths.judged, judged)
    return Run(paths.dir)


@pytest.mark.parametrize("judged", [
    {"epoch": 0, "next": None},  # its pruner can rule on no epoch (none, or median's startup)
    {"epoch": 0, "next": 4},     # ASHA's next rung is epoch 4
    {"epoch": 1, "next": 2},     # epoch 1 was judged already
    None,                        # no study judges it (a population's member)
])
def test_a_trial_does_not_wait_where_no_verdict_can_come(tmp_path: Path, monkeypatch,
                                                        judged: dict[str, object] | None) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError("the trial waited for a verdict that cannot come")

    monkeypatch.setattr(run_module.time, "sleep", no_sleep)
    run = trial(tmp_path, judged)
    try:
        run.log({"val/acc": 0.1}, epoch=1)
        assert not run.should_prune()
    finally:
        run.finish()
        run.close()


def test_a_trial_waits_where_a_verdict_can_come(tmp_path: Path, monkeypatch) -> None:
    waited = []

    def sleep(seconds: float) -> None:  # the supervisor rules while the trial waits
        waited.append(seconds)
        atomic.write_json(run.paths.judged, {"epoch": 1, "next": 4})

    monkeypatch.setattr(run_module.time, "sleep", sleep)
    run = trial(tmp_path, {"epoch": 0, "next": 1})
    try:
        run.log({"val/acc": 0.1}, epoch=1)
        assert not run.should_prune() and waited
    finally:
        run.finish()
        run.close()
