"""Shared fixtures: a logs directory with a real supervisor, and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuiexp.queue import daemon
from tuiexp.store import lock
from tuiexp.store.paths import LogsDir

ROOT = Path(__file__).resolve().parent.parent
FAKE_RUN = ROOT / "tests" / "fake_run.py"

os.environ.setdefault("TUIEXP_DAEMON_IDLE", "60")


@pytest.fixture
def workdir(tmp_path: Path):
    """A project folder (experiments.toml + logs/); its supervisor is stopped at the end."""
    yield tmp_path
    logs = LogsDir.at(tmp_path / "logs")
    if lock.is_running(logs):
        daemon.stop(logs)


def write_config(where: Path, body: str) -> Path:
    path = where / "experiments.toml"
    path.write_text(body.replace("FAKE_RUN", str(FAKE_RUN)))
    return path


def tuiexp(where: Path, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in `where`."""
    proc = subprocess.run([sys.executable, "-m", "tuiexp.cli", *args], cwd=where, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"tuiexp {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def show(where: Path, run_id: str) -> dict:
    return json.loads(tuiexp(where, "show", run_id, "--json", check=True).stdout)


def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    """Poll until `predicate()` is truthy; returns its value (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
