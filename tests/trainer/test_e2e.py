"""The real trainer as a subprocess on tiny data: events, checkpoints, resume, fork, failures."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from tuiexp.store import runstore
from tuiexp.store.paths import LogsDir, RunPaths
from tuiexp.store.spec import RunSpec
from tuiexp.trainer.config import EPOCH_METRICS

from .conftest import TINY, final_status, make_run, read_events, run_trainer, start_trainer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> RunPaths:
    """One uninterrupted 3-epoch run, shared by the tests that compare against it."""
    paths = make_run(tmp_path_factory.mktemp("logs"), TINY, run_id="parent")
    proc = run_trainer(paths)
    assert proc.returncode == 0, proc.stderr
    return paths


def test_a_run_reports_everything(parent: RunPaths) -> None:
    meta = read_events(parent, "meta")[0]
    assert meta["classes"][:2] == ["circle", "ellipse"] and meta["device"] == "cpu"
    assert (meta["num_train"], meta["num_val"], meta["image_shape"]) == (252, 36, [3, 16, 16])
    assert meta["num_params"] > 1000 and meta["dataset"] == "shapes" and meta["start"] == "fresh"
    epochs = read_events(parent, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr",
                "epoch_time", "images_per_s", "batch_size"):
        assert key in epochs[0], key
    steps = read_events(parent, "step")
    assert [s["step"] for s in steps] == [4, 8, 12, 16, 20]  # 7 steps an epoch, every 4th
    assert all("train_loss" in s and "lr" in s for s in steps)
    confusion = read_events(parent, "confusion")
    assert len(confusion) == 3 and sum(map(sum, confusion[-1]["matrix"])) == 36
    ckpts = read_events(parent, "checkpoint")
    assert [c["epoch"] for c in ckpts] == [1, 2, 3] and "last" in ckpts[-1]["tags"]
    assert runstore.checkpoint_epochs(parent) == [1, 2, 3]
    assert final_status(parent)["status"] == "finished"
    state = torch.load(parent.checkpoint(3), weights_only=True)  # plain data only
    assert state["epoch"] == 3 and state["optimizer_hparams"]["name"] == "adam"
    assert {"torch", "python", "gen", "mix"} <= state["rng"].keys()


def test_resume_gives_the_same_result_as_never_stopping(parent: RunPaths, tmp_path: Path) -> None:
    # a copy of the finished parent, rolled back as if it had died just after epoch 1's checkpoint
    paths = RunPaths(tmp_path / "runs" / "resumed")
    shutil.copytree(parent.dir, paths.dir)
    for epoch in (2, 3):
        paths.checkpoint(epoch).unlink()
    proc = run_trainer(paths)
    assert proc.returncode == 0, proc.stderr
    assert read_events(paths, "meta")[-1]["start"] == "resume"
    last, want = read_events(paths, "epoch")[-1], read_events(parent, "epoch")[-1]
    assert last["epoch"] == 3
    for key in ("train_loss", "val_loss", "val_acc", "lr"):
        assert last[key] == pytest.approx(want[key], abs=1e-5), key


def test_sigterm_cancels_after_a_checkpoint(tmp_path: Path) -> None:
    paths = make_run(tmp_path, {**TINY, "epochs": 200}, run_id="cancelled")
    proc = start_trainer(paths)
    deadline = time.monotonic() + 60
    while not runstore.checkpoint_epochs(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    status = final_status(paths)
    assert status["status"] == "cancelled" and "a resume continues after epoch" in status["message"]
    assert runstore.checkpoint_epochs(paths)


def test_fork_warm_starts_from_the_parent(parent: RunPaths) -> None:
    logs = LogsDir.at(parent.dir.parent.parent)
    spec = runstore.load_spec(parent).forked("child", 1, {"batch_size": 16})
    child = runstore.create(logs, spec)
    runstore.link_init_checkpoint(child, parent.checkpoint(1))
    proc = run_trainer(child)
    assert proc.returncode == 0, proc.stderr
    meta = read_events(child, "meta")[0]
    assert meta["start"] == "fork" and meta["optimizer_state"] == "loaded" and meta["batch_size"] == 16
    epochs = read_events(child, "epoch")
    assert [e["epoch"] for e in epochs] == [2, 3]
    parent_epochs = read_events(parent, "epoch")
    fresh_loss = parent_epochs[0]["train_loss"]  # a model starting from scratch
    assert abs(epochs[0]["train_loss"] - parent_epochs[1]["train_loss"]) < abs(
        epochs[0]["train_loss"] - fresh_loss)
    assert read_events(child, "step")[0]["step"] > 7  # the step count goes on from the parent's


def test_fork_with_another_optimizer_starts_its_state_fresh(parent: RunPaths) -> None:
    logs = LogsDir.at(parent.dir.parent.parent)
    spec = runstore.load_spec(parent).forked("child-sgd", 2, {"optimizer": "sgd", "lr": 0.01,
                                                              "schedule_start": 2})
    child = runstore.create(logs, spec)
    runstore.link_init_checkpoint(child, parent.checkpoint(2))
    assert run_trainer(child).returncode == 0
    assert read_events(child, "meta")[0]["optimizer_state"] == "fresh"
    assert [e["epoch"] for e in read_events(child, "epoch")] == [3]
    assert read_events(child, "epoch")[0]["lr"] < 0.01  # cosine over the one epoch after the fork


def test_a_diverging_run_says_so(tmp_path: Path) -> None:
    paths = make_run(tmp_path, {**TINY, "optimizer": "sgd", "lr": 1e30, "epochs": 1})
    proc = run_trainer(paths)
    assert proc.returncode == 3
    status = final_status(paths)
    assert status["status"] == "diverged"
    assert status["message"].startswith("loss became nan at step ") and "(epoch 1)" in status["message"]


@pytest.mark.parametrize(("params", "words"), [
    ({"model": "nosuchpkg.models:net"}, "cannot load model factory 'nosuchpkg.models:net'"),
    ({"dataset": "cifar10", "data_root": "/nonexistent"}, "CIFAR-10 not found under /nonexistent/"),
    ({"dropuot": 0.2}, "param `dropuot`: unknown key — did you mean `dropout`?"),
])
def test_bad_setups_fail_at_once_with_a_sentence(tmp_path: Path, params: dict, words: str) -> None:
    paths = make_run(tmp_path, {**TINY, **params})
    proc = run_trainer(paths)
    assert proc.returncode == 2
    status = final_status(paths)
    assert status["status"] == "failed" and words in status["message"]
    assert "Traceback" not in proc.stderr


def test_spec_seed_and_run_spec_are_untouched(parent: RunPaths) -> None:
    """The trainer reads run.json and never writes it: no default (seed included) is
    written back into the spec that was queued."""
    spec = runstore.load_spec(parent)
    assert spec == RunSpec(id="parent", experiment="t", params=TINY, created=spec.created)
    assert "seed" not in spec.params and spec.seed is None


def test_epoch_events_hold_exactly_the_declared_metrics(parent: RunPaths) -> None:
    for e in read_events(parent, "epoch"):
        names = set(e) - {"v", "t", "kind", "epoch"}
        assert names == set(EPOCH_METRICS) - {"peak_mem_mb"}  # peak_mem_mb on CUDA only


def test_the_best_checkpoint_follows_the_runs_primary_metric(tmp_path: Path) -> None:
    paths = make_run(tmp_path, TINY, metric="val_loss")  # no mode: a loss is lower-better
    proc = run_trainer(paths)
    assert proc.returncode == 0, proc.stderr
    losses = {e["epoch"]: e["val_loss"] for e in read_events(paths, "epoch")}
    bests = [c["epoch"] for c in read_events(paths, "checkpoint") if "best" in c["tags"]]
    assert bests[-1] == min(losses, key=losses.__getitem__)
    # one progress line per epoch on stdout, a star where the best moved
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in lines] == ["1/3", "2/3", "3/3"]
    assert [ln.endswith("*") for ln in lines] == [e in bests for e in (1, 2, 3)]
    assert f"val_loss {losses[1]:.4f}" in lines[0] and "train_loss" in lines[0] and "lr " in lines[0]


def test_early_stopping_follows_the_primary_metric_and_its_mode(tmp_path: Path) -> None:
    # the cosine lr falls every epoch: with lr/max as the primary metric, epoch 1 stays best
    paths = make_run(tmp_path, {**TINY, "early_stop": {"patience": 1}}, metric="lr", mode="max")
    proc = run_trainer(paths)
    assert proc.returncode == 0, proc.stderr
    assert [e["epoch"] for e in read_events(paths, "epoch")] == [1, 2]
    assert final_status(paths)["message"] == "early stop after epoch 2: lr has not improved since epoch 1"
    assert [c["epoch"] for c in read_events(paths, "checkpoint") if "best" in c["tags"]] == [1]


def test_a_primary_metric_the_trainer_does_not_log_fails_at_once(tmp_path: Path) -> None:
    paths = make_run(tmp_path, TINY, metric="val/acc")
    proc = run_trainer(paths)
    assert proc.returncode == 2
    status = final_status(paths)
    assert status["status"] == "failed" and "metric `val/acc` is not one the built-in trainer logs" in status["message"]
    assert not read_events(paths, "epoch")


def test_elapsed_eta_and_lr_are_true_across_a_resume(parent: RunPaths, tmp_path: Path) -> None:
    """A run killed in epoch 3 whose last checkpoint is epoch 1, then resumed: elapsed is
    the two attempts' time without the gap between them, the ETA comes from whole epochs,
    and the current LR is the resumed attempt's, not a later step of the attempt that died."""
    from dataclasses import replace

    from tuiexp.store import events, query
    from tuiexp.store.index import Index

    paths = RunPaths(tmp_path / "logs" / "runs" / "parent")
    shutil.copytree(parent.dir, paths.dir)
    for epoch in (2, 3):
        paths.checkpoint(epoch).unlink()
    lines = paths.events.read_text().splitlines(keepends=True)
    died = next(i for i, ln in enumerate(lines) if '"step": 16' in ln or '"step":16' in ln)
    paths.events.write_text("".join(lines[: died + 1]))  # killed (-9) just after step 16
    proc = run_trainer(paths)
    assert proc.returncode == 0, proc.stderr
    evs = events.read_all(paths.events)
    starts = [i for i, e in enumerate(evs) if e["kind"] == "start"]
    assert len(starts) == 2
    first, second = evs[: starts[1]], evs[starts[1]:]
    ran = (first[-1]["t"] - first[0]["t"]) + (second[-1]["t"] - second[0]["t"])

    with Index(LogsDir.at(tmp_path / "logs")) as index:
        index.reindex_run("parent")
        row = query.get_run(index, "parent")
    assert row is not None  # (no supervisor wrote its status files: the status is not the point)
    assert query.elapsed(row, now=second[-1]["t"] + 3600) == pytest.approx(ran)
    assert ran < second[-1]["t"] - first[0]["t"]  # the gap between the attempts is left out
    assert query.current_lr(row) == read_events(paths, "epoch")[-1]["lr"]  # the last step's

    # the same run seen just after the resumed attempt logged its first step (step 8)
    mid = RunPaths(tmp_path / "mid" / "runs" / "parent")
    shutil.copytree(paths.dir, mid.dir)
    upto = starts[1] + next(i for i, e in enumerate(second) if e["kind"] == "step")
    mid.events.write_text("".join(paths.events.read_text().splitlines(keepends=True)[: upto + 1]))
    with Index(LogsDir.at(tmp_path / "mid")) as index:
        index.reindex_run("parent")
        seen = query.get_run(index, "parent")
    assert seen is not None
    now_row = replace(seen, status="running")
    step8 = evs[upto]
    dead_lr = next(e["lr"] for e in first if e.get("step") == 16)
    assert step8["step"] == 8 and query.current_lr(now_row) == step8["lr"] != dead_lr
    now = step8["t"] + 1.0
    attempt1 = first[-1]["t"] - first[0]["t"]
    assert query.elapsed(now_row, now) == pytest.approx(attempt1 + now - second[0]["t"])
    # the ETA: epochs left at a whole epoch's wall time (attempt 1's epoch 1 -> 2 events),
    # less what the epoch in progress ran since the resumed attempt began it
    e1, e2 = (next(e["t"] for e in first if e["kind"] == "epoch" and e["epoch"] == n) for n in (1, 2))
    left, since = 3 - query.epochs_done(now_row), now - second[0]["t"]
    assert now_row.epoch_at == pytest.approx(second[0]["t"])
    assert query.eta(now_row, now) == pytest.approx(max(0.0, (e2 - e1) - since) + (e2 - e1) * (left - 1))
