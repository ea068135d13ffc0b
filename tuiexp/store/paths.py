"""The layout of a logs directory. Every path the project writes is named here."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_run_id(name: object) -> bool:
    """Whether `name` may be a run id (and so a directory name under runs/)."""
    return isinstance(name, str) and bool(RUN_ID_RE.match(name)) and ".." not in name


def check_run_id(run_id: str) -> str:
    """Refuse ids that could escape the logs directory or break a file name."""
    if not is_run_id(run_id):
        raise UsageError(f"'{run_id}' is not a valid run id (letters, digits, '_', '-', '.' only).")
    return run_id


def share_with_group() -> None:
    """Give the group what the owner gets in files made from now on (umask 022 -> 002):
    the policy of a shared (setgid) logs directory. Runs inherit it from the supervisor."""
    mask = current_umask()
    os.umask((mask & ~0o070) | ((mask & 0o700) >> 3))


def current_umask() -> int:
    """The process's umask, read without changing it where /proc allows (another thread
    creating a file meanwhile would otherwise get the temporary mask)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class LogsDir:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> LogsDir:
        return cls(Path(root).resolve())

    @property
    def index(self) -> Path:
        return self.root / "index.sqlite"

    @property
    def index_lock(self) -> Path:
        """Held while a damaged index is moved aside (store/health.py)."""
        return self.root / "index.lock"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def daemon_lock(self) -> Path:
        return self.root / "daemon.lock"

    @property
    def daemon_log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def daemon_info(self) -> Path:
        return self.root / "daemon.json"

    def run(self, run_id: str) -> RunPaths:
        return RunPaths(self.runs / check_run_id(run_id))

    @property
    def shared(self) -> bool:
        """A logs directory with the setgid bit is shared with its group (docs/ARCHITECTURE.md)."""
        try:
            return bool(self.root.stat().st_mode & stat.S_ISGID)
        except OSError:
            return False

    def ensure(self) -> LogsDir:
        """Make the layout; apply the file-mode policy of a shared directory."""
        self.runs.mkdir(parents=True, exist_ok=True)
        if self.shared:
            share_with_group()
        if not self.index.exists():
            # SQLite creates its file 0644 whatever the umask (and its -wal and -shm take
            # the database file's mode): made here, it follows the policy like every file
            try:
                os.close(os.open(self.index, os.O_WRONLY | os.O_CREAT, 0o666))
            except OSError:
                pass  # read-only place: SQLite will say so in its own words
        return self


@dataclass(frozen=True)
class RunPaths:
    """Files of one run directory (see docs/EVENTS.md)."""

    dir: Path

    @property
    def run_id(self) -> str:
        return self.dir.name

    @property
    def spec(self) -> Path:
        return self.dir / "run.json"

    @property
    def events(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout.log"

    @property
    def annotations(self) -> Path:
        """The user's note and tags (store/notes.py), written by clients."""
        return self.dir / "annotations.json"

    @property
    def ckpt(self) -> Path:
        return self.dir / "ckpt"

    @property
    def proc(self) -> Path:
        """Written by the supervisor when it starts the process: pid, pgid, start time."""
        return self.dir / "proc.json"

    @property
    def exit(self) -> Path:
        """Written by the supervisor when the process ends: its return code."""
        return self.dir / "exit.json"

    def claim(self, attempt: int) -> Path:
        """Made (O_EXCL) by the supervisor before it starts `attempt`: whatever an index
        says, an attempt is started at most once (runstore.claim)."""
        return self.dir / f"attempt-{attempt}.claim"

    @property
    def final(self) -> Path:
        """The run's own last word, written by track at its end into space reserved at
        its start: status, and how many events the disk refused (`dropped`)."""
        return self.dir / "final.json"

    @property
    def queue(self) -> Path:
        """Written by a client on enqueue and resume: the attempt it asks for, priority."""
        return self.dir / "queue.json"

    @property
    def cancel(self) -> Path:
        """A request to cancel, written by a client; the supervisor acts on it."""
        return self.dir / "cancel.request"

    @property
    def stop(self) -> Path:
        """A request to stop at the next step and requeue (SIGUSR1 from Slurm writes it)."""
        return self.dir / "stop.request"

    @property
    def prune(self) -> Path:
        """A study's pruner judged the run hopeless (`{"epoch": N, "t": ...}`): it ends
        `pruned` at its next report (any end but a failure after it is `pruned`)."""
        return self.dir / "prune.request"

    @property
    def judged(self) -> Path:
        """Where a study's pruner stands on the run (`{"epoch": N, "next": M}`): the last
        epoch it judged, and the first one it can rule on next (null: none); the run waits
        for a verdict only there. Written before the run starts and after each verdict."""
        return self.dir / "judged.json"

    def checkpoint(self, epoch: int) -> Path:
        return self.ckpt / f"epoch-{epoch:04d}.pt"
