"""The sbatch settings of `[queue.slurm]` and of an experiment's `slurm` table, checked."""

from __future__ import annotations

import difflib
from typing import Any

#: Keys of `[queue.slurm]` and of an experiment's `slurm = {...}` table.
SETTINGS: dict[str, type | tuple[type, ...]] = {
    "partition": str, "gres": str, "cpus_per_task": int, "mem": (str, int), "time": (str, int),
    "account": str, "qos": str, "constraint": str, "sbatch": list, "signal_before": int,
}


# -- settings ------------------------------------------------------------------------------
def check_settings(table: Any, fail: Any) -> dict[str, Any]:
    """Validate a slurm table; `fail(key, what)` makes the ConfigError for a bad key."""
    if not isinstance(table, dict):
        raise fail(None, "`slurm` must be a table")

    for key, value in table.items():
        if key not in SETTINGS:
            close = difflib.get_close_matches(key, list(SETTINGS), n=1, cutoff=0.6)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            raise fail(key, f"unknown key `{key}` in the slurm settings{hint}")
        want = SETTINGS[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise fail(key, f"`{key}` must be {_kind(want)}, got {value!r}")
        if (key in ("cpus_per_task", "signal_before") and isinstance(value, int)
                and value < (1 if key == "cpus_per_task" else 0)):
            raise fail(key, f"`{key}` must be a positive integer, got {value!r}")
        if key == "sbatch" and isinstance(value, list) and not all(
                isinstance(o, str) and o.startswith("-") for o in value):
            raise fail(key, "`sbatch` must be a list of sbatch options such as \"--exclusive\"")
    return dict(table)


def _kind(want: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "a list of strings"}
    kinds = want if isinstance(want, tuple) else (want,)
    return " or ".join(names[k] for k in kinds)
