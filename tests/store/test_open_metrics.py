"""Any script, any metric: scripts that log their own names (`val/acc`, `Loss/train`,
`rmse`) through `tuiexp.track` or as `key: value` lines of an unmodified argparse
script, run by the real supervisor, and shown by ls, show, export and plot."""

from __future__ import annotations

import csv
import io
import json
import math
import textwrap
from pathlib import Path

import pytest

from tests.conftest import show, tuiexp, write_config
from tuiexp.store import events, query, runstore
from tuiexp.store.index import Index
from tuiexp.store.ingest import Fold
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec

TRACKED = '''
import math
from tuiexp import track

run = track.init()
seed = run.params["seed"]
for epoch in range(1, run.params["epochs"] + 1):
    for s in range(4):
        step = (epoch - 1) * 4 + s
        track.log(step=step, **{"Loss/train": 2.0 * math.exp(-step / 6), "grad/norm": 1.0 + s})
    acc = 0.5 + 0.1 * epoch - 0.05 * seed
    track.log(epoch=epoch, **{"val/acc": acc, "val/loss": 1.5 - acc})
track.finish()
'''

ARGPARSE = '''
import argparse, math
ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float, required=True)
ap.add_argument("--epochs", type=int, default=3)
args = ap.parse_args()
print("training with", vars(args))
for epoch in range(1, args.epochs + 1):
    rmse = 1.0 / (epoch * args.lr * 10)
    print(f"epoch: {epoch} rmse: {rmse:.4f} note: warming")
'''

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 2

[experiments.tracked]
command = "python tracked.py"
epochs = 3
seeds = [0, 1]

[experiments.plain]
command = "python plain.py --lr {lr} --epochs {epochs}"
scalars = "stdout"
metric = "rmse"
lr = 0.1
epochs = 3
"""


@pytest.fixture
def project(workdir: Path) -> Path:
    (workdir / "tracked.py").write_text(TRACKED)
    (workdir / "plain.py").write_text(ARGPARSE)
    write_config(workdir, CONFIG)
    return workdir


def test_open_names_reach_every_view(project: Path) -> None:
    tracked = tuiexp(project, "run", "tracked", "--wait", check=True).stdout.split()[:2]
    plain = tuiexp(project, "run", "plain", "--wait", check=True).stdout.split()[0]

    # show: every metric, the primary one resolved by the default rule, and the spec's
    a = show(project, tracked[0])
    assert a["status"] == "finished" and a["metric"] == "val/acc" and a["mode"] == "max"
    assert a["best"] == pytest.approx(0.8) and a["best_at"] == 3
    assert set(a["metrics"]) == {"val/acc@epoch", "val/loss@epoch", "Loss/train@step",
                                 "grad/norm@step"}
    assert a["metrics"]["Loss/train@step"]["count"] == 12
    p = show(project, plain)
    assert p["status"] == "finished" and p["metric"] == "rmse" and p["mode"] == "min"
    assert p["best"] == pytest.approx(1 / 3, abs=1e-3) and p["best_at"] == 3

    # ls: the best of each run's own primary metric, extra columns by glob
    listing = tuiexp(project, "ls", "--columns", "val/*,min:Loss/train", check=True).stdout
    head, *rows = listing.splitlines()
    assert "VAL/ACC" in head and "VAL/LOSS" in head and "MIN:LOSS/TRAIN" in head
    assert "METRIC" in head  # two primary metrics among the runs: each row names its own
    row_a = next(r for r in rows if r.startswith(tracked[0]))
    assert "80.0%" in row_a and "val/acc" in row_a

    # export: a CSV column of an open name, grouped over the seeds: mean ± std
    out = tuiexp(project, "export", "-e", "tracked", "--format", "csv",
                 "--columns", "experiment,best:val/acc,val/loss", check=True).stdout
    (group,) = list(csv.DictReader(io.StringIO(out)))
    assert float(group["best:val/acc"]) == pytest.approx(0.775)
    assert float(group["best:val/acc_std"]) == pytest.approx(math.sqrt(2) * 0.025)
    assert group["best:val/acc_n"] == "2"
    default = tuiexp(project, "export", "-e", "tracked", "--format", "csv", check=True).stdout
    assert "best_val/acc" in default.splitlines()[0] and "final_val/loss" in default

    # plot: metrics by glob, a clear sentence for a name nobody logged
    png = project / "curves.png"
    tuiexp(project, "plot", "curves", "--metric", "val/*", "-o", str(png), check=True)
    assert png.stat().st_size > 10_000
    bad = tuiexp(project, "plot", "curves", "--metric", "val/f1", "-o", str(png))
    assert bad.returncode == 2 and "no run has logged 'val/f1'" in bad.stderr


def finished_run(logs: LogsDir, spec: RunSpec):
    """A run directory as a finished run leaves it (the supervisor's proc.json of a pid
    that cannot be alive): nothing a command reads it with would start it."""
    paths = runstore.create(logs, spec)
    paths.proc.write_text(json.dumps({"pid": 2**22 + 7, "attempt": 1}))
    paths.exit.write_text(json.dumps({"returncode": 0, "attempt": 1}))
    return paths


def test_nan_inf_and_bad_names_never_break_a_view(workdir: Path) -> None:
    """A run whose log holds NaN, infinity, a huge step, a name outside the rule and a
    non-number is indexed; the bad parts are skipped or shown as such, never fatal."""
    tmp_path = workdir
    logs = LogsDir.at(tmp_path / "logs")
    spec = RunSpec(id="weird", experiment="x", params={}, metric="acc", mode="max")
    paths = finished_run(logs, spec)
    lines = [
        events.encode("epoch", 1.0, {"epoch": 1, "acc": 0.5, "loss": math.nan}),
        events.encode("epoch", 2.0, {"epoch": 2, "acc": math.inf, "loss": 0.3}),
        events.encode("epoch", 3.0, {"epoch": 3, "acc": math.nan, "bad name!": 1.0, "s": "x"}),
        events.encode("step", 4.0, {"step": 10**30, "acc": 1.0}),
        events.encode("step", 5.0, {"step": -1, "acc": 1.0}),
    ]
    paths.events.write_bytes(b"".join(lines))
    with Index(logs) as index:
        index.reindex_run("weird")
        row = query.get_run(index, "weird")
    assert row.status == "finished"
    assert row.best == 0.5 and row.best_at == 1  # neither inf nor NaN wins
    acc = row.summary("acc")
    assert acc.count == 3 and math.isnan(acc.last) and acc.max == 0.5
    assert row.summary("loss").min == 0.3
    assert ("bad name!", "epoch") not in row.summaries and ("s", "epoch") not in row.summaries
    assert any("bad name!" in w for w in row.warnings)
    assert any("step = 1000000000000000000000000000000" in w for w in row.warnings)
    out = tuiexp(tmp_path, "show", "weird")
    assert out.returncode == 0 and "nan" in out.stdout and "bad name!" in out.stdout
    data = json.loads(tuiexp(tmp_path, "ls", "--json", check=True).stdout)
    assert data[0]["metrics"]["acc@epoch"]["last"] == "nan"
    exported = tuiexp(tmp_path, "export", "--format", "json", "--no-group", "--columns", "run,acc,loss",
                      check=True).stdout
    assert json.loads(exported)["rows"][0]["acc"] is None  # JSON has no NaN


def test_a_resume_that_repeats_epochs_replaces_them(tmp_path: Path) -> None:
    """The last event for an epoch wins, in the points and in the summary."""
    logs = LogsDir.at(tmp_path / "logs")
    spec = RunSpec(id="r", experiment="x", params={})
    paths = runstore.create(logs, spec)
    with Index(logs) as index:
        index.add_run(spec)
        fold, offset = Fold(), 0
        for epoch, acc in [(1, 0.5), (2, 0.9), (3, 0.6)]:
            events.append(paths.events, "epoch", 0.0, {"epoch": epoch, "val_acc": acc})
        offset, _ = index.ingest("r", paths, fold, offset)
        # resumed from the checkpoint of epoch 1: epochs 2 and 3 again, worse
        for epoch, acc in [(2, 0.55), (3, 0.58)]:
            events.append(paths.events, "epoch", 0.0, {"epoch": epoch, "val_acc": acc})
        index.ingest("r", paths, fold, offset)
        row = query.get_run(index, "r")
        assert index.points(row.num, "val_acc", "epoch") == [(1, 0.5), (2, 0.55), (3, 0.58)]
        s = row.summary("val_acc")
        assert (s.count, s.max, s.max_at, s.last) == (3, 0.58, 3, 0.58)
        assert row.best == 0.58 and row.best_at == 3


def test_a_script_run_by_hand_appears_without_reindex(workdir: Path) -> None:
    tmp_path = workdir
    script = tmp_path / "by_hand.py"
    script.write_text(textwrap.dedent('''
        from tuiexp import track
        track.init(params={"lr": 0.01})
        track.log(epoch=1, **{"Accuracy/val": 0.7})
        track.finish()
    '''))
    import subprocess
    import sys

    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True)
    listing = tuiexp(tmp_path, "ls", check=True).stdout
    assert "finished" in listing and "70.0%" in listing and "Accuracy/val" in listing


def test_eta_follows_logged_epoch_times_across_a_resume() -> None:
    """A resumed run's downtime is no training: the ETA is the epochs left at the mean
    logged epoch_time; without epoch_time, the pace of the attempt since it started."""
    from tuiexp.store.index import RunRow
    from tuiexp.store.metrics import KeySummary

    times = KeySummary("epoch_time", "epoch")
    times.extend([1, 2, 3, 4], [10.0, 12.0, 11.0, 11.0])
    row = RunRow(id="r", experiment="x", status="running", epoch=4, epochs=10,
                 started=1000.0, summaries={("epoch_time", "epoch"): times})
    assert query.eta(row, now=1000.0 + 86400) == pytest.approx(6 * 11.0)  # a day down: no matter
    plain = RunRow(id="p", experiment="x", status="running", epoch=4, epochs=10, started=1000.0)
    assert query.eta(plain, now=1040.0) == pytest.approx(60.0)  # 4 epochs in 40 s, 6 left
    fork = RunRow(id="f", experiment="x", status="running", epoch=4, epochs=10, fork_epoch=2,
                  started=1000.0)
    assert query.eta(fork, now=1040.0) == pytest.approx(120.0)  # its own 2 epochs took 40 s
    assert query.eta(RunRow(id="q", experiment="x", status="queued", epochs=10), 0.0) is None
