"""Runs a script opens for itself, outside the supervisor's queue."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store import runstore
from ..store.paths import LogsDir
from ..store.spec import RunSpec, check_experiment_name, new_run_id
from . import checks


def logs_root(logs: str | Path | None) -> Path:
    """Where a standalone run goes: `logs`, else $TUIEXP_LOGS, else ./logs."""
    return Path(logs or os.environ.get("TUIEXP_LOGS") or "logs")


def create_run(experiment: str | None, params: dict[str, Any], metric: str | None,
               mode: str | None, logs: str | Path | None) -> Path:
    """Make a running (standalone) run directory and return it.

    Everything is checked first, so a mistake leaves nothing behind."""
    name = experiment or default_experiment()
    if experiment is not None:
        try:
            check_experiment_name(experiment)
        except UsageError as e:  # the tracking API refuses bad input as ValueError
            raise ValueError(str(e)) from None
    check_params(params)
    if metric is not None:
        checks.check_name(metric)
    if mode not in (None, "max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', not {mode!r}.")
    spec = RunSpec(id=new_run_id(name), experiment=name if experiment else _safe(name),
                   params=dict(params), command=("(by hand)",), metric=metric, mode=mode)
    _, paths = runstore.create_unique(LogsDir.at(logs_root(logs)), spec,
                                      standalone_pid=os.getpid())
    return paths.dir


def default_experiment() -> str:
    """The script's name (`train` for train.py); `notebook` in Jupyter, `script` for -c."""
    stem = Path(sys.argv[0] if sys.argv and sys.argv[0] else "script").stem
    if "ipykernel" in stem or "colab" in stem:
        return "notebook"
    return stem if stem and not stem.startswith("-") else "script"


def check_params(params: Any) -> None:
    """TypeError naming the key whose value run.json could not hold."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, not {type(params).__name__}.")
    for key, value in params.items():
        if not isinstance(key, str):
            raise TypeError(f"params: key {key!r} is not a string.")
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError) as e:
            raise TypeError(f"params: '{key}' = {value!r:.60} cannot be stored in "
                            f"run.json ({e}).") from None


def _safe(name: str) -> str:
    """A script's file name as an experiment name (a notebook's argv[0] may be odd)."""
    try:
        return check_experiment_name(name)
    except UsageError:
        return "script"
