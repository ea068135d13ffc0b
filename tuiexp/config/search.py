"""The `[search]` and `pbt` tables of an experiment, checked (the studies themselves run in
tuiexp/search/)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import partial
from typing import Any

from ..errors import ParamError
from .params import schema_for
from .values import MISSING, deep_merge, describe_param_error, get_dotted, set_dotted, sibling_keys

SAMPLERS = ("tpe", "random", "grid", "cmaes")


PRUNERS = ("asha", "median", "hyperband", "none")


#: keys of a [search] table that are settings; every other key is a param's distribution
SETTINGS = {"sampler": "tpe", "pruner": "median", "trials": None, "parallel": 1, "seed": 0,
            "warmup": 1, "startup_trials": 5, "reduction": None}


#: Optuna's names for settings the [search] table names otherwise (an Optuna user's first guess)
OPTUNA_NAMES = {
    "min_resource": "warmup", "n_warmup_steps": "warmup", "n_startup_trials": "startup_trials",
    "reduction_factor": "reduction", "n_trials": "trials", "n_jobs": "parallel",
}

Fail = Callable[[str | None, str], Exception]


def parse_search(raw: Any, params: dict[str, Any], fail: Fail,
                 check_dist: Callable[[str, Any, Callable[[str], Exception]], None],
                 check_exists: Callable[[str, Callable[[str], Exception]], None]) -> dict[str, Any]:
    """A checked [search] table: its settings and `space` (param → distribution).
    `fail(key, what)` makes the ConfigError at the key's line."""
    if not isinstance(raw, dict):
        raise fail(None, "`search` must be a table (sampler, trials, parallel, pruner and the "
                         "params to search)")
    out: dict[str, Any] = {k: raw.get(k, v) for k, v in SETTINGS.items()}
    for key, known in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        value = out[key]
        if value not in known:
            close = difflib.get_close_matches(str(value), known, n=1, cutoff=0.5)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            raise fail(key, f"unknown {key} {value!r}{hint} (one of {', '.join(known)})")
    for key in ("trials", "parallel", "seed", "warmup", "startup_trials", "reduction"):
        value = out[key]
        low = {"trials": 1, "parallel": 1, "reduction": 2}.get(key, 0)
        if value is None and key in ("trials", "reduction"):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise fail(key, f"`search.{key}` must be an integer of at least {low}, got {value!r}")
    space: dict[str, Any] = {}
    for key, dist in raw.items():
        if key in SETTINGS:
            continue
        if not isinstance(dist, dict):
            close = difflib.get_close_matches(key, SETTINGS, n=1, cutoff=0.6)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            if key in OPTUNA_NAMES:
                hint = f" — Optuna's `{key}` is `{OPTUNA_NAMES[key]}` here"
            raise fail(key, f"unknown key `{key}` in [search]{hint} (a param to search takes a "
                            "distribution, e.g. lr = {{ log_uniform = [1e-4, 1e-1] }})")
        at: Callable[[str], Exception] = partial(fail, key)
        check_dist(key, dist, at)
        _check_range(key, dist, at)
        check_exists(key, partial(_search_words, at))
        space[key] = dist
    if not space:
        raise fail(None, "`search` names no param to search (add e.g. "
                         "lr = { log_uniform = [1e-4, 1e-1] })")
    out["space"] = space
    if out["sampler"] == "grid":
        out["trials"] = _check_grid(space, out["trials"], fail)
    elif out["trials"] is None:
        raise fail(None, "`search.trials` is missing: how many trials the study runs")
    return out


def _search_words(fail: Callable[[str], Exception], what: str) -> Exception:
    """`fail` with a sweep's wording turned into a search's."""
    return fail(what.replace("sweep over", "search over"))


def _check_range(key: str, dist: dict[str, Any], fail: Callable[[str], Exception]) -> None:
    kind, arg = next(iter(dist.items()))
    if kind == "choice":
        for v in arg:
            if not isinstance(v, (str, int, float, bool)):
                raise fail(f"`search.{key}.choice` holds {v!r}; choices must be numbers, "
                           "strings or booleans")
        if len(set(map(repr, arg))) != len(arg):
            raise fail(f"`search.{key}.choice` lists a value twice")
        return
    lo, hi = arg
    if kind == "int_uniform" and not (float(lo).is_integer() and float(hi).is_integer()):
        raise fail(f"`search.{key}.int_uniform` needs integer bounds, got [{lo}, {hi}]")
    if lo == hi:
        raise fail(f"`search.{key}.{kind}` = [{lo}, {hi}] is an empty range")
    if lo > hi:
        raise fail(f"`search.{key}.{kind}` = [{lo}, {hi}] is inverted (low above high); "
                   f"write [{hi}, {lo}]")


def _check_grid(space: dict[str, Any], trials: int | None, fail: Fail) -> int:
    """The grid sampler takes finite sets: `choice` and `int_uniform`; trials ≤ the grid."""
    size = 1
    for key, dist in space.items():
        kind, arg = next(iter(dist.items()))
        if kind not in ("choice", "int_uniform"):
            raise fail(key, f'sampler = "grid" takes `choice` or `int_uniform` values, '
                            f"but `{key}` is {kind}")
        size *= len(arg) if kind == "choice" else int(arg[1]) - int(arg[0]) + 1
    if trials is not None and trials > size:
        raise fail("trials", f"`search.trials` = {trials} is more than the grid's {size} points")
    return trials if trials is not None else size


def check_space(exp: Any, fail: Fail) -> None:
    """Where a param schema knows the params (the built-in trainer), both ends of every
    range and every choice must be values a run accepts: a trial never fails on them."""
    schema = schema_for(exp)
    if schema is None:
        return
    for key, dist in exp.search["space"].items():
        kind, arg = next(iter(dist.items()))
        for value in arg:
            value = int(value) if kind == "int_uniform" else value
            try:
                schema.validate(deep_merge(exp.params, set_dotted({}, {key: value})))
            except ParamError as e:
                raise fail(key, f"`search.{key}` reaches {value!r}, but "
                                f"{describe_param_error(e.key, e.reason)}") from None


KEYS = {"population": 4, "interval": 2, "perturb": None, "quantile": 0.25, "seed": 0}


def parse_pbt(raw: Any, params: dict[str, Any], fail: Any) -> dict[str, Any]:
    """A checked `pbt` table; `fail(key, what)` makes the ConfigError at its line."""
    if not isinstance(raw, dict):
        raise fail(None, "`pbt` must be a table: { population = 8, interval = 2, "
                         "perturb = [\"lr\"], quantile = 0.25 }")
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            raise fail(key, f"unknown key `{key}` in `pbt`{hint}")
    out = {k: raw.get(k, v) for k, v in KEYS.items()}
    for key, low in (("population", 2), ("interval", 1), ("seed", 0)):
        v = out[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise fail(key, f"`pbt.{key}` must be an integer of at least {low}, got {v!r}")
    q = out["quantile"]
    if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0 < q <= 0.5:
        raise fail("quantile", f"`pbt.quantile` must be a fraction in (0, 0.5], got {q!r}")
    perturb = out["perturb"]
    if not (isinstance(perturb, list) and perturb and all(isinstance(k, str) for k in perturb)):
        raise fail("perturb", "`pbt.perturb` must be a non-empty list of param names")
    for key in perturb:
        value = get_dotted(params, key)
        if value is MISSING:
            close = difflib.get_close_matches(key.split(".")[-1], sibling_keys(params, key), n=1, cutoff=0.6)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            raise fail("perturb", f"`pbt.perturb` names `{key}`, a param this experiment does "
                                  f"not have{hint}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise fail("perturb", f"`pbt.perturb` names `{key}` = {value!r}; only numbers can be "
                                  "perturbed")
    return out
