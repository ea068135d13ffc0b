"""The one-supervisor lock of a logs directory: an `flock` on `daemon.lock`, held for the
supervisor's life. Readers ask it whether a supervisor runs (and so whether a "running"
row may be stale); the supervisor (tuiexp/queue/daemon.py) takes it."""

from __future__ import annotations

import fcntl
import os
from typing import Any

from . import runstore
from .paths import LogsDir


def try_lock(logs: LogsDir) -> int | None:
    """Take the one-supervisor lock; the fd keeps it (None if another holds it)."""
    logs.ensure()
    fd = os.open(logs.daemon_lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_running(logs: LogsDir) -> bool:
    if not logs.daemon_lock.exists():
        return False
    fd = try_lock(logs)
    if fd is None:
        return True
    os.close(fd)
    return False


def info(logs: LogsDir) -> dict[str, Any] | None:
    """The running supervisor's daemon.json (pid, started); None when none runs. Where a
    full disk kept it from writing that file, the pid comes from the kernel's lock table."""
    if not is_running(logs):
        return None
    data = runstore.read_json(logs.daemon_info)
    if data is None and (pid := lock_holder(logs)) is not None:
        data = {"pid": pid}
    return data


def lock_holder(logs: LogsDir) -> int | None:
    """The pid holding `daemon.lock`, from /proc/locks (Linux); None where unknown."""
    try:
        st = os.stat(logs.daemon_lock)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == want:
            return int(fields[4])
    return None
