"""Runs a process opens itself: track.start, standalone runs, params from the script, exit codes."""

import json
import os
import subprocess
import sys

import pytest

from tuiexp.store import events, runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


def script(where, code, *args, env=None):
    """Run `code` as a script file in `where` (no TUIEXP_RUN_DIR: by hand)."""
    path = where / "train.py"
    path.write_text(code)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TUIEXP_")}
    return subprocess.run([sys.executable, str(path), *args], cwd=where, capture_output=True,
                          text=True, env={**base, **(env or {})}, timeout=60)


def runs_in(logs_root):
    runs = logs_root / "runs"
    out = []
    for d in sorted(runs.iterdir()) if runs.exists() else []:
        spec = json.loads((d / "run.json").read_text())
        out.append((spec, events.read_all(d / "events.jsonl"), d))
    return sorted(out, key=lambda r: r[0]["created"])


def status_of(evs):
    return [e for e in evs if e["kind"] == "status"][-1]


START = """
from tuiexp import track
for lr in (0.1, 0.01):
    with track.start(experiment="sweep", params={"lr": lr}, metric="val/acc", mode="max") as run:
        for epoch in (1, 2):
            track.log({"val/acc": lr * epoch}, epoch=epoch)
try:
    with track.start(experiment="sweep", params={"lr": 1.0}) as run:
        run.log(epoch=1, loss=1.0)
        raise ValueError("lr too high")
except ValueError:
    pass
print("done")
"""


def test_start_opens_one_run_after_another_and_the_block_ends_each(tmp_path):
    proc = script(tmp_path, START)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    runs = runs_in(tmp_path / "logs")
    assert [r[0]["params"] for r in runs] == [{"lr": 0.1}, {"lr": 0.01}, {"lr": 1.0}]
    assert [(r[0]["metric"], r[0]["mode"]) for r in runs] == [("val/acc", "max")] * 2 + [(None, None)]
    assert [status_of(r[1])["status"] for r in runs] == ["finished", "finished", "failed"]
    assert "ValueError: lr too high" in status_of(runs[2][1])["message"]
    assert [e["val/acc"] for e in runs[1][1] if e["kind"] == "epoch"] == [0.01, 0.02]
    derived = [runstore.derive_status(runstore.RunPaths(d), status_of(evs)).status
               for _, evs, d in runs]  # what the supervisor and ls will show
    assert derived == ["finished", "finished", "failed"]


def test_logs_argument_and_env_choose_where_standalone_runs_go(tmp_path):
    code = ("from tuiexp import track\n"
            "with track.start(experiment='a', logs='elsewhere'): pass\n"
            "track.init(experiment='b').log(epoch=1, x=1.0)\n")
    assert script(tmp_path, code, env={"TUIEXP_LOGS": str(tmp_path / "envlogs")}).returncode == 0
    assert [r[0]["experiment"] for r in runs_in(tmp_path / "elsewhere")] == ["a"]
    ((spec, evs, _),) = runs_in(tmp_path / "envlogs")
    assert spec["experiment"] == "b" and status_of(evs)["status"] == "finished"


@pytest.mark.parametrize("ending, code, how", [
    ("import sys; sys.exit(1)", 1, "sys.exit"),
    ("exit(4)", 4, "exit()"),
    ("import argparse; argparse.ArgumentParser().parse_args(['--nope'])", 2, "sys.exit"),
    ("import sys; sys.exit('fatal: no data')", 1, "sys.exit"),
])
def test_a_standalone_script_exiting_non_zero_is_failed(tmp_path, ending, code, how):
    proc = script(tmp_path, f"from tuiexp import track\ntrack.init()\n{ending}\n")
    assert proc.returncode == code
    ((_, evs, _),) = runs_in(tmp_path / "logs")
    assert status_of(evs) | {"t": 0} == {"v": 1, "t": 0, "kind": "status", "status": "failed",
                                         "message": f"exited with code {code} ({how})"}


@pytest.mark.parametrize("ending", ["", "import sys; sys.exit(0)", "import sys; sys.exit()"])
def test_a_standalone_script_exiting_zero_is_finished(tmp_path, ending):
    assert script(tmp_path, f"from tuiexp import track\ntrack.init()\n{ending}\n").returncode == 0
    ((_, evs, _),) = runs_in(tmp_path / "logs")
    assert status_of(evs)["status"] == "finished"


@pytest.mark.parametrize("code, status", [(0, "finished"), (5, "failed")])
def test_sys_exit_inside_a_start_block_ends_that_run_by_its_code(tmp_path, code, status):
    body = f"from tuiexp import track\nwith track.start(experiment='x'):\n    raise SystemExit({code})\n"
    assert script(tmp_path, body).returncode == code
    ((_, evs, _),) = runs_in(tmp_path / "logs")
    assert status_of(evs)["status"] == status


@pytest.mark.parametrize("call, error", [
    ("track.init(params={'lr': 0.1, 'fn': print})", "TypeError: params: 'fn'"),
    ("track.init(params={'lr': 0.1}, config=5)", "TypeError: config must be"),
    ("track.start(experiment='a/b')", "is not a valid experiment name"),
    ("track.start(metric='val acc')", "ValueError: metric name 'val acc'"),
    ("track.start(mode='best')", "ValueError: mode must be"),
])
def test_bad_arguments_raise_and_leave_no_directory_behind(tmp_path, call, error):
    proc = script(tmp_path, f"from tuiexp import track\n{call}\n")
    assert proc.returncode == 1 and error in proc.stderr
    assert not (tmp_path / "logs" / "runs").exists() or not list((tmp_path / "logs" / "runs").iterdir())


CONFIG = """
import argparse
from tuiexp import track
ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float, default=0.1)
ap.add_argument("--batch-size", type=int, default=64)
ap.add_argument("--layers", type=int, nargs="+", default=[2, 2])
args = ap.parse_args()
run = track.init(config=vars(args))
print(run.params)
"""


def test_config_records_what_the_script_used_and_warns_on_a_contradiction(tmp_path):
    paths = runstore.create(LogsDir.at(tmp_path / "logs"), RunSpec(
        id="r1", experiment="t", params={"lr": 0.5, "batch_size": 64, "layers": [2, 2]}))
    (tmp_path / "train.py").write_text(CONFIG)
    env = {**os.environ, "TUIEXP_RUN_DIR": str(paths.dir)}
    proc = subprocess.run([sys.executable, "train.py", "--batch-size", "64"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    evs = events.read_all(paths.events)
    (params,) = [e for e in evs if e["kind"] == "params"]
    assert params["params"] == {"lr": 0.1, "batch_size": 64, "layers": [2, 2]}
    (warning,) = [e for e in evs if e["kind"] == "warning"]
    assert warning["message"] == "param 'lr': the spec says 0.5 but the script used 0.1"
    assert proc.stderr.count("\n") == 1 and "'lr'" in proc.stderr and "0.5" in proc.stderr
    assert "'lr': 0.1" in proc.stdout  # run.params: what the script used wins


def test_a_standalone_run_takes_its_params_from_config(tmp_path):
    assert script(tmp_path, CONFIG, "--lr", "0.3").returncode == 0
    ((spec, evs, _),) = runs_in(tmp_path / "logs")
    assert spec["params"] == {"lr": 0.3, "batch_size": 64, "layers": [2, 2]}
    assert not [e for e in evs if e["kind"] == "warning"]
