"""The checks of experiment tables that need no expansion: run keys, command templates,
swept and random keys, distributions, budgets, the primary metric. Each raises through
the `fail` it is given, which places the sentence at the key's line."""

from __future__ import annotations

import math
import re
from typing import Any

from ..store.metrics import default_mode, valid_name
from .command import TemplateError, fields
from .values import suggest

DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")


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
