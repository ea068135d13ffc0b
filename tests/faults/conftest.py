"""Fixtures of the fault suite: a tiny filesystem to fill up."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tuiexp.queue import daemon
from tuiexp.store import lock
from tuiexp.store.paths import LogsDir


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MB tmpfs (skipped with the reason where this process may not mount one)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a disk-full test mounts a 3 MB tmpfs, which needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip() or out.returncode}")
    try:
        yield mnt
    finally:
        logs = LogsDir.at(mnt / "logs")
        if lock.is_running(logs):
            daemon.stop(logs)
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
