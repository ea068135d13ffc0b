"""Issue 10, case by case, with real processes (case 3, the full disk: test_disk_full.py)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config
from tests.faults.harness import deadline_wait, status_of, tuiexp_with_umask
from tuiexp.config.loader import load
from tuiexp.queue import daemon
from tuiexp.queue.client import Client
from tuiexp.store import events, lock
from tuiexp.store.events import TERMINAL
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2

[experiments.huge]
command = "python HUGE_STEP"
"""

# a script that logs well, then has a step of 10**30 in its log (written by hand: the
# tracking API may refuse it), then logs well again
HUGE_STEP = """
import time
from tuiexp import track
from tuiexp.store import events

run = track.init()
track.log(epoch=1, val_acc=0.5)
run.flush()
events.append(run.paths.events, "step", time.time(), {"step": 10**30, "train_loss": 1.0})
track.log(epoch=2, val_acc=0.6)
track.finish()
"""


def setup(workdir: Path) -> LogsDir:
    script = workdir / "huge_step.py"
    script.write_text(HUGE_STEP)
    write_config(workdir, CONFIG.replace("HUGE_STEP", str(script)))
    return LogsDir.at(workdir / "logs")


def enqueue(workdir: Path, *experiments: str) -> list[str]:
    """Queue runs without starting a supervisor (the test starts one when it wants)."""
    cfg = load(workdir / "experiments.toml")
    with Client(LogsDir.at(workdir / "logs"), autostart=False) as client:
        return [client.enqueue(cfg, name)[0] for name in experiments]


def wait_status(logs: LogsDir, run_id: str, statuses: tuple[str, ...], timeout: float = 60) -> str:
    with Index(logs) as index:
        return deadline_wait(lambda: (s := status_of(index, run_id)[0]) in statuses and s,
                             timeout, f"{run_id} in {statuses}")


def script(where: Path, body: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Python script by hand in `where` (a standalone run: logs go to ./logs)."""
    path = where / "script.py"
    path.write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if k != "TUIEXP_RUN_DIR"}
    return subprocess.run([sys.executable, str(path)], cwd=where, text=True, capture_output=True,
                          timeout=120, env=env,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def standalone_events(where: Path) -> list[dict]:
    (run_dir,) = [p for p in (where / "logs" / "runs").iterdir() if not p.name.startswith(".")]
    return events.read_all(run_dir / "events.jsonl")


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- case 1: a step beyond SQLite's INTEGER --------------------------------------------
def run_huge_step(workdir: Path) -> tuple[LogsDir, str, str]:
    logs = setup(workdir)
    huge, quick = enqueue(workdir, "huge", "quick")
    assert daemon.spawn(logs)
    wait_status(logs, quick, ("finished",))
    return logs, huge, quick


def test_case1_a_step_beyond_sqlite_fails_only_its_run_and_the_queue_goes_on(workdir):
    logs, huge, quick = run_huge_step(workdir)
    assert wait_status(logs, huge, TERMINAL) in TERMINAL  # never `running` forever
    time.sleep(0.5)  # five more ticks: the failure is not logged again on each
    mentions = [ln for ln in logs.daemon_log.read_text().splitlines() if huge in ln]
    assert len(mentions) <= 4, mentions


def test_case1_reindex_takes_a_huge_step_and_keeps_the_runs_metrics(workdir):
    logs, huge, _ = run_huge_step(workdir)
    wait_status(logs, huge, TERMINAL)
    daemon.stop(logs)
    out = tuiexp(workdir, "reindex")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    data = json.loads(tuiexp(workdir, "show", huge, "--json", check=True).stdout)
    assert data["status"] == "finished" and data["epoch"] == 2


def test_case1_the_tracking_api_refuses_steps_out_of_range_in_the_caller(tmp_path):
    out = script(tmp_path, """
        from tuiexp import track
        track.init(params={})
        for step in (10**30, 2**63, -1):
            try:
                track.log(step=step, train_loss=1.0)
                print("silent")
            except (TypeError, ValueError):
                print("raised")
        track.finish()
    """)
    assert out.stdout.split() == ["raised"] * 3, out.stdout + out.stderr


# -- case 2: an unserialisable metric ------------------------------------------------
def test_case2_an_unserialisable_value_loses_no_later_event(tmp_path):
    script(tmp_path, """
        import os, signal, time
        from tuiexp import track
        track.init(params={})
        try:
            track.log(step=1, bad={(1, 2): 3})
        except Exception:
            pass
        track.log(step=2, train_loss=1.0)
        time.sleep(1.0)  # five flush intervals, then a SIGKILL before finish()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert 2 in [e.get("step") for e in standalone_events(tmp_path) if e["kind"] == "step"]


# -- case 4: bad run directories -----------------------------------------------------
def plant_bogus(logs: LogsDir) -> Path:
    bogus = logs.ensure().runs / "bogus"
    bogus.mkdir()
    (bogus / "run.json").write_text(json.dumps({"id": "../../etc", "experiment": "x",
                                                "params": {}, "command": ["true"]}))
    return bogus


def test_case4_a_planted_directory_with_an_invalid_id_stalls_nothing(workdir):
    logs = setup(workdir)
    plant_bogus(logs)
    with Index(logs) as index:  # and a row with an invalid id, as older versions made
        index.add_run(RunSpec(id="../x", experiment="x", params={}, command=("true",)))
    (quick,) = enqueue(workdir, "quick")
    assert daemon.spawn(logs)
    wait_status(logs, quick, ("finished",))
    assert wait_status(logs, "../x", ("failed",)) == "failed"
    listed = [r["id"] for r in json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)]
    assert "../../etc" not in listed and quick in listed
    said = [ln for ln in logs.daemon_log.read_text().splitlines() if "bogus" in ln]
    assert len(said) == 1 and "names run '../../etc'" in said[0]
    out = tuiexp(workdir, "doctor")
    assert out.returncode == 1 and "bogus" in out.stdout


def finished_with_a_copy(workdir):
    """A finished run, its supervisor stopped, and `cp -r runs/RID runs/RID-backup`."""
    logs = setup(workdir)
    (quick,) = enqueue(workdir, "quick")
    assert daemon.spawn(logs)
    wait_status(logs, quick, ("finished",))
    daemon.stop(logs)
    shutil.copytree(logs.run(quick).dir, logs.runs / f"{quick}-backup")
    return logs, quick


def test_case4_a_copied_run_directory_is_skipped_by_the_supervisor(workdir):
    logs, quick = finished_with_a_copy(workdir)
    assert daemon.spawn(logs)  # its first tick scans the run directories
    deadline_wait(lambda: f"{quick}-backup" in logs.daemon_log.read_text(), 30, "the copy noted")
    data = json.loads(tuiexp(workdir, "show", quick, "--json", check=True).stdout)
    assert data["status"] == "finished" and data["epoch"] == 2
    out = tuiexp(workdir, "doctor")
    assert out.returncode == 1 and f"{quick}-backup" in out.stdout


def test_case4_reindex_reports_a_copied_directory_and_keeps_the_original(workdir):
    logs, quick = finished_with_a_copy(workdir)
    plant_bogus(logs)
    out = tuiexp(workdir, "reindex")
    assert out.returncode == 0, out.stderr
    assert f"{quick}-backup" in out.stdout + out.stderr and "bogus" in out.stdout + out.stderr
    data = json.loads(tuiexp(workdir, "show", quick, "--json", check=True).stdout)
    assert data["status"] == "finished" and data["epoch"] == 2
    listed = [r["id"] for r in json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)]
    assert listed == [quick]


# -- case 5: NaN in an export ---------------------------------------------------------
def test_case5_export_json_takes_nan_and_inf(tmp_path):
    for lr in ("float('nan')", "0.1"):  # a param that varies is a column of the table
        script(tmp_path, f"""
            from tuiexp import track
            track.init(params={{"lr": {lr}}})
            track.log(epoch=1, val_acc=float("nan"), val_loss=float("inf"))
            track.finish()
        """)
    for args in ((), ("--no-group",)):
        out = tuiexp(tmp_path, "export", "--format", "json", *args)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        assert sum(len(r["members"]) for r in json.loads(out.stdout)["rows"]) == 2


# -- case 6: what `check` lets through ------------------------------------------------
CHECK_CASES = {
    "experiment name escaping": '[experiments."../../etc"]\ncommand = "python x.py"\n',
    "experiment name with a slash": '[experiments."a/b"]\ncommand = "python x.py"\n',
    "missing script": '[experiments.a]\ncommand = "python no_such_script.py"\n',
    "missing cwd": '[experiments.a]\ncommand = "python x.py"\ncwd = "/no/such/dir"\n',
    "nan lr": "[experiments.a]\nlr = nan\n",
    "gpu the machine lacks": "[queue]\ngpus = [99]\n[experiments.a]\nepochs = 1\n",
    "empty file": "",
    "duplicate seeds": "[experiments.a]\nseeds = [1, 1]\n",
    "imagefolder without a path": '[experiments.a]\ndataset = "imagefolder"\n',
    "negative log_uniform bound":
        "[experiments.a]\nrandom = { trials = 2, seed = 0, lr = { log_uniform = [-0.01, 0.5] } }\n",
}


@pytest.mark.parametrize("case", sorted(CHECK_CASES))
def test_case6_check_refuses_with_file_and_line(tmp_path, case):
    (tmp_path / "x.py").write_text("")
    (tmp_path / "e.toml").write_text(CHECK_CASES[case])
    out = tuiexp(tmp_path, "check", "e.toml")
    assert out.returncode == 2 and "e.toml" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert case == "empty file" or "line" in out.stderr, out.stderr


def test_case6_check_reads_a_file_with_a_utf8_bom(tmp_path):
    (tmp_path / "e.toml").write_bytes(b"\xef\xbb\xbf[experiments.a]\nepochs = 1\n")
    out = tuiexp(tmp_path, "check", "e.toml")
    assert out.returncode == 0, out.stderr


# -- case 7: finish() is final ------------------------------------------------------
def test_case7_finish_is_final(tmp_path):
    out = script(tmp_path, """
        import warnings
        from tuiexp import track
        warnings.simplefilter("error")
        track.init(params={})
        track.log(epoch=1, val_acc=0.5)
        track.finish()
        calls = [("log", lambda: track.log(epoch=2, val_acc=0.9)),
                 ("finish", lambda: track.finish("failed")),
                 ("init", lambda: track.init(run_dir="elsewhere"))]
        for name, call in calls:
            try:
                call()
                print(name, "silent")
            except Exception:
                print(name, "raised")
    """)
    assert out.stdout.split() == ["log", "raised", "finish", "raised", "init", "raised"], out.stdout
    evs = standalone_events(tmp_path)
    kinds = [e["kind"] for e in evs]
    assert kinds[-1] == "status" and [e["epoch"] for e in evs if e["kind"] == "epoch"] == [1]
    other = tmp_path / "other"
    other.mkdir()
    script(other, """
        from tuiexp import track
        try:
            track.init(params={"f": object()})
        except Exception:
            pass
    """)
    assert not list((other / "logs" / "runs").glob(".new-*"))


# -- case 8: a checkpoint write killed midway ---------------------------------------------
def plant_checkpoint_temp(run_dir: Path) -> Path:
    tmp = run_dir / "ckpt" / f".epoch-0001.pt.{dead_pid()}.tmp"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_bytes(b"half a checkpoint")
    return tmp


def test_case8_doctor_fix_removes_the_temp_file_of_a_dead_checkpoint_writer(workdir):
    logs = setup(workdir)
    (quick,) = enqueue(workdir, "quick")
    assert daemon.spawn(logs)
    wait_status(logs, quick, ("finished",))
    tmp = plant_checkpoint_temp(logs.run(quick).dir)
    out = tuiexp(workdir, "doctor")
    assert out.returncode == 1 and tmp.name in out.stdout
    out = tuiexp(workdir, "doctor", "--fix")
    assert out.returncode == 0 and not tmp.exists(), out.stdout


def test_case8_resume_removes_the_temp_file_of_a_dead_checkpoint_writer(tmp_path):
    script(tmp_path, "from tuiexp import track\ntrack.init(params={})\ntrack.finish()\n")
    (run_dir,) = [p for p in (tmp_path / "logs" / "runs").iterdir() if not p.name.startswith(".")]
    tmp = plant_checkpoint_temp(run_dir)
    script(tmp_path, f"""
        from tuiexp import track
        track.init(run_dir={str(run_dir)!r})
        track.load_checkpoint()
        track.finish()
    """)
    assert not tmp.exists()


# -- case 9: reading commands wake a supervisor that died --------------------------------
@pytest.mark.parametrize("command", ["ls", "show"])
def test_case9_ls_and_show_start_a_dead_supervisor_when_runs_wait(workdir, command):
    logs = setup(workdir)
    (quick,) = enqueue(workdir, "quick")
    assert not lock.is_running(logs)
    args = ("show", quick) if command == "show" else ("ls",)
    assert tuiexp(workdir, *args).returncode == 0
    assert wait_status(logs, quick, ("finished",)) == "finished"


def test_case9_ls_does_not_start_a_supervisor_for_an_empty_queue(workdir):
    logs = setup(workdir)
    assert tuiexp(workdir, "ls").returncode == 0
    assert not lock.is_running(logs)


# -- case 10: a standalone script that exits non-zero ---------------------------------------
def test_case10_a_standalone_script_exiting_1_is_failed(tmp_path):
    script(tmp_path, """
        import sys
        from tuiexp import track
        track.init(params={})
        track.log(epoch=1, val_acc=0.5)
        sys.exit(1)
    """)
    statuses = [e["status"] for e in standalone_events(tmp_path) if e["kind"] == "status"]
    assert statuses[-1] == "failed"


# -- case 11: one file-mode policy -----------------------------------------------------
CORE_FILES = ("run.json", "queue.json", "proc.json", "exit.json")


def test_case11_files_follow_the_umask(workdir):
    logs = setup(workdir)
    out = tuiexp_with_umask(workdir, 0o002, "run", "quick", "--wait")
    assert out.returncode == 0, out.stderr
    (run_dir,) = logs.runs.iterdir()
    for name in CORE_FILES:
        assert mode(run_dir / name) == 0o664, name
    for path in (logs.index, logs.root / "index.sqlite-wal", logs.daemon_info, logs.daemon_lock):
        assert mode(path) == 0o664, path.name
    assert mode(run_dir) == mode(run_dir / "ckpt") == 0o775
    daemon.stop(logs)
    out = tuiexp_with_umask(workdir, 0o077, "run", "quick", "--wait")
    newest = max(logs.runs.iterdir(), key=lambda p: p.stat().st_mtime)
    assert out.returncode == 0 and mode(newest / "run.json") == 0o600


def test_case11_a_setgid_logs_directory_is_shared_with_its_group(workdir):
    logs = setup(workdir)
    logs.root.mkdir()
    os.chmod(logs.root, 0o2775)
    out = tuiexp_with_umask(workdir, 0o022, "run", "quick", "--wait")
    assert out.returncode == 0, out.stderr
    (run_dir,) = logs.runs.iterdir()
    for name in CORE_FILES:
        assert mode(run_dir / name) == 0o664, name
    assert mode(logs.index) == 0o664
    assert mode(run_dir) & 0o2775 == 0o2775  # group-writable, and setgid inherited


def test_case11_the_event_log_follows_the_umask(tmp_path):
    script(tmp_path, "from tuiexp import track\ntrack.init(params={})\ntrack.finish()\n",
           umask=0o002)
    (run_dir,) = [p for p in (tmp_path / "logs" / "runs").iterdir() if not p.name.startswith(".")]
    assert mode(run_dir / "events.jsonl") == 0o664


# -- tuiexp doctor -------------------------------------------------------------------------
def test_doctor_reports_one_line_per_finding_and_fixes_what_is_safe(workdir):
    logs = setup(workdir)
    done, gone = enqueue(workdir, "quick", "quick")
    assert daemon.spawn(logs)
    wait_status(logs, gone, ("finished",))
    daemon.stop(logs)
    shutil.rmtree(logs.run(gone).dir)  # an index row whose directory is gone
    with Index(logs) as index:
        index.delete(done)  # a run directory the index lacks
    (waiting,) = enqueue(workdir, "quick")  # a queue without a supervisor
    staging = logs.runs / f".new-x-{dead_pid()}"  # a half-made run of a dead client
    staging.mkdir()
    os.utime(staging, (time.time() - 120, time.time() - 120))
    tmp = plant_checkpoint_temp(logs.run(done).dir)

    out = tuiexp(workdir, "doctor")
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    for needle in (f"run {done} is not", gone, staging.name, tmp.name, "supervisor", "free"):
        assert sum(needle in ln for ln in lines) == 1, (needle, out.stdout)
    assert lines[-1] == "5 problems (5 repairable with `tuiexp doctor --fix`)."

    out = tuiexp(workdir, "doctor", "--fix")
    assert out.returncode == 0, out.stdout
    assert not staging.exists() and not tmp.exists()
    assert wait_status(logs, waiting, ("finished",)) == "finished"
    assert wait_status(logs, done, ("finished",)) == "finished"
    out = tuiexp(workdir, "doctor")
    assert out.returncode == 0 and out.stdout.splitlines()[-1] == "no problems found."
