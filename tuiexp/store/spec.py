"""The frozen spec of a run, as written to run.json; a fork is `replace(parent, ...)`."""

from __future__ import annotations

import copy
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .text import has_control, printable

SPEC_VERSION = 1
#: params tuiexp sets itself (a fork's schedule restart, client.fork): no column, legend
#: or diff shows them unless asked for by name
INTERNAL_PARAMS = frozenset({"schedule_start"})


@dataclass(frozen=True)
class RunSpec:
    id: str
    experiment: str
    params: dict[str, Any]
    #: argv of the user's own command, or None for the built-in trainer
    command: tuple[str, ...] | None = None
    cwd: str | None = None
    seed: int | None = None
    parent: str | None = None
    fork_epoch: int | None = None
    priority: int = 0
    created: float = field(default_factory=time.time)
    git_commit: str | None = None
    config_path: str | None = None
    tags: tuple[str, ...] = ()
    #: the primary metric that decides "best" everywhere, and whether higher is better;
    #: None: the read model's default (val_acc/max when the run logs it)
    metric: str | None = None
    mode: str | None = None  # "max" | "min"
    #: "flags": every param is passed as `--key value`; None: only what `command` templates
    args: str | None = None
    #: None: metrics come only through tuiexp.track; "stdout": `key: value` / `key=value`
    #: lines of the output are metrics; any other string: a regex with groups `key`, `value`
    scalars: str | None = None
    #: sbatch settings when queued for Slurm ([queue.slurm] under the experiment's `slurm`)
    slurm: dict[str, Any] | None = None
    #: the study this run is a trial of (logs/studies/NAME.json), and its trial number
    study: str | None = None
    trial: int | None = None

    def to_json(self) -> dict[str, Any]:
        # (asdict's deep copy, field by field, is most of what indexing a run's row costs)
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["params"] = copy.deepcopy(self.params)
        d["slurm"] = copy.deepcopy(self.slurm)
        d["command"] = list(self.command) if self.command is not None else None
        d["tags"] = list(self.tags)
        d["v"] = SPEC_VERSION
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunSpec:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("command") is not None:
            kw["command"] = tuple(kw["command"])
        kw["tags"] = tuple(kw.get("tags") or ())
        return cls(**kw)

    def forked(self, new_id: str, epoch: int, overrides: dict[str, Any]) -> RunSpec:
        """The child's spec: these params over the parent's, from its checkpoint at `epoch`."""
        params = {**self.params, **overrides}
        return replace(self, id=new_id, params=params, parent=self.id, fork_epoch=epoch,
                       created=time.time(), seed=params.get("seed", self.seed))


_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def new_run_id(experiment: str, now: float | None = None) -> str:
    """Short, sortable, readable, safe as a file name: `20261122-184501-smoke-3fa9`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    name = _SAFE.sub("-", experiment).strip("-")[:40] or "run"
    return f"{stamp}-{name}-{secrets.token_hex(2)}"


def check_experiment_name(name: str) -> str:
    """A name that can be a path part and prints as itself (no control characters)."""
    if (not name or name.startswith(".") or os.sep in name or "/" in name or ".." in name
            or has_control(name)):
        raise UsageError(f"'{printable(name)}' is not a valid experiment name (no '/', no "
                         "leading '.', no control characters).")
    return name


def git_commit(where: Path) -> str | None:
    """The commit checked out where the config lives, recorded in a new run's spec."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=5, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
