"""Journey: an unmodified argparse script run with `scalars = "stdout"`, from an empty
logs directory, through the real CLI and the real supervisor (issue 18.3).

A user who reads the README writes a script that prints `epoch N name value` lines,
queues it with `tuiexp run X --wait`, and reads `tuiexp ls` and `tuiexp show`. Either
the metrics are there, or the run says, where the user looks, that none was found.
(The dashboard half of this journey lives with the tmux journeys.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config
from tests.journeys.plain_scripts import FIT, QUIET

#: a script that logs steps only (no epoch): `run --wait` must not follow it in silence
STEPS = """
import time
from tuiexp import track
track.init()
for step in range(1, 41):
    track.log(step=step, loss=1.0 / step)
    time.sleep(0.05)
track.finish()
"""

#: a script that opens a run of its own (track.start, meant for several runs in one
#: process) although it was queued: the queued run must say where the metrics went
OWN = """
from tuiexp import track
with track.start(experiment="inner") as run:
    for epoch in range(1, 3):
        run.log(epoch=epoch, val_acc=epoch / 4)
"""

CONFIG = """
[experiments.own]
command = "python own.py"

[experiments.steps]
command = "python steps.py"

[experiments.plain]
command = "python fit.py --lr {lr} --seed {seed} --epochs {epochs}"
scalars = "stdout"
lr = 0.01
seed = 0
epochs = 6

[experiments.quiet]
command = "python quiet.py"
scalars = "stdout"
"""


def _start(workdir: Path) -> None:
    (workdir / "fit.py").write_text(FIT)
    (workdir / "quiet.py").write_text(QUIET)
    (workdir / "steps.py").write_text(STEPS)
    (workdir / "own.py").write_text(OWN)
    write_config(workdir, CONFIG)


def _run_and_wait(workdir: Path, experiment: str) -> str:
    out = tuiexp(workdir, "run", experiment, "--wait", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.split()[0]


def _ls_row(workdir: Path, run_id: str) -> str:
    out = tuiexp(workdir, "ls", check=True).stdout
    (line,) = [x for x in out.splitlines() if x.startswith(run_id)]
    return line


def _json_row(workdir: Path, run_id: str) -> dict:
    rows = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
    (row,) = [r for r in rows if r["id"] == run_id]
    return row


def test_a_plain_script_printing_epoch_lines_shows_its_metrics_in_ls_and_show(workdir):
    _start(workdir)
    run_id = _run_and_wait(workdir, "plain")

    row = _json_row(workdir, run_id)
    metrics = row["metrics"]
    assert set(metrics) == {"train_loss@epoch", "val_acc@epoch"}  # not lr@step, seed@step
    assert metrics["val_acc@epoch"]["count"] == 6
    assert metrics["val_acc@epoch"]["last"] == pytest.approx(0.256)
    assert (row["epoch"], row["metric"], row["best_at"]) == (6, "val_acc", 6)

    line = _ls_row(workdir, run_id)
    assert re.search(r"\b6/6\b", line), line
    assert "25.6%" in line, line  # the best val_acc, as ls writes an accuracy
    assert "warning" not in line.lower()

    show = tuiexp(workdir, "show", run_id, check=True).stdout
    assert re.search(r"^epoch\s+6/6\s+best val_acc 25\.6%", show, re.M), show
    names = [x.split()[0] for x in show.split("METRIC", 1)[1].splitlines()[1:] if x.strip()]
    assert names == ["val_acc", "train_loss"], show
    assert "warning" not in show


def test_a_script_that_prints_no_metric_says_so_in_ls_and_show(workdir):
    _start(workdir)
    run_id = _run_and_wait(workdir, "quiet")

    row = _json_row(workdir, run_id)
    assert row["status"] == "finished" and row["metrics"] == {}
    assert any("metric" in w and "stdout" in w for w in row["warnings"]), row["warnings"]

    line = _ls_row(workdir, run_id)
    assert re.search(r"no metric|warning", line, re.I), line

    show = tuiexp(workdir, "show", run_id, check=True).stdout
    warnings = [x for x in show.splitlines() if x.startswith("warning")]
    assert any("no metric" in w for w in warnings), show
    # the sentence tells the user what a metric line looks like
    assert any(re.search(r"name: value|name=value|epoch N", w) for w in warnings), show


def test_run_wait_on_a_script_that_logs_only_steps_prints_its_steps(workdir):
    _start(workdir)
    out = tuiexp(workdir, "run", "steps", "--wait", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = out.stdout.split()[0]
    steps = re.findall(rf"^{run_id}  step (\d+)  loss=(\S+)$", out.stdout, re.M)
    assert steps, out.stdout
    assert int(steps[-1][0]) == 40 and float(steps[-1][1]) == pytest.approx(1 / 40, rel=1e-3)
    assert out.stdout.rstrip().endswith(f"{run_id}  finished"), out.stdout


def test_a_queued_script_that_opens_its_own_run_says_so_in_the_queued_run(workdir):
    _start(workdir)
    run_id = _run_and_wait(workdir, "own")
    rows = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
    (inner,) = [r for r in rows if r["experiment"] == "inner"]  # found, and finished
    assert inner["status"] == "finished" and inner["metrics"]["val_acc@epoch"]["count"] == 2
    queued = next(r for r in rows if r["id"] == run_id)
    assert queued["status"] == "finished" and queued["metrics"] == {}
    assert any(inner["id"] in w and "track.start()" in w for w in queued["warnings"]), queued
    show = tuiexp(workdir, "show", run_id, check=True).stdout
    assert inner["id"] in show, show
    assert inner["id"] in _ls_row(workdir, run_id)  # not cut off in ls's WARNING column
