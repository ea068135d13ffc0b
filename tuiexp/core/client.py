"""What a client (the CLI, the UI) asks of the queue: enqueue, fork, resume, cancel.

A client writes the run directory and the index row, then makes sure a
supervisor runs; it never starts a run's process itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import atomic, daemon, runstore, slurm
from .config import Config, deep_merge, describe_param_error, sentence
from .errors import ForkError, RunNotFound, UsageError
from .events import TERMINAL
from .index import Index, RunRow
from .paths import LogsDir
from .spec import RunSpec, check_experiment_name, new_run_id

RESUMABLE = ("failed", "crashed", "cancelled", "oom", "diverged", "preempted")


class Client:
    def __init__(self, logs: LogsDir, autostart: bool = True):
        self.logs = logs.ensure()
        self.index = Index(logs)
        self.autostart = autostart

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- finding runs ---------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique prefix or a unique suffix."""
        found = self.index.find(ref)
        if not found:
            runstore.load_spec(self.logs.run(ref))  # raises RunNotFound with the place
            self.index.reindex_run(ref)  # on disk but not indexed yet
            return ref
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
            raise UsageError(f"'{ref}' matches {len(found)} runs ({shown}); give more of the id.")
        return found[0]

    def row(self, ref: str) -> RunRow:
        run_id = self.resolve(ref)
        self.refresh_unsupervised([run_id])
        row = self.index.run(run_id)
        if row is None:
            raise RunNotFound(f"no run '{ref}' in {self.logs.runs}.")
        return row

    def refresh_unsupervised(self, ids: list[str] | None = None) -> None:
        """With no supervisor watching, a "running" row may be stale: derive it again
        from the run directory, which is the truth."""
        if daemon.is_running(self.logs):
            return
        for row in self.index.runs(status=("starting", "running")):
            if ids is None or row.id in ids:
                self.index.reindex_run(row.id)

    # -- queueing ---------------------------------------------------------------
    def enqueue(self, config: Config, experiment: str, overrides: dict[str, Any] | None = None) -> list[str]:
        """Queue every run of an experiment; all validated before any is written."""
        check_experiment_name(experiment)
        exp = config.experiment(experiment)
        all_params = config.expand(experiment, overrides or {})
        cwd = str(Path(exp.cwd if exp.cwd else ".").expanduser())
        cwd = str((config.path.parent / cwd).resolve())
        commit = git_commit(config.path.parent)
        on_slurm = config.queue.executor == "slurm"
        if on_slurm:
            slurm.require(config.path.name)
        specs = [
            RunSpec(id=new_run_id(experiment), experiment=experiment, params=params,
                    command=exp.command, cwd=cwd, seed=params.get("seed"), priority=exp.priority,
                    git_commit=commit, config_path=str(config.path.resolve()), tags=exp.tags,
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
                             f"oom or diverged run can be resumed.")
        paths = self.logs.run(row.id)
        proc = runstore.read_json(paths.proc) or {}
        paths.cancel.unlink(missing_ok=True)
        atomic.write_json(paths.queue, {"attempt": proc.get("attempt", 0) + 1,
                                        "priority": row.priority, "queued": time.time()})
        if not self.index.set_status(row.id, "queued", "resumed from its last checkpoint",
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


def fork_params(parent: dict[str, Any], overrides: dict[str, Any], epoch: int,
                builtin: bool) -> dict[str, Any]:
    """The params a fork at `epoch` runs with, or a ForkError saying why it cannot be.
    The dashboard's fork form checks with this too, so it shows what will be queued."""
    child = deep_merge(parent, overrides)
    epochs = child.get("epochs")
    if isinstance(epochs, int) and epochs <= epoch:
        raise ForkError(f"cannot fork at epoch {epoch}: epochs = {epochs} leaves nothing to train "
                        f"(set epochs above {epoch}).")
    if builtin:
        from ..trainer.config import SCHEDULE_KEYS, ParamError, check_fork, validate

        check_fork(parent, child)  # first: "cannot change the model" beats its consequences
        if SCHEDULE_KEYS & overrides.keys():
            child["schedule_start"] = epoch  # the new schedule starts at the fork
        try:
            validate(child)
        except ParamError as e:
            raise ForkError(f"cannot fork: {sentence(describe_param_error(e.key, e.reason))}") from None
    return child


def git_commit(where: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=5, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
