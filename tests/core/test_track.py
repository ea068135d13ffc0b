import json
import subprocess
import sys
import time

from tuiexp import track
from tuiexp.core import events, runstore
from tuiexp.core.paths import LogsDir
from tuiexp.core.spec import RunSpec


def make_run(tmp_path, **params):
    logs = LogsDir.at(tmp_path / "logs")
    return runstore.create(logs, RunSpec(id="r1", experiment="t", params=params))


def test_log_buffers_then_flushes_in_order(tmp_path):
    paths = make_run(tmp_path, lr=0.1)
    run = track.Run(paths.dir)
    assert run.params == {"lr": 0.1}
    for i in range(1000):
        run.log(step=i, train_loss=1.0 / (i + 1))
    run.log(epoch=1, val_acc=0.5)
    run.flush()
    evs = events.read_all(paths.events)
    assert [e["step"] for e in evs if e["kind"] == "step"] == list(range(1000))
    assert evs[-1]["kind"] == "epoch" and evs[-1]["v"] == events.VERSION
    run.close()


def test_background_flush_makes_events_visible_without_explicit_flush(tmp_path):
    paths = make_run(tmp_path)
    run = track.Run(paths.dir)
    run.log(step=1, train_loss=0.3)
    deadline = time.monotonic() + 5
    while not events.read_all(paths.events) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert events.read_all(paths.events)[0]["train_loss"] == 0.3
    run.close()


SCRIPT = """
import os, signal, sys, time
from tuiexp import track
run = track.init()
track.log(step=1, train_loss=1.0)
if sys.argv[1] == "raise":
    raise RuntimeError("bad batch")
if sys.argv[1] == "term":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
"""


def run_script(paths, mode):
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], env={
        **__import__("os").environ, "TUIEXP_RUN_DIR": str(paths.dir)}, capture_output=True, text=True)


def test_an_exception_is_recorded_as_failed_with_where(tmp_path):
    paths = make_run(tmp_path)
    proc = run_script(paths, "raise")
    assert proc.returncode == 1
    evs = events.read_all(paths.events)
    status = [e for e in evs if e["kind"] == "status"][-1]
    assert status["status"] == "failed" and "RuntimeError: bad batch" in status["message"]
    assert any(e["kind"] == "step" for e in evs)  # flushed before dying


def test_sigterm_is_recorded_as_cancelled(tmp_path):
    paths = make_run(tmp_path)
    proc = run_script(paths, "term")
    assert proc.returncode != 0
    status = [e for e in events.read_all(paths.events) if e["kind"] == "status"][-1]
    assert status["status"] == "cancelled"


def test_standalone_script_creates_its_own_run(tmp_path):
    code = "from tuiexp import track; r = track.init(params={'lr': 0.5}); track.log(epoch=1, val_acc=0.9)"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    (run_dir,) = (tmp_path / "logs" / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["params"] == {"lr": 0.5}
    evs = events.read_all(run_dir / "events.jsonl")
    assert evs[-1]["kind"] == "status" and evs[-1]["status"] == "finished"
