"""Which runs are "the same experiment point": flattened params, what varies, groups.

By default runs that differ only in their seed form one group; `group_by`
names the keys (flattened params, or `experiment`, `status`, `parent`,
`fork_epoch`) to group by instead. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..store.index import RunRow
from ..store.query import run_params

#: Keys that are not params but can still be grouped by.
SPEC_KEYS = ("experiment", "status", "parent", "fork_epoch")


def freeze(v: Any) -> str:
    """A hashable, order-independent identity for a value."""
    return json.dumps(v, sort_keys=True, default=str)


def varying_keys(flats: list[dict[str, Any]]) -> list[str]:
    """Keys whose value is not the same in every run (a key missing somewhere varies)."""
    keys = sorted({k for f in flats for k in f})
    out = []
    for k in keys:
        seen = {freeze(f.get(k, _MISSING)) for f in flats}
        if len(seen) > 1:
            out.append(k)
    return out


_MISSING = "\0missing"


def spec_value(rec: RunRow, key: str) -> Any:
    if key == "experiment":
        return rec.experiment
    if key == "status":
        return rec.status
    if key == "parent":
        return rec.parent
    if key == "fork_epoch":
        return rec.fork_epoch
    return run_params(rec).get(key)


def check_group_by(records: list[RunRow], keys: list[str]) -> list[str]:
    known = sorted({k for r in records for k in run_params(r)})
    choices = [*SPEC_KEYS, *known]
    for k in keys:
        if k not in choices:
            raise UsageError(
                f"cannot group by '{k}'; choose from: {', '.join(choices)}."
            )
    return keys


@dataclass
class Group:
    key: tuple[str, ...]
    members: list[RunRow] = field(default_factory=list)


def group(
    records: list[RunRow], group_by: list[str] | None = None, no_group: bool = False
) -> list[Group]:
    """Groups in order of first appearance in `records`."""
    if group_by:
        check_group_by(records, group_by)
    groups: dict[tuple[str, ...], Group] = {}
    for rec in records:
        key = group_key(rec, group_by, no_group)
        groups.setdefault(key, Group(key)).members.append(rec)
    return list(groups.values())


def group_key(rec: RunRow, group_by: list[str] | None, no_group: bool) -> tuple[str, ...]:
    if no_group:
        return (rec.id,)
    if group_by:
        return tuple(freeze(spec_value(rec, k)) for k in group_by)
    flat = {k: v for k, v in run_params(rec).items() if k != "seed"}
    # a fork with no overrides is still not its parent: keep the fork epoch in the key
    return (rec.experiment, freeze(rec.fork_epoch), freeze(flat))


@dataclass(frozen=True)
class Stat:
    """Mean ± sample std (n-1) over the members that have the value; std is None when n < 2."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: list[Any]) -> Stat:
        xs = [float(x) for x in values if _finite(x)]
        if not xs:
            return cls(None, None, 0)
        mean = math.fsum(xs) / len(xs)
        std = statistics.stdev(xs) if len(xs) > 1 else None
        return cls(_decimal(mean), None if std is None else _decimal(std), len(xs))


def _decimal(x: float) -> float:
    """`x` to 15 significant digits, all a double holds of any decimal: the noise of
    binary arithmetic goes (the mean of 0.525 and 0.526 is 0.5255, not
    0.5255000000000001) and every format writes the number the values make."""
    return float(f"{x:.15g}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
