"""The index is a cache of the run directories: how its failures are told apart, and what
is done when it is damaged, deleted or replaced.

Failures are classified by SQLite's error code (or the errno), never by the words of a
message: "database disk image is malformed" is a damaged file, not a full disk. A damaged
index is moved aside (`index.sqlite.corrupt-<UTC time>`, its WAL with it) and a fresh one
is rebuilt from the run directories; whoever opens the index next does the rebuilding.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .paths import LogsDir

log = logging.getLogger("tuiexp.index")

# SQLite's primary result codes (https://sqlite.org/rescode.html); Python 3.10 lacks the names
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_KINDS = {_CORRUPT: "corrupt", _NOTADB: "corrupt", _FULL: "full", _IOERR: "io", _BUSY: "busy",
          _LOCKED: "busy", _READONLY: "readonly", _CANTOPEN: "cantopen"}
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)

SUFFIXES = ("", "-wal", "-shm")


def kind(e: BaseException) -> str | None:
    """What a storage failure is: "corrupt", "full", "io", "busy", "readonly", "cantopen",
    or None (anything else), from SQLite's error code or the OS's errno."""
    if isinstance(e, OSError):
        if e.errno in _FULL_ERRNOS:
            return "full"
        return "io" if e.errno == errno.EIO else None
    if not isinstance(e, sqlite3.Error):
        return None
    code = getattr(e, "sqlite_errorcode", None)
    if code is None:  # Python 3.10: the exception class follows the code; these two are
        return "corrupt" if type(e) is sqlite3.DatabaseError else None  # CORRUPT, NOTADB
    return _KINDS.get(code & 0xFF)


def corrupt(e: BaseException) -> bool:
    return kind(e) == "corrupt"


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file; None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def quick_check(path: Path) -> str | None:
    """Why the index file is damaged (SQLite's `PRAGMA quick_check`), or None if it is
    sound or missing. Reads every page: seconds for a big index, so only doctor, reindex
    and a failure already seen call it."""
    if not path.exists():
        return None
    try:
        with _connection(path) as db:
            rows = [r[0] for r in db.execute("PRAGMA quick_check")]
    except sqlite3.Error as e:
        if corrupt(e):
            return str(e)
        raise
    if rows == ["ok"]:
        return None
    return "; ".join(rows[:3]) + (f" (and {len(rows) - 3} more)" if len(rows) > 3 else "")


@contextmanager
def _connection(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path, timeout=30)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def index_lock(logs: LogsDir) -> Iterator[None]:
    """One process at a time moves the index aside (the others then find it sound)."""
    fd = os.open(logs.index_lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def quarantine(logs: LogsDir, why: str) -> Path | None:
    """Move a damaged index aside, saying so in one sentence (a warning of the
    `tuiexp.index` logger: stderr for a command, daemon.log for the supervisor); the path
    it went to, or None when the file there now is sound (another process moved the
    damaged one first, or there is none). The next open makes a fresh index and
    rebuilds it from the run directories."""
    with index_lock(logs):
        if quick_check(logs.index) is None:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = logs.root / f"{logs.index.name}.corrupt-{stamp}"
        n = 1
        while target.exists():
            n += 1
            target = logs.root / f"{logs.index.name}.corrupt-{stamp}-{n}"
        os.rename(logs.index, target)
        for suffix in ("-wal", "-shm"):
            # the WAL goes with its database (it may hold pages of it); a new database
            # must not adopt the old shared-memory index
            side = Path(f"{logs.index}{suffix}")
            try:
                if suffix == "-wal":
                    os.rename(side, f"{target}{suffix}")
                else:
                    side.unlink()
            except FileNotFoundError:
                pass
    log.warning("the index %s was damaged (%s); it was moved aside to %s and is rebuilt "
                "from the run directories.", logs.index, why, target.name)
    return target
