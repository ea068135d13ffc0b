"""What a client (the CLI, the UI) asks of the queue: enqueue, fork, resume, cancel.

A client writes the run directory and the index row, then makes sure a
supervisor runs; it never starts a run's process itself.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config.fork import fork_params
from ..config.model import Config
from ..config.params import defaults_for
from ..errors import RunNotFound, UsageError
from ..store import atomic, health, lock, notes, query, runstore
from ..store.events import TERMINAL
from ..store.index import Index, RunRow
from ..store.paths import LogsDir
from ..store.reconcile import reconcile
from ..store.spec import RunSpec, check_experiment_name, git_commit, new_run_id
from . import daemon, preflight, slurm

RESUMABLE = ("failed", "crashed", "cancelled", "oom", "diverged", "preempted", "pruned")


class Client:
    """A client of one logs directory.

    `reading=True` is for commands that only read (`ls`, `show`): when the index cannot
    be written (a full disk, a read-only copy of someone's logs), runs are read from
    their directories instead, and `notice` says so; and a supervisor that died is
    started again when runs wait in the queue."""

    def __init__(self, logs: LogsDir, autostart: bool = True, reading: bool = False):
        self.logs = logs.ensure()
        self.autostart = autostart
        self.reading = reading
        self.notice: str | None = None  # why runs are read from their directories
        if reading:
            self.index, self.notice = open_for_reading(logs)
            if self.notice is None:
                self.wake_supervisor()
        else:
            self.index = Index(logs)

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- finding runs ---------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique prefix or a unique suffix, or a run's label as
        the dashboard and `ls` write it (`smoke`, `sw s1`)."""
        found = self.index.find(ref)
        if not found:
            labels = self.labels()
            found = query.runs_labelled(labels, ref)
            if len(found) > 1:
                shown = ", ".join(labels[rid] for rid in found[:5]) + (" ..." if len(found) > 5 else "")
                raise UsageError(f"'{ref}' matches {len(found)} runs ({shown}); give the whole "
                                 "label or the run's id.")
        if not found:
            runstore.load_spec(self.logs.run(ref))  # raises RunNotFound with the place
            problem = runstore.check_run_dir(self.logs.run(ref))
            if problem is not None:
                raise UsageError(problem)
            self._write(lambda: self.index.reindex_run(ref))  # on disk but not indexed yet
            return ref
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
            raise UsageError(f"'{ref}' matches {len(found)} runs ({shown}); give more of the id.")
        return found[0]

    def labels(self) -> dict[str, str]:
        """Every run's label (`query.labels`), as the dashboard and `ls` write them."""
        return query.run_labels(query.load_runs(self.index, metrics=()), defaults_for)

    def row(self, ref: str) -> RunRow:
        """A run as its directory says it is now (store/reconcile.py)."""
        run_id = self.resolve(ref)
        row = query.get_run(self.index, run_id)
        if row is None:
            raise RunNotFound(f"no run '{ref}' in {self.logs.runs}.")
        return reconcile(self.index, [row])[0]

    def index_new_directories(self) -> None:
        """Index run directories the index lacks (a script run by hand)."""
        if self.notice is None:
            self._write(lambda: query.index_new_directories(self.index))

    def wake_supervisor(self) -> None:
        """Start a supervisor that died while runs wait in the queue (cheap: a lock probe,
        and a query only when no supervisor holds the lock). Does not wait for it."""
        try:
            if lock.is_running(self.logs) or not self.index.queued_ids():
                return
            daemon.spawn(self.logs, wait=0)
        except (OSError, sqlite3.Error):
            pass  # someone else's read-only logs: reading must still work

    def _write(self, fn: Callable[[], object]) -> None:
        """A write a reading command makes on the way (a stale row refreshed); where the
        index cannot take it, the command reads the run directories instead."""
        if not self.reading:
            fn()
            return
        try:
            fn()
        except (sqlite3.OperationalError, OSError) as e:
            self.index.close()
            self.index = directory_index(self.logs)
            self.notice = unwritable_notice(self.logs, e)

    # -- queueing ---------------------------------------------------------------
    def enqueue(self, config: Config, experiment: str, overrides: dict[str, Any] | None = None) -> list[str]:
        """Queue every run of an experiment; all validated before any is written."""
        check_experiment_name(experiment)
        exp = config.experiment(experiment)
        if exp.search is not None or exp.pbt is not None:  # its runs come one by one (search/study.py)
            raise UsageError(f"experiment '{experiment}' is a study: start it with `tuiexp run {experiment}`.")
        all_params = preflight.require(config, experiment, overrides)  # what `check` refuses, never queued
        cwd = str(preflight.run_dir_of(config, exp))
        commit = git_commit(config.path.parent)
        on_slurm = config.queue.executor == "slurm"
        if on_slurm:
            slurm.require(config.path.name)
        specs = [
            RunSpec(id=new_run_id(experiment), experiment=experiment, params=params,
                    command=exp.command, cwd=cwd, seed=params.get("seed"), priority=exp.priority,
                    git_commit=commit, config_path=str(config.path.resolve()), tags=exp.tags,
                    metric=exp.metric, mode=exp.mode, args=exp.args, scalars=exp.scalars,
                    slurm={**config.queue.slurm, **exp.slurm} if on_slurm else None)
            for params in all_params
        ]
        self.index.put_setting("queue", asdict(config.queue))
        ids = [self._queue(spec) for spec in specs]
        self.ensure_daemon()
        return ids

    def fork(self, ref: str, overrides: dict[str, Any], epoch: int | None = None) -> str:
        """Queue a child of a run that starts from its checkpoint at `epoch` (default: last)."""
        parent = runstore.load_spec(self.logs.run(self.resolve(ref)))
        epoch, source = runstore.fork_source(self.logs.run(parent.id), epoch)
        params = fork_params(parent.params, overrides, epoch, builtin=parent.command is None)
        child = parent.forked(new_run_id(parent.experiment), epoch, params)
        child_id = self._queue(child, init_checkpoint=source)
        self.ensure_daemon()
        return child_id

    def resume(self, ref: str) -> str:
        row = self.row(ref)
        if row.status not in RESUMABLE:
            raise UsageError(f"run {row.id} is {row.status}; only a failed, crashed, cancelled, "
                             f"oom, diverged or pruned run can be resumed.")
        paths = self.logs.run(row.id)
        paths.cancel.unlink(missing_ok=True)
        paths.prune.unlink(missing_ok=True)  # a pruned trial resumed by hand is no longer judged
        atomic.write_json(paths.queue, {"attempt": runstore.next_attempt(paths),
                                        "priority": row.priority, "queued": time.time()})
        if not self.index.set_status(row.id, "queued", f"resumed from {query.resume_point(row)[1]}",
                                     expect=RESUMABLE, ended=None):
            raise UsageError(f"run {row.id} changed status meanwhile; look again.")
        self.ensure_daemon()
        return row.id

    def cancel(self, ref: str) -> str:
        row = self.row(ref)
        if row.status in TERMINAL:
            raise UsageError(f"run {row.id} is already {row.status}.")
        paths = self.logs.run(row.id)
        atomic.write_text(paths.cancel, f"{time.time()}\n")
        if not self.index.set_status(row.id, "cancelled", "cancelled before it started",
                                     expect=("queued",)):
            self.ensure_daemon()  # it runs: the supervisor signals its process group
        return row.id

    def annotate(self, ref: str, note: str | None = None, append: bool = False,
                 add: Sequence[str] = (), remove: Sequence[str] = ()) -> tuple[str, str, list[str]]:
        """Change a run's note (None: keep it) and tags, in its directory and then its index
        row (store/notes.py); returns (run id, note, tags) as they now are."""
        run_id = self.resolve(ref)
        paths = self.logs.run(run_id)
        spec_tags = runstore.load_spec(paths).tags
        now: list[tuple[str, list[str]]] = []

        def change() -> tuple[str, list[str]]:
            now.append(notes.edit(paths, spec_tags, note, append, add, remove))
            return now[-1]

        self.index.annotate(run_id, change)
        return run_id, *now[-1]

    def move(self, ref: str, direction: int) -> bool:
        return self.index.move(self.resolve(ref), direction)

    def archive(self, ref: str) -> Path:
        """Move a finished run's directory to logs/archive and drop it from the index."""
        row = self.row(ref)
        if row.status not in TERMINAL:
            raise UsageError(f"run {row.id} is {row.status}; cancel it before archiving it.")
        target = self.logs.root / "archive" / row.id
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(self.logs.run(row.id).dir), target)
        self.index.delete(row.id)
        return target

    def _queue(self, spec: RunSpec, init_checkpoint: Path | None = None) -> str:
        spec, _ = runstore.create_unique(self.logs, spec, init_checkpoint=init_checkpoint)
        self.index.add_run(spec)  # unless the supervisor indexed the new directory first
        return spec.id

    def ensure_daemon(self) -> None:
        """Make sure a supervisor watches this logs directory (unless autostart is off)."""
        if self.autostart and not daemon.spawn(self.logs):
            raise UsageError(f"the supervisor did not start; see {self.logs.daemon_log}.")


def open_for_reading(logs: LogsDir) -> tuple[Index, str | None]:
    """The index to read runs from, and None; or, where the index cannot be opened for
    writing, one rebuilt in memory from the run directories and a notice saying so.
    Raises a UsageError (one sentence) when neither can be had."""
    try:
        return Index(logs), None
    except (sqlite3.Error, OSError) as e:
        trouble = e
    notice = unwritable_notice(logs, trouble)
    try:
        return directory_index(logs), notice
    except (sqlite3.Error, OSError) as e:
        raise UsageError(f"{storage_problem(logs, trouble)}; reading the run directories "
                         f"failed too ({e}).") from None


class _InMemory(LogsDir):
    """The same logs directory, with an index that lives in memory (nothing is written)."""

    @property
    def index(self) -> Path:
        return Path(":memory:")

    def ensure(self) -> LogsDir:
        return self


def directory_index(logs: LogsDir) -> Index:
    """An index built in memory from the run directories, as `reindex` would build it;
    a directory that cannot be read as a run is left out."""
    return Index(_InMemory(logs.root))  # a new index: rebuilt from the directories at open


def unwritable_notice(logs: LogsDir, e: BaseException) -> str:
    return f"{storage_problem(logs, e)}; runs are read from their directories."


def storage_problem(logs: LogsDir, e: BaseException) -> str:
    """One sentence (without its full stop) on why the logs directory cannot be written,
    by the error's code (SQLite's, or the errno), never by the words of its message."""
    text = str(e).rstrip(".")
    if isinstance(e, OSError):
        text = e.strerror or text
    trouble = health.kind(e)
    if trouble == "full":
        if isinstance(e, OSError):
            return f"no space left on the disk of {logs.root}"
        return f"the index {logs.index} cannot be written: the disk is full ({text})"
    if trouble == "io":
        return f"the index {logs.index} cannot be written ({text}; is the disk full or failing?)"
    if trouble == "corrupt":
        return f"the index {logs.index} is damaged ({text})"
    if trouble in ("readonly", "cantopen"):
        return f"the index {logs.index} cannot be written here ({text})"
    return f"the index {logs.index} cannot be written ({text})"


def storage_advice(logs: LogsDir, e: BaseException) -> str:
    """What to do about it: free space only where space is what is missing."""
    if health.kind(e) in ("full", "io"):
        return "free some space and try again"
    return "`tuiexp doctor` checks the logs directory"
