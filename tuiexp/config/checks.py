"""The checks of experiment tables that need no expansion: run keys, command templates,
swept and random keys, distributions, budgets, the primary metric. Each raises through
the `fail` it is given, which places the sentence at the key's line."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..store.metrics import default_mode, valid_name
from . import search, slurm
from .command import TemplateError, fields
from .values import suggest

DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _table_of(keys: Collection[str]) -> Callable[[Any, Collection[str]], bool]:
    return lambda v, _: isinstance(v, dict) and any(k in keys for k in v)


#: The keys of an experiment table that are not params, each with the shape of its
#: value (given the experiments' names): a key spelt close to one of these, whose value
#: has that shape, is a misspelling (`sweeps.lr = [..]`, `comand = ".."`), not a new param.
RESERVED_SHAPES: dict[str, Callable[[Any, Collection[str]], bool]] = {
    "extends": lambda v, names: isinstance(v, str) and v in names,
    "description": lambda v, _: isinstance(v, str),
    "command": lambda v, _: isinstance(v, str) or (_strings(v) and bool(v)),
    "cwd": lambda v, _: isinstance(v, str),
    "sweep": lambda v, _: isinstance(v, dict) and bool(v) and all(isinstance(x, list) for x in v.values()),
    "random": lambda v, _: isinstance(v, dict) and bool(v) and all(
        isinstance(x, dict) or k in ("trials", "seed") for k, x in v.items()),
    "seeds": lambda v, _: isinstance(v, list) and bool(v) and all(_is_int(x) for x in v),
    "priority": lambda v, _: _is_int(v),
    "tags": lambda v, _: _strings(v),
    "slurm": _table_of(slurm.SETTINGS),
    "search": _table_of(search.SETTINGS),
    "pbt": _table_of(search.KEYS),
    "param_budget": lambda v, _: _is_number(v) or (isinstance(v, list) and all(_is_number(x) for x in v)),
    "metric": lambda v, _: isinstance(v, str) and valid_name(v),
    "mode": lambda v, _: v in ("max", "min"),
    "args": lambda v, _: v == "flags",
    "scalars": lambda v, _: v == "stdout" or (isinstance(v, str) and "(?P<key>" in v),
}


def check_reserved_typos(table: Mapping[str, Any], reserved: Collection[str], known: Mapping[str, Any],
                         experiments: Collection[str], fail: Any) -> None:
    """A key that is not one of `reserved` but is spelt close to one and holds a value of
    its shape is one sentence with a "did you mean", whether or not it could be a param:
    as a param it would be passed to the run, and fail there or, worse, not at all. A
    param the trainer declares (`known`: name → default) stays a param unless it is given
    a list where it takes one value (`seed = [0, 1]`, meant as `seeds`)."""
    for key, value in table.items():
        if key in reserved:
            continue
        meant = [r for r in difflib.get_close_matches(key, list(reserved), n=3, cutoff=0.75)
                 if RESERVED_SHAPES[r](value, experiments)]
        if not meant:
            continue
        if key not in known:
            raise fail(key, f"unknown key `{key}` — did you mean `{meant[0]}`? (as written it would "
                       "be a param passed to the run; a param of that name must be renamed)")
        if isinstance(value, list) and not isinstance(known[key], list):
            raise fail(key, f"`{key}` takes one value, not a list — did you mean `{meant[0]}`?")


def check_table(table: Any, name: str, known: Any, fail: Any) -> None:
    """A top-level table of known keys: anything else is one sentence with its line."""
    if not isinstance(table, dict):
        raise fail("", name, f"`{name}` must be a table")
    for k in table:
        if k not in known:
            raise fail(name, k, f"unknown key `{k}` in [{name}]{suggest(k, known)}")


def check_run_keys(table: dict[str, Any], fail: Any) -> None:
    """metric, mode, args and scalars: their types and values, wherever they are set."""
    metric = table.get("metric")
    if metric is not None and not (isinstance(metric, str) and valid_name(metric)):
        raise fail("metric", f"`metric` must be a metric name (letters, digits, `_ . / -`, up to 128), "
                   f"got {metric!r}")
    if table.get("mode", "max") not in ("max", "min"):
        raise fail("mode", f'`mode` must be "max" or "min", got {table["mode"]!r}')
    if table.get("args", "flags") != "flags":
        raise fail("args", f'`args` must be "flags" (every param as --key value), got {table["args"]!r}')
    scalars = table.get("scalars", "stdout")
    if not isinstance(scalars, str):
        raise fail("scalars", '`scalars` must be "stdout" or a regex with groups (?P<key>...) and (?P<value>...)')
    if scalars != "stdout":
        try:
            groups = re.compile(scalars).groupindex
        except re.error as e:
            raise fail("scalars", f"`scalars` is not a valid regex: {e}") from None
        if not {"key", "value"} <= groups.keys():
            raise fail("scalars", "`scalars` must be \"stdout\" or a regex with named groups "
                       "(?P<key>...) and (?P<value>...)")


def check_template(command: tuple[str, ...], params: dict[str, Any], seeds: list[int], fail: Any) -> None:
    """Every `{name}` of the command names a param this experiment has."""
    known = {**params, "seed": 0} if seeds else params
    for part in command:
        try:
            names = fields(part)
        except TemplateError as e:
            raise fail(f"`command` has {e}") from None
        for dotted in names:
            node: Any = known
            for key in dotted.split("."):
                if not isinstance(node, dict) or key not in node:
                    choices = node.keys() if isinstance(node, dict) else []
                    raise fail(f"`command` names `{{{dotted}}}`, a param this experiment does not "
                               f"have{suggest(key, choices)}")
                node = node[key]


def check_exists(key: str, params: dict[str, Any], fail: Any) -> None:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            known = node.keys() if isinstance(node, dict) else []
            raise fail(f"sweep over `{key}`, a key that does not exist{suggest(part, known)}")
        node = node[part]


def check_distribution(key: str, dist: Any, fail: Any, table: str = "random") -> None:
    if not (isinstance(dist, dict) and len(dist) == 1 and next(iter(dist)) in DISTRIBUTIONS):
        raise fail(f"`{table}.{key}` must be one of {{{' | '.join(d + '=[...]' for d in DISTRIBUTIONS)}}}")
    kind, arg = next(iter(dist.items()))
    if not isinstance(arg, list) or not arg:
        raise fail(f"`{table}.{key}.{kind}` needs a list")
    if kind != "choice" and (len(arg) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                                       for a in arg)):
        raise fail(f"`{table}.{key}.{kind}` needs [low, high]")
    if kind == "log_uniform" and min(arg) <= 0:
        raise fail(f"`{table}.{key}.log_uniform` needs positive bounds")


def parse_budgets(value: Any, fail: Any) -> tuple[float, ...]:
    """`param_budget`: a positive number or a non-empty list of distinct ones; whole
    numbers (TOML's 1e3 is a float) become ints, so labels read `1000`."""
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not values:
        raise fail("`param_budget` is an empty list; give parameter counts, e.g. [1e3, 1e4, 1e5]")
    out: list[float] = []
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise fail(f"`param_budget` must be a parameter count or a list of them "
                       f"(e.g. [1e3, 1e4, 1e5]), got {v!r}")
        if not math.isfinite(v) or v <= 0:
            raise fail(f"`param_budget` holds {v!r}; a budget must be a positive number of parameters")
        if v >= 2**53:
            raise fail(f"`param_budget` holds {v!r}, beyond any model that can be built here")
        n = int(v) if float(v).is_integer() else float(v)
        if n in out:
            raise fail(f"`param_budget` lists {budget_text(n)} twice")
        out.append(n)
    return tuple(out)


def budget_text(budget: float) -> str:
    return f"{budget:,.0f}" if float(budget).is_integer() else f"{budget:,}"


def primary_metric(name: str, raw: dict[str, Any], defaults: dict[str, Any]) -> tuple[str | None, str | None]:
    """`metric` and `mode` from the nearest table that sets them (the experiment, then
    what it extends, then [defaults]); a mode set farther away than the metric belongs
    to another metric, so the metric's own default mode applies."""
    levels: list[dict[str, Any]] = []
    cur = name
    while isinstance(raw.get(cur), dict) and len(levels) <= len(raw):
        levels.append(raw[cur])
        cur = raw[cur].get("extends")
    metric = mode = None
    for level in [*levels, defaults]:
        if metric is None and mode is None:
            mode = level.get("mode")
        if metric is None:
            metric = level.get("metric")
    if metric is not None and mode is None:
        mode = default_mode(metric)
    return metric, mode
