"""A prune.request reaches the run: track.should_prune(), and the built-in trainer
ends `pruned` with its checkpoints kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiexp.core import runstore
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
    from tuiexp.core.client import Client
    from tuiexp.core.paths import LogsDir
    from tuiexp.core.spec import RunSpec

    logs = LogsDir.at(tmp_path / "logs")
    paths = runstore.create(logs, RunSpec(id="trial", experiment="t", params={"x": 1}))
    paths.prune.write_text("1\n")
    with Client(logs, autostart=False) as client:
        client.index.add_run(runstore.load_spec(paths))
        client.index.set_status("trial", "pruned", "pruned by its study after epoch 1")
        client.resume("trial")
        assert client.index.run("trial").status == "queued"
    assert not paths.prune.exists()  # else it would be pruned again at its next epoch
