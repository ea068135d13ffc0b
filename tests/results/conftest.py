"""A fixed logs directory for the results tests: seeds to group, a fork, a
crashed run with no metrics, a queued run, and LaTeX-hostile names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tuiexp.store import events, runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec

T0 = 1_700_000_000.0
SWEEP = "bs_sweep&50%"
TUNE = "fine_tune"
AUG = {"flip": True, "crop": 4}
SCHEDULE = [{"opt": "adam", "epochs": 2}, {"opt": "sgd", "epochs": 2}]

# run id -> (experiment, params, seed, val_acc per epoch, status, extra)
RUNS = {
    "bs32-s0": (SWEEP, {"batch_size": 32, "lr": 0.1}, 0, [0.40, 0.50, 0.45], "finished"),
    "bs32-s1": (SWEEP, {"batch_size": 32, "lr": 0.1}, 1, [0.45, 0.60, 0.55], "finished"),
    "bs32-s2": (SWEEP, {"batch_size": 32, "lr": 0.1}, 2, [0.50, 0.70, 0.65], "finished"),
    "bs64-s0": (SWEEP, {"batch_size": 64, "lr": 0.1}, 0, [0.60, 0.80, 0.75], "finished"),
    "bs64-s1": (SWEEP, {"batch_size": 64, "lr": 0.1}, 1, [], "crashed"),
    "bs128-s0": (SWEEP, {"batch_size": 128, "lr": 0.1}, 0, [], "queued"),
    "tune-base": (TUNE, {"batch_size": 64, "lr": 0.1, "schedule": SCHEDULE}, 0,
                  [0.30, 0.50, 0.55, 0.60], "finished"),
}
#: the fork: continues tune-base from epoch 2 with a smaller lr
FORK = ("tune-lr001", "tune-base", 2, {"lr": 0.01}, [0.70, 0.72])
NUM_PARAMS = {32: 1_000, 64: 10_000, 128: 100_000}
LABELS = ["cat", "dog", "car"]


def _epoch_fields(epoch: int, acc: float) -> dict:
    return {
        "epoch": epoch,
        "train_loss": round(2.0 - acc - 0.1 * epoch, 4),
        "train_acc": round(acc + 0.05, 4),
        "val_loss": round(2.2 - acc * 2, 4),
        "val_acc": acc,
        "val_top5": round(min(1.0, acc + 0.3), 4),
        "lr": 0.1,
        "epoch_time": 10.0 + epoch,
        "images_per_s": 5000.0,
    }


def _write_events(paths, accs, status, t, num_params, start_epoch=1):
    ev = paths.events
    (paths.dir / "queue.json").write_text(json.dumps({"attempt": 1}))
    if status == "queued":
        return
    # the supervisor's record of the process it started (a pid that cannot be alive)
    (paths.dir / "proc.json").write_text(json.dumps({"pid": 2**22 + 7, "attempt": 1}))
    events.append(ev, "start", t, {"attempt": 1})
    if status == "crashed":
        # died before its first event: the supervisor's exit record says so
        (paths.exit).write_text(json.dumps({"returncode": -9, "attempt": 1}))
        return
    events.append(ev, "meta", t, {"num_params": num_params, "classes": LABELS})
    for i, acc in enumerate(accs):
        ep = start_epoch + i
        events.append(ev, "epoch", t + ep, _epoch_fields(ep, acc))
        matrix = [[5 + ep, 2, 1], [1, 6 + ep, 1], [0, 2, 4 + ep]]
        events.append(ev, "confusion", t + ep, {"epoch": ep, "labels": LABELS, "matrix": matrix})
    events.append(ev, "status", t + 100, {"status": status, "message": ""})


def build_logs(root: Path) -> LogsDir:
    logs = LogsDir.at(root)
    for i, (rid, (exp, params, seed, accs, status)) in enumerate(RUNS.items()):
        p = dict(params, augment=dict(AUG))
        spec = RunSpec(id=rid, experiment=exp, params=p, seed=seed, created=T0 + i)
        paths = runstore.create(logs, spec)
        _write_events(paths, accs, status, T0 + i, NUM_PARAMS[params["batch_size"]])
    fid, parent, fork_epoch, over, accs = FORK
    pspec = runstore.load_spec(logs.run(parent))
    spec = pspec.forked(fid, fork_epoch, over)
    spec = RunSpec.from_json({**spec.to_json(), "created": T0 + 50})
    paths = runstore.create(logs, spec)
    _write_events(paths, accs, "finished", T0 + 50, NUM_PARAMS[64], start_epoch=fork_epoch + 1)
    return logs


@pytest.fixture(scope="session")
def logs(tmp_path_factory) -> LogsDir:
    return build_logs(tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="session")
def records(logs):
    """Every run read through the one query API, with its epoch-level curves attached."""
    from tuiexp.store import query
    from tuiexp.store.index import Index

    with Index(logs) as index:
        index.rebuild()
        rows = query.load_runs(index)
        return query.attach_curves(index, rows, index.metric_names("epoch"))


def check_golden(name: str, text: str) -> None:
    """Compare with tests/results/golden/NAME; UPDATE_GOLDEN=1 rewrites it."""
    path = Path(__file__).parent / "golden" / name
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        path.write_text(text)
        if os.environ.get("UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden file {name} was missing and has been written; check it in")
    assert text == path.read_text(), f"{name} differs (UPDATE_GOLDEN=1 to accept)"
