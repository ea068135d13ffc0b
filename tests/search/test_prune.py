"""A prune.request reaches the run: track.should_prune(), and the built-in trainer
ends `pruned` with its checkpoints kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiexp.store import atomic, runstore
from tuiexp.store.paths import RunPaths
from tuiexp.track.run import Run

from ..trainer.conftest import TINY, final_status, make_run, run_trainer


def test_should_prune_sees_the_request_file(tmp_path: Path) -> None:
    run = Run(runstore.create_standalone(tmp_path, "p", {}))
    try:
        assert not run.should_prune()
        run.paths.prune.write_text("1\n")
        run._prune_checked = 0.0  # the next look is due (it looks at most every 0.5 s)
        assert run.should_prune() and run.should_prune()
        run.finish("pruned", "by a test")
    finally:
        run.close()


def trial_run(root: Path) -> Run:
    """A run of a study's, as the supervisor queues one (its spec names the study)."""
    paths = RunPaths(runstore.create_standalone(root, "trial", {}))
    atomic.write_json(paths.spec, {**(runstore.read_json(paths.spec) or {}), "study": "s", "trial": 0})
    return Run(paths.dir)


def test_a_trial_waits_at_its_epochs_end_for_the_verdict_on_it(tmp_path: Path, monkeypatch) -> None:
    import threading

    from tuiexp.store import events
    from tuiexp.track import run as run_module

    monkeypatch.setattr(run_module, "JUDGE_WAIT", (30.0, 30.0))  # a verdict, not a timeout, ends it
    run = trial_run(tmp_path)
    paths = run.paths
    atomic.write_json(paths.judged, {"epoch": 0, "next": 1})  # its study: a verdict can come at 1

    def judge() -> None:  # the supervisor's part: read the epoch's report, then rule
        while not any(e["kind"] == "epoch" for e in events.read_all(paths.events)):
            threading.Event().wait(0.01)
        paths.prune.write_text("1\n")

    try:
        run.log({"val/acc": 0.1}, epoch=1)
        judge_thread = threading.Thread(target=judge)
        judge_thread.start()
        assert run.should_prune()  # asked once, right after the epoch: the verdict came
        judge_thread.join()
        run.finish("pruned", "by a test")
    finally:
        run.close()


@pytest.mark.slow
def test_the_trainer_ends_pruned_and_keeps_its_checkpoints(tmp_path: Path) -> None:
    paths = make_run(tmp_path, TINY)
    paths.prune.write_text("1\n")  # judged hopeless before it even started
    proc = run_trainer(paths)
    assert proc.returncode == 0, proc.stderr
    status = final_status(paths)
    assert status["status"] == "pruned" and "after epoch 1" in status["message"]
    assert runstore.checkpoint_epochs(paths) == [1]


def test_a_pruned_run_can_be_resumed_by_hand(tmp_path: Path) -> None:
    from tuiexp.queue.client import Client
    from tuiexp.store.paths import LogsDir
    from tuiexp.store.spec import RunSpec

    logs = LogsDir.at(tmp_path / "logs")
    paths = runstore.create(logs, RunSpec(id="trial", experiment="t", params={"x": 1}))
    paths.prune.write_text("1\n")
    with Client(logs, autostart=False) as client:
        client.index.add_run(runstore.load_spec(paths))
        client.index.set_status("trial", "pruned", "pruned by its study after epoch 1")
        client.resume("trial")
        assert client.index.run("trial").status == "queued"
    assert not paths.prune.exists()  # else it would be pruned again at its next epoch
