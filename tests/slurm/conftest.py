"""Tests against a real one-node Slurm (scripts/slurm-up.sh starts it; .ci/run does).

Every test here is marked `slurm` and skipped, with the reason, when no Slurm answers.
Jobs inherit this process's environment (sbatch's default --export=ALL), so the
worktree's tuiexp is the one the jobs run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAKE_RUN, wait_for  # noqa: F401 - re-exported for the tests
from tests.trainer.conftest import tiny_toml
from tuiexp.queue import daemon
from tuiexp.store import lock
from tuiexp.store.paths import LogsDir

KILL_WAIT = 5  # scripts/slurm-up.sh sets KillWait=5


def _slurm_reason() -> str | None:
    """Why Slurm cannot be used here, or None when a node is idle and answers."""
    if shutil.which("sbatch") is None:
        return "no `sbatch` on PATH (run scripts/slurm-up.sh as root first)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo did not answer ({e})"
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        return f"no usable Slurm node (sinfo: {(out.stdout + out.stderr).strip()[:200]})"
    return None


REASON = _slurm_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slurm)
            if REASON:
                item.add_marker(pytest.mark.skip(reason=f"Slurm not available: {REASON}"))


@pytest.fixture(autouse=True)
def _squeue_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the supervisor sees jobs through squeue alone; the accounting test
    turns sacct on (TUIEXP_SLURM_ACCOUNTING=auto)."""
    monkeypatch.setenv("TUIEXP_SLURM_ACCOUNTING", "off")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def project(tmp_path: Path):
    """A project folder whose Slurm jobs and supervisor are gone after the test."""
    yield tmp_path
    logs = LogsDir.at(tmp_path / "logs")
    if lock.is_running(logs):
        daemon.stop(logs)
    ids = [str(p["job_id"]) for p in procs(tmp_path) if p.get("job_id")]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def procs(project: Path) -> list[dict]:
    out = []
    for f in sorted((project / "logs" / "runs").glob("*/proc.json")):
        out.append(json.loads(f.read_text()))
    return out


def cli(where: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuiexp.cli", *args], cwd=where, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})


def ok(where: Path, *args: str) -> str:
    proc = cli(where, *args)
    assert proc.returncode == 0, f"tuiexp {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def show(where: Path, run_id: str) -> dict:
    return json.loads(ok(where, "show", run_id, "--json"))


def run_dir(where: Path, run_id: str) -> Path:
    return where / "logs" / "runs" / run_id


def job_id(where: Path, run_id: str) -> str:
    """The Slurm job id of a run's current attempt (waits for the submission)."""
    path = run_dir(where, run_id) / "proc.json"
    wait_for(lambda: path.exists() and json.loads(path.read_text()).get("job_id"), timeout=60)
    return str(json.loads(path.read_text())["job_id"])


def job_state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"], capture_output=True,
                         text=True, timeout=30)
    return out.stdout.strip()


def status(where: Path, run_id: str) -> str:
    return show(where, run_id)["status"]


def config(where: Path, body: str) -> Path:
    """experiments.toml for the Slurm executor; FAKE_RUN names the fake run script."""
    path = where / "experiments.toml"
    path.write_text(body.replace("FAKE_RUN", str(FAKE_RUN)))
    return path


#: The trainer tests' tiny params as TOML, less `epochs` (each test sets its own).
TINY_TOML = tiny_toml(drop=("epochs",))
