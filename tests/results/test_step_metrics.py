"""Step-level metrics in every view (issue 18.7): a script that logs only steps (the
`SummaryWriter` drop-in, as most TensorBoard scripts do) can be plotted, shows its
progress in steps rather than `0/5` epochs, and an export does not call a step an epoch.
Through the real CLI on a run the real supervisor ran."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config

#: a TensorBoard script with one changed import: 50 steps, val accuracy every 10
TB_SCRIPT = """
import math
from tuiexp.track import SummaryWriter
writer = SummaryWriter()
step = 0
for epoch in range(5):
    for batch in range(10):
        step += 1
        writer.add_scalar("Loss/train", 2.0 * math.exp(-step / 20), step)
    writer.add_scalar("Accuracy/val", 0.5 + 0.08 * epoch, step)
writer.close()
"""

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, str]:
    """A project whose one run logged 50 steps (and `epochs = 5` as a param, as a user's
    script that takes --epochs would have)."""
    where = tmp_path_factory.mktemp("steps")
    (where / "tb_script.py").write_text(TB_SCRIPT)
    write_config(where, '[experiments.tbw]\ncommand = "python tb_script.py"\nepochs = 5\n'
                 "lr = 0.1\n")
    try:
        out = tuiexp(where, "run", "tbw", "--wait", timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        yield where, out.stdout.split()[0]
    finally:
        tuiexp(where, "daemon", "stop")


def test_the_run_logged_steps_only(project):
    """The premise: 50 steps of Loss/train, 5 of Accuracy/val, no epoch."""
    where, run_id = project
    show = tuiexp(where, "show", run_id, check=True).stdout
    assert re.search(r"^Loss/train\s+step\s+.*\s50$", show, re.M), show
    assert re.search(r"^Accuracy/val\s+step\s+.*\s5$", show, re.M), show
    assert not re.search(r"^\S+\s+epoch\s", show.split("METRIC", 1)[1], re.M)


def test_plot_curves_draws_a_step_level_metric_by_step(project):
    where, _ = project
    out = tuiexp(where, "plot", "curves", "--metric", "Loss/train", "-o", "loss.png")
    assert out.returncode == 0, out.stderr
    assert (where / "loss.png").read_bytes().startswith(PNG)
    glob = tuiexp(where, "plot", "curves", "--metric", "Loss/*", "-o", "glob.png")
    assert glob.returncode == 0, glob.stderr


def test_plot_curves_takes_x_step_or_epoch(project):
    where, _ = project
    out = tuiexp(where, "plot", "curves", "--x", "step", "--metric", "Accuracy/val",
                 "-o", "acc.png")
    assert out.returncode == 0, out.stderr
    assert (where / "acc.png").read_bytes().startswith(PNG)
    # asked per epoch, a metric logged per step only: one sentence that says so
    out = tuiexp(where, "plot", "curves", "--x", "epoch", "--metric", "Accuracy/val",
                 "-o", "none.png")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "--x step" in out.stderr, out.stderr
    assert not (where / "none.png").exists()


def test_plot_curves_default_for_runs_that_log_steps(project):
    where, _ = project
    out = tuiexp(where, "plot", "curves", "-o", "default.png")
    assert out.returncode == 0, out.stderr
    assert (where / "default.png").read_bytes().startswith(PNG)


def test_progress_of_a_step_only_run_is_its_steps_not_0_of_epochs(project):
    where, run_id = project
    (line,) = [x for x in tuiexp(where, "ls", check=True).stdout.splitlines()
               if x.startswith(run_id)]
    rest = line[len(run_id):]
    assert not re.search(r"\b0/5\b", rest), line
    assert re.search(r"\b50\b", rest), line  # its last step
    show = tuiexp(where, "show", run_id, check=True).stdout
    assert not re.search(r"\b0/5\b", show), show


def test_export_does_not_call_a_step_an_epoch(project):
    where, _ = project
    md = tuiexp(where, "export", "--format", "md", check=True).stdout
    header = md.splitlines()[0]
    assert "best epoch" not in header and "best step" in header, header
    rows = list(csv.reader(io.StringIO(tuiexp(where, "export", "--format", "csv",
                                              check=True).stdout)))
    for name, value in zip(rows[0], rows[1], strict=True):
        if value == "50":
            assert "epoch" not in name, (name, rows)


def test_a_long_step_series_is_averaged_over_windows_every_run_shares(tmp_path):
    """Curves of 5,000 and 3,000 steps: at most MAX_CURVE_POINTS points each, the means
    of windows of a power-of-two number of steps, at the same x for both runs (so seeds
    still average point by point)."""
    from tuiexp.store import events, query, runstore
    from tuiexp.store.index import Index
    from tuiexp.store.paths import LogsDir
    from tuiexp.store.spec import RunSpec

    logs = LogsDir.at(tmp_path / "logs")
    for i, steps in enumerate((5000, 3000)):
        paths = runstore.create(logs, RunSpec(id=f"r{i}", experiment="x", params={}, seed=i))
        events.append(paths.events, "start", 1.0, {"attempt": 1})
        for step in range(1, steps + 1):
            events.append(paths.events, "step", 1.0, {"step": step, "loss": float(step)})
        events.append(paths.events, "status", 2.0, {"status": "finished", "message": ""})
    with Index(logs) as index:
        index.rebuild()
        rows = query.load_runs(index)
        assert query.series_scopes(rows, ["loss"]) == {"loss": "step"}
        query.attach_curves(index, rows, ["loss"])
    long, short = (r.curves["loss"] for r in sorted(rows, key=lambda r: r.id))
    assert len(long) <= query.MAX_CURVE_POINTS < 5000
    width = long[1][0] - long[0][0]
    assert width == 4  # 5,000 steps in at most 2,000 windows
    assert long[:3] == [(0, 2.0), (4, 5.5), (8, 9.5)]  # steps 1-3, 4-7, 8-11: their means
    assert short[:len(short) - 1] == long[:len(short) - 1]  # the same windows, where both ran
