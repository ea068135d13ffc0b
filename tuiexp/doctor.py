"""`tuiexp doctor`: what is wrong with a logs directory, and the repairs that are safe.

Each check yields `Finding`s: one sentence each, and, where the repair cannot lose
anything, the repair itself. Safe means: the directory is the record, so a temporary
file whose writer is dead, a staging directory never renamed into place, or an index
row (which `reindex` can always rebuild) may go; a run directory is never touched.
Nothing is removed outside the logs directory: every removal walks down from it without
following a symbolic link (`_remove`), and links found where run directories belong are
reported, never entered.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .queue import daemon
from .store import events, health, lock, runstore
from .store.index import ACTIVE, Index
from .store.paths import LogsDir, RunPaths, is_run_id
from .store.reconcile import stale

STAGING_GRACE = 60.0  # seconds: a staging directory younger than this may be in use
UNKNOWN_TMP_GRACE = 3600.0  # a temporary file naming no pid: orphan after an hour
LOW_DISK_BYTES = 256 << 20
LOW_DISK_FRACTION = 0.10

# `.NAME.PID.HEX6.tmp` (store/atomic.py) and `.NAME.PID.tmp` (track's checkpoint writes)
_TMP_WITH_PID = (re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{6}\.tmp$"),
                 re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.tmp$"))
_STAGING = re.compile(r"^\.new-.*-(?P<pid>\d+)$")


@dataclass
class Finding:
    """One thing doctor noticed: a sentence, and the safe repair where there is one."""

    message: str
    repair: Callable[[], str] | None = None  # does it; returns what it did, as a sentence
    problem: bool = True  # False: a fact worth a line (free disk), not a problem


class Checkup:
    """A doctor's visit to one logs directory: `diagnose`, then maybe `repair`, then
    `diagnose` again to see what remains. Holds the index open (repairs write it)."""

    def __init__(self, logs: LogsDir):
        self.logs = logs
        self.index: Index | None = None
        self.trouble: list[Finding] = []

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None

    def __enter__(self) -> Checkup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def diagnose(self) -> list[Finding]:
        """Every finding about the logs directory, problems first."""
        logs = self.logs
        if not logs.root.is_dir():
            return [Finding(f"{logs.root} is not a logs directory (it does not exist).")]
        self.close()  # (a repair may have replaced the index: look at it afresh)
        self.index, self.trouble = _open_index(logs)
        found = (orphan_temp_files(logs) + staging_dirs(logs) + bad_run_dirs(logs)
                 + self.trouble + moved_aside(logs))
        if self.index is not None:
            found += index_disagreements(logs, self.index)
            found += supervisor(logs, self.index)
        found += disk(logs)
        return sorted(found, key=lambda f: not f.problem)


def repair(findings: list[Finding]) -> Iterator[str]:
    """Apply every safe repair; yields one sentence per repair, done or failed."""
    for f in findings:
        if f.repair is None:
            continue
        try:
            yield f.repair()
        except (OSError, sqlite3.Error, ValueError) as e:
            yield f"could not repair: {f.message} ({e})"


# -- the checks ---------------------------------------------------------------
def orphan_temp_files(logs: LogsDir) -> list[Finding]:
    """Temporary files whose writer died before renaming them into place (a SIGKILL
    during a checkpoint or JSON write), in the logs directory itself, never through a
    symbolic link."""
    out = []
    for folder in _temp_folders(logs):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                path = folder / name
                why = _orphan_reason(path)
                if why is not None:
                    out.append(Finding(f"{_rel(logs, path)} is left over from a write "
                                       f"{why}.", _remover(logs, path)))
    return out


def staging_dirs(logs: LogsDir) -> list[Finding]:
    """`runs/.new-*` directories a client built and never renamed into place."""
    out = []
    for path in _entries(logs.runs):
        m = _STAGING.match(path.name)
        if not path.name.startswith(".new-") or not _real_dir(path):
            continue
        if _age(path) < STAGING_GRACE:
            continue
        pid = int(m["pid"]) if m else None
        if pid is not None and runstore.pid_alive(pid):
            continue
        who = f"(pid {pid}) " if pid is not None else ""
        out.append(Finding(f"{_rel(logs, path)} is a half-made run whose client {who}is gone.",
                           _remover(logs, path)))
    return out


def bad_run_dirs(logs: LogsDir) -> list[Finding]:
    """Directories under runs/ that cannot be read as the run they are named after, and
    symbolic links where run directories (or their checkpoints) belong: reported, never
    repaired (what they point to is not the logs directory's)."""
    out = []
    for path in _entries(logs.runs):
        if path.name.startswith("."):
            continue
        if path.is_symlink():
            out.append(Finding(f"{_rel(logs, path)} is a symlink to {_target(path)}; doctor "
                               "does not look into it or touch it (move the run directory "
                               f"itself into {_rel(logs, logs.runs)} to have it checked)."))
            continue
        if not path.is_dir():
            continue
        if (path / "ckpt").is_symlink():
            out.append(Finding(f"{_rel(logs, path / 'ckpt')} is a symlink to "
                               f"{_target(path / 'ckpt')}; doctor does not touch it."))
        problem = runstore.check_run_dir(RunPaths(path))
        if problem is not None:
            out.append(Finding(problem))
    return out


def index_disagreements(logs: LogsDir, index: Index) -> list[Finding]:
    """Run directories the index lacks, rows whose directory is gone, rows shown queued,
    starting or running that their directory contradicts (store/reconcile.py)."""
    out = []
    rows = {r.id: r for r in index.runs()}
    for rid in runstore.run_ids(logs):
        if rid not in rows and runstore.check_run_dir(logs.run(rid)) is None:
            out.append(Finding(f"run {rid} is not in the index.",
                               _reindexer(index, rid, f"indexed run {rid}.")))
    watched = lock.is_running(logs)
    for rid, row in rows.items():
        if not is_run_id(rid):
            out.append(Finding(f"the index lists a run with an invalid id '{rid}'.",
                               _dropper(index, rid)))
        elif not logs.run(rid).spec.exists():
            out.append(Finding(f"the index lists run {rid}, but {logs.run(rid).dir} is gone.",
                               _dropper(index, rid)))
        elif row.status in ACTIVE and stale(logs.run(rid), row, watched):
            paths = logs.run(rid)
            verdict = runstore.derive_status(paths, runstore.last_status(events.read_all(paths.events)))
            if verdict.status != row.status:
                out.append(Finding(f"run {rid} is shown {row.status}, but its directory says "
                                   f"{verdict.status}.",
                                   _reindexer(index, rid, f"run {rid} is now {verdict.status}.")))
    return out


def moved_aside(logs: LogsDir) -> list[Finding]:
    """Damaged indexes moved aside (store/health.py): the damage is worth knowing about
    (a failing disk?); the copy is not needed, the index was rebuilt without it."""
    out = []
    for path in _entries(logs.root):
        if path.name.startswith(f"{logs.index.name}.corrupt-") and not path.name.endswith(
                ("-wal", "-shm")):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(path.lstat().st_mtime))
            out.append(Finding(f"{path.name} is a damaged index, moved aside (last written "
                               f"{when}); the index was rebuilt from the run directories, so "
                               "the copy can go.", _copy_remover(logs, path)))
    return out


def _copy_remover(logs: LogsDir, path: Path) -> Callable[[], str]:
    def remove() -> str:
        for suffix in ("", "-wal", "-shm"):
            _remove(logs, Path(f"{path}{suffix}"))
        return f"removed {path.name}."

    return remove


def supervisor_index(logs: LogsDir) -> list[Finding]:
    """A supervisor writing an index file that is no longer `index.sqlite` (deleted or
    replaced under it); it reopens the file within a tick, so this should not last."""
    info = lock.info(logs)
    seen = (info or {}).get("index")
    if not info or not seen or tuple(seen) == health.identity(logs.index):
        return []
    return [Finding(f"the supervisor (pid {info.get('pid', '?')}) writes to an index file that "
                    f"was deleted or replaced; it should reopen {logs.index} within a second "
                    "(if this stays, stop it with `tuiexp daemon stop`).")]


def supervisor(logs: LogsDir, index: Index) -> list[Finding]:
    """A queue with nobody to run it."""
    if lock.is_running(logs):
        return []
    queued = len(index.queued_ids())
    if not queued:
        return []

    def start() -> str:
        if not daemon.spawn(logs):
            raise OSError(f"the supervisor did not start; see {logs.daemon_log}")
        return "started the supervisor."

    return [Finding(f"no supervisor runs, and {queued} run{'s' if queued != 1 else ''} "
                    f"wait{'s' if queued == 1 else ''} in the queue.", start)]


def disk(logs: LogsDir) -> list[Finding]:
    """Free space on the logs directory's filesystem (a problem when low)."""
    try:
        usage = shutil.disk_usage(logs.root)
    except OSError as e:
        return [Finding(f"the free space of {logs.root} cannot be read ({e.strerror}).")]
    low = usage.free < min(LOW_DISK_BYTES, LOW_DISK_FRACTION * usage.total)
    text = f"{_size(usage.free)} free of {_size(usage.total)} on the filesystem of {logs.root}"
    if low:
        return [Finding(f"only {text}: runs and the index fail when it fills up.")]
    return [Finding(text[0].upper() + text[1:] + ".", problem=False)]


# -- helpers ------------------------------------------------------------------
def _open_index(logs: LogsDir) -> tuple[Index | None, list[Finding]]:
    """The index, checked page by page first (`PRAGMA quick_check`): a missing or damaged
    one is a finding whose repair makes a new one from the run directories."""
    if not logs.index.exists():
        return None, [Finding(f"the index {logs.index} is missing.", _rebuilder(logs))]
    try:
        damage = health.quick_check(logs.index)
    except sqlite3.Error as e:
        damage = None
        trouble = [Finding(f"the index {logs.index} cannot be checked ({e}).")]
    else:
        trouble = []
    if damage is not None:
        return None, [Finding(f"the index {logs.index} is malformed ({damage}).",
                              _rebuilder(logs, damage))]
    try:
        return Index(logs), trouble + supervisor_index(logs)
    except (sqlite3.Error, OSError) as e:
        trouble.append(Finding(f"the index {logs.index} cannot be opened for writing ({e})."))
    try:
        index = Index(logs, readonly=True)
        index.runs()
        return index, trouble
    except (sqlite3.Error, OSError) as e:
        trouble[-1].message = (f"the index {logs.index} cannot be read ({e}); move it aside and "
                               f"run `tuiexp reindex` to rebuild it from the run directories.")
        return None, trouble


def _temp_folders(logs: LogsDir) -> Iterator[Path]:
    """The folders temporary files are written in: the logs directory, each run
    directory and its ckpt/ (not a symbolic link to elsewhere)."""
    yield logs.root
    for path in _entries(logs.runs):
        if not path.name.startswith(".") and _real_dir(path):
            yield path
            if _real_dir(path / "ckpt"):
                yield path / "ckpt"


def _real_dir(path: Path) -> bool:
    """A directory, and not a symbolic link to one."""
    return path.is_dir() and not path.is_symlink()


def _target(link: Path) -> str:
    try:
        return str(link.readlink())
    except OSError:
        return "?"


def _orphan_reason(path: Path) -> str | None:
    """Why a temporary file is an orphan ("whose process ... is gone"); None if in use."""
    for pattern in _TMP_WITH_PID:
        m = pattern.match(path.name)
        if m:
            pid = int(m["pid"])
            return None if runstore.pid_alive(pid) else f"whose process (pid {pid}) is gone"
    if _age(path) > UNKNOWN_TMP_GRACE:
        return f"more than {UNKNOWN_TMP_GRACE / 3600:.0f} hour old"
    return None


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _age(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 0.0


def _rel(logs: LogsDir, path: Path) -> str:
    try:
        return str(path.relative_to(logs.root))
    except ValueError:
        return str(path)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _remover(logs: LogsDir, path: Path) -> Callable[[], str]:
    def remove() -> str:
        _remove(logs, path)
        return f"removed {_rel(logs, path)}."

    return remove


def _remove(logs: LogsDir, path: Path) -> None:
    """Remove `path` (a file, or a directory and what it holds) only if it lies inside
    the logs directory: each folder on the way down is opened with O_NOFOLLOW relative
    to the one above it, and the last name is removed relative to its folder, so a
    symbolic link anywhere on the way (even one made after the check) is never
    followed out of the logs directory."""
    root = logs.root.resolve()
    try:
        parts = path.relative_to(logs.root).parts
    except ValueError:
        raise OSError(f"{path} is outside {logs.root}; not removed") from None
    if not parts or ".." in parts:
        raise OSError(f"{path} is not a file inside {logs.root}; not removed")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            down = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = down
        name = parts[-1]
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            shutil.rmtree(f"/proc/self/fd/{fd}/{name}")  # (rmtree never follows links inside)
        else:
            os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)


def _rebuilder(logs: LogsDir, damage: str | None = None) -> Callable[[], str]:
    def rebuild() -> str:
        if damage is not None and health.quarantine(logs, damage) is None:
            return f"the index {logs.index} was replaced meanwhile; nothing moved."
        with Index(logs) as index:  # a new file: rebuilt from the run directories
            n = index.rebuilt if index.rebuilt is not None else index.rebuild()
        aside = "moved the damaged index aside and " if damage is not None else ""
        return f"{aside}rebuilt the index from the run directories ({n} runs)."

    return rebuild


def _reindexer(index: Index, run_id: str, done: str) -> Callable[[], str]:
    def reindex() -> str:
        index.reindex_run(run_id)
        return done

    return reindex


def _dropper(index: Index, run_id: str) -> Callable[[], str]:
    def drop() -> str:
        index.delete(run_id)
        return f"dropped run '{run_id}' from the index."

    return drop
