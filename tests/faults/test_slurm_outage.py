"""Issue 19, case 4: a Slurm controller outage is not a refusal.

Against the real one-node Slurm that scripts/slurm-up.sh starts (skipped, with the
reason, without one, or when this process may not stop and start its daemons):
slurmctld is stopped, a run is queued (sbatch cannot reach the controller: after
~9 s it gives up with "Unable to contact slurm controller (connect failure)"), and
slurmctld is started again exactly as the script starts it. The run must wait and
then run, never end `failed`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from tests.faults.outside import (
    TERMINAL,
    alive,
    cli,
    ok,
    queue,
    read_json,
    row,
    run_dir,
    until,
    wait_status,
)

SLURM = Path(os.environ.get("TUIEXP_SLURM_DIR", "/tmp/tuiexp-slurm"))
CONTROLLER_PID = SLURM / "run" / "slurmctld.pid"


def _reason() -> str | None:
    """Why the controller cannot be stopped and started here; None when it can."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        return "no Slurm here (scripts/slurm-up.sh starts one)"
    if os.geteuid() != 0:
        return "stopping slurmctld needs root"
    if not CONTROLLER_PID.exists() or not (SLURM / "slurm.conf").exists():
        return f"no slurmctld started by scripts/slurm-up.sh under {SLURM}"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo did not answer ({e})"
    if not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in out.stdout.split()):
        return f"no usable Slurm node (sinfo: {(out.stdout + out.stderr).strip()[:200]})"
    return None


pytestmark = [pytest.mark.slurm, pytest.mark.skipif(bool(_reason()), reason=str(_reason()))]


def start_controller() -> None:
    """slurmctld again, exactly as it was started: scripts/slurm-up.sh, with
    --accounting when the running configuration has accounting (the script rewrites the
    configuration and restarts every daemon if the flag differed)."""
    accounting = "accounting_storage/slurmdbd" in (SLURM / "slurm.conf").read_text()
    subprocess.run([str(ROOT / "scripts" / "slurm-up.sh"), *(["--accounting"] if accounting else [])],
                   check=True, capture_output=True, timeout=120)


@contextmanager
def controller_down() -> Iterator[None]:
    pid = int(CONTROLLER_PID.read_text())
    os.kill(pid, signal.SIGTERM)
    until(lambda: not alive(pid), "slurmctld stopped", timeout=30)
    try:
        yield
    finally:
        start_controller()


CONFIG = """
[queue]
executor = "slurm"
[queue.slurm]
cpus_per_task = 1

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2
"""


@pytest.fixture
def jobs(workdir: Path):
    """Cancels whatever Slurm jobs the test's runs left."""
    yield
    ids = [str(p["job_id"]) for f in (workdir / "logs" / "runs").glob("*/proc.json")
           if (p := json.loads(f.read_text())).get("job_id")]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


@pytest.mark.slow
def test_case4_a_run_queued_during_a_controller_outage_runs_after_it(workdir, jobs, monkeypatch):
    monkeypatch.setenv("TUIEXP_SLURM_ACCOUNTING", "off")  # squeue only; scontrol is down too
    write_config(workdir, CONFIG)
    logs = workdir / "logs"
    with controller_down():
        rid = queue(workdir, "quick")
        # sbatch tries, and gives up after ~9 s: the run must wait for the controller
        seen = until(lambda: (r := row(workdir, rid)) and (
            r["status"] in TERMINAL or "unreachable" in (r.get("message") or "")) and r,
            "sbatch's attempt answered", timeout=60)
        assert seen["status"] in ("queued", "starting"), \
            f"an outage failed the run: {seen['status']}: {seen.get('message')}"
    wait_status(workdir, rid, TERMINAL, timeout=120)
    assert row(workdir, rid)["status"] == "finished"
    assert (read_json(run_dir(logs, rid) / "proc.json") or {}).get("job_id")


@pytest.mark.slow
def test_case4_a_job_submitted_just_before_the_supervisor_died_is_found_not_submitted_again(
        workdir, jobs, monkeypatch):
    """The supervisor dies right after sbatch answered, before the run directory names the
    job; the next supervisor goes on with the submission and finds the job by its name."""
    monkeypatch.setenv("TUIEXP_SLURM_ACCOUNTING", "off")
    write_config(workdir, CONFIG)
    logs = workdir / "logs"
    monkeypatch.setenv("TUIEXP_FAULT", "slurm.submitted")
    started = cli(workdir, "run", "quick")  # the supervisor it starts dies after sbatch
    monkeypatch.delenv("TUIEXP_FAULT")
    # (it may die before `run` saw it hold its lock: "the supervisor did not start")
    assert started.returncode == 0 or "did not start" in started.stderr, started.stderr
    (rid,) = [d.name for d in (logs / "runs").iterdir() if not d.name.startswith(".")]
    pid = until(lambda: (read_json(logs / "daemon.json") or {}).get("pid"), "the supervisor's pid")
    until(lambda: not alive(pid), "the supervisor dead after sbatch", timeout=60)
    assert not (read_json(run_dir(logs, rid) / "proc.json") or {}).get("job_id")
    ok(workdir, "daemon", "start")
    wait_status(workdir, rid, TERMINAL, timeout=120)
    assert row(workdir, rid)["status"] == "finished"
    named = subprocess.run(["squeue", "-h", "-t", "all", f"--name=tuiexp-{rid}-a1", "-o", "%i"],
                           capture_output=True, text=True, timeout=30).stdout.split()
    assert len(named) == 1, f"jobs submitted for attempt 1: {named}"
    assert (read_json(run_dir(logs, rid) / "proc.json") or {}).get("job_id") == named[0]
