"""experiments.toml → Config: strict loading, `extends`, the tables' checks.

Every mistake becomes one ConfigError sentence naming the file, the line and
the key, with a "did you mean" where a close match exists."""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError, UsageError
from ..store.spec import check_experiment_name
from .checks import (
    RESERVED_SHAPES,
    check_distribution,
    check_exists,
    check_reserved_typos,
    check_run_keys,
    check_table,
    check_template,
    parse_budgets,
    primary_metric,
)
from .locate import Locator
from .model import Config, Experiment, QueueSettings, UiSettings
from .params import builtin_schema
from .search import check_space, parse_pbt, parse_search
from .slurm import check_settings
from .values import deep_merge, set_dotted, suggest

TOP_LEVEL = ("queue", "defaults", "experiments", "ui")


QUEUE_KEYS = {"gpus": "auto", "jobs_per_gpu": 1, "min_free_memory_mb": 0, "cpu_jobs": 1,
              "executor": "local", "slurm": {}}


#: Tables that belong to a choice (`model`, `scheduler`): an experiment that sets
#: one replaces the inherited table instead of merging into it.
REPLACED_TABLES = frozenset({"model_args", "scheduler_args"})


#: How a run is started and judged; also allowed in [defaults], for every experiment.
RUN_KEYS = ("metric", "mode", "args", "scalars")


#: Keys of an experiment table that are not params (checks.py: the shape of each value).
RESERVED = tuple(RESERVED_SHAPES)  # RUN_KEYS among them


UI_KEYS = ("columns", "sparklines", "bell")


def load(path: str | Path) -> Config:
    path = Path(path)
    raw, text = _read(path)
    return parse(raw, path, text)


def load_ui(path: str | Path) -> UiSettings:
    """Only the `[ui]` table (what the dashboard and `ls` show): no experiment is
    expanded, so a listing does not pay for validating every param."""
    path = Path(path)
    raw, text = _read(path)
    return _parse_ui(raw.get("ui", {}), Locator(path.name, text, {}).error)


def _read(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is dropped
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist (pass --config FILE).") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not an experiments file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} cannot be read: {getattr(e, 'strerror', None) or e}.") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.name} is not valid TOML: {e}.") from None


def parse(raw: dict[str, Any], path: Path, text: str = "") -> Config:
    raw_exps = raw.get("experiments", {})
    loc = Locator(path.name, text, raw_exps if isinstance(raw_exps, dict) else {})
    fail = loc.error

    for key in raw:
        if key not in TOP_LEVEL:
            raise fail("", key, f"unknown table `{key}`{suggest(key, TOP_LEVEL)}")
    queue = _parse_queue(raw.get("queue", {}), fail)
    ui = _parse_ui(raw.get("ui", {}), fail)
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise fail("", "defaults", "`defaults` must be a table")
    check_run_keys(defaults, lambda k, what: fail("defaults", k, what))
    check_reserved_typos(defaults, RESERVED, builtin_schema().defaults(), raw_exps,
                         lambda k, what: fail("defaults", k, what))
    for key in defaults:
        if key in RESERVED and key not in RUN_KEYS:
            raise fail("defaults", key, f"`{key}` belongs in each experiment's table; [defaults] holds "
                       f"the built-in trainer's params and {', '.join(RUN_KEYS)}")
    if not isinstance(raw_exps, dict):
        raise fail("", "experiments", "`experiments` must be a table of tables")

    resolved: dict[str, dict[str, Any]] = {}

    def resolve(exp_name: str, stack: tuple[str, ...]) -> dict[str, Any]:
        if exp_name in resolved:
            return resolved[exp_name]
        table = raw_exps[exp_name]
        if not isinstance(table, dict):
            raise fail("experiments", exp_name, f"experiment `{exp_name}` must be a table")
        parent = table.get("extends")
        merged: dict[str, Any] = {}
        if parent is not None:
            if not isinstance(parent, str):
                raise fail(f"experiments.{exp_name}", "extends", "`extends` must be an experiment name")
            if parent not in raw_exps:
                raise fail(f"experiments.{exp_name}", "extends",
                           f"`extends` names no experiment '{parent}'{suggest(parent, raw_exps)}")
            if parent in stack:
                cycle = " → ".join((*stack[stack.index(parent):], parent))
                raise fail(f"experiments.{exp_name}", "extends", f"`extends` makes a cycle: {cycle}")
            merged = resolve(parent, (*stack, parent))
            merged = {k: v for k, v in merged.items() if k != "description"}
        merged = deep_merge(merged, {k: v for k, v in table.items() if k != "extends"},
                            replace=REPLACED_TABLES)
        resolved[exp_name] = merged
        return merged

    experiments = {}
    for exp_name in raw_exps:
        try:
            check_experiment_name(exp_name)
        except UsageError:
            raise fail("experiments", exp_name, f"'{exp_name}' is not a valid experiment name (no `/`, "
                       f"no `..`, not starting with `.`)") from None
        table = resolve(exp_name, (exp_name,))
        experiments[exp_name] = _make_experiment(exp_name, table, defaults, fail, loc)
    cfg = Config(path=path, queue=queue, experiments=experiments, locate=loc, ui=ui)
    for exp in experiments.values():
        _check_finite(cfg, exp)
        for budget in exp.param_budget:  # every budget reachable, before anything is queued
            cfg.sized(exp, exp.params, budget)
        if exp.search is not None:
            check_space(exp, partial(fail, f"experiments.{exp.name}.search"))
    return cfg


def _parse_ui(u: Any, fail: Any) -> UiSettings:
    check_table(u, "ui", UI_KEYS, fail)
    lists = {}
    for k in ("columns", "sparklines"):
        v = u.get(k, [])
        if not (isinstance(v, list) and all(isinstance(c, str) and c for c in v)):
            raise fail("ui", k, f"`{k}` must be a list of names (e.g. [\"val/acc\", \"loss\"])")
        lists[k] = tuple(v)
    bell = u.get("bell", False)
    if not isinstance(bell, bool):
        raise fail("ui", "bell", "`bell` must be true or false")
    return UiSettings(columns=lists["columns"], sparklines=lists["sparklines"], bell=bell)


def _parse_queue(q: Any, fail: Any) -> QueueSettings:
    check_table(q, "queue", QUEUE_KEYS, fail)
    gpus = q.get("gpus", "auto")
    if isinstance(gpus, list) and all(isinstance(g, int) and g >= 0 for g in gpus):
        gpus = tuple(gpus)
    elif gpus not in ("auto", "none"):
        raise fail("queue", "gpus", '`gpus` must be "auto", "none" or a list of GPU indices')
    ints = {}
    for k in ("jobs_per_gpu", "min_free_memory_mb", "cpu_jobs"):
        v = q.get(k, QUEUE_KEYS[k])
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if k == "min_free_memory_mb" else 1):
            raise fail("queue", k, f"`{k}` must be a positive integer, got {v!r}")
        ints[k] = v
    executor = q.get("executor", "local")
    if executor not in ("local", "slurm"):
        raise fail("queue", "executor", f'`executor` must be "local" or "slurm", got {executor!r}')
    slurm = check_settings(q.get("slurm", {}), _slurm_fail(fail, "queue"))
    return QueueSettings(gpus=gpus, executor=executor, slurm=slurm, **ints)


def _make_experiment(name: str, table: dict[str, Any], defaults: dict[str, Any], fail: Any,
                     loc: Locator) -> Experiment:
    here = f"experiments.{name}"
    command = table.get("command")
    if command is not None:
        if isinstance(command, str):
            command = shlex.split(command)
        if not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
            raise fail(here, "command", "`command` must be a string or a list of strings")
        command = tuple(command)
    seeds = table.get("seeds", [])
    if not (isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise fail(here, "seeds", "`seeds` must be a list of integers")
    priority = table.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise fail(here, "priority", "`priority` must be an integer")
    tags = table.get("tags", [])
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise fail(here, "tags", "`tags` must be a list of strings")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise fail(here, "description", "`description` must be a string")
    cwd = table.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise fail(here, "cwd", "`cwd` must be a path")
    if len(set(seeds)) != len(seeds):
        dup = next(s for s in seeds if seeds.count(s) > 1)
        raise fail(here, "seeds", f"`seeds` lists {dup} twice")
    check_run_keys(table, lambda k, what: fail(here, k, what))
    run = {k: table.get(k, defaults.get(k)) for k in RUN_KEYS}
    for k in ("args", "scalars"):
        if command is None and k in table:
            raise fail(here, k, f"`{k}` applies to a `command`; the built-in trainer takes its params as they are")
        if command is None:
            run[k] = None  # [defaults] gives them to experiments with a command only
    run["metric"], run["mode"] = primary_metric(name, loc.raw_experiments, defaults)

    check_reserved_typos(table, RESERVED, builtin_schema().defaults() if command is None else {},
                         loc.raw_experiments, lambda k, what: fail(here, k, what))
    slurm = check_settings(table.get("slurm", {}), _slurm_fail(fail, here))
    own = {k: v for k, v in table.items() if k not in RESERVED}
    params = own
    if command is None:
        trainer_defaults = {k: v for k, v in defaults.items() if k not in RUN_KEYS}
        params = deep_merge(deep_merge(builtin_schema().defaults(), trainer_defaults), own,
                            replace=REPLACED_TABLES)

    def exists(key: str, fail_at: Any) -> None:  # a command's params: whatever its table names
        if command is None:
            check_exists(key, params, fail_at)

    sweep = table.get("sweep", {})
    if not isinstance(sweep, dict):
        raise fail(here, "sweep", "`sweep` must be a table of key = [values]")
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise fail(f"{here}.sweep", key, f"sweep over `{key}` needs a non-empty list of values")
        exists(key, lambda what, k=key: fail(f"{here}.sweep", k, what))
    rnd = table.get("random", {})
    if not isinstance(rnd, dict):
        raise fail(here, "random", "`random` must be a table")
    for key, dist in rnd.items():
        if key in ("trials", "seed"):
            if not isinstance(dist, int) or dist < (1 if key == "trials" else 0):
                raise fail(f"{here}.random", key, f"`random.{key}` must be a positive integer")
            continue
        check_distribution(key, dist, lambda what, k=key: fail(f"{here}.random", k, what))
        exists(key, lambda what, k=key: fail(f"{here}.random", k, what))
    search = None
    if "search" in table:
        if sweep or rnd or seeds:
            raise fail(here, "search", "`search` runs a study of its own; it cannot be combined "
                       "with `sweep`, `random` or `seeds`")
        search = parse_search(table["search"], params, lambda k, what: fail(f"{here}.search", k, what),
                              lambda key, dist, f: check_distribution(key, dist, f, "search"),
                              exists)
    if command is not None:  # its templates may name a swept, sampled or searched param too
        varied = [*sweep, *(k for k in rnd if k not in ("trials", "seed")),
                  *(search["space"] if search else ())]
        check_template(command, deep_merge(params, set_dotted({}, dict.fromkeys(varied))), seeds,
                       lambda what: fail(here, "command", what))
    budgets = parse_budgets(table.get("param_budget"), lambda what: fail(here, "param_budget", what))
    if budgets and command is not None:
        raise fail(here, "param_budget", "`param_budget` sizes the built-in trainer's models "
                   "(vgg, resnet, mbconv); an experiment with a `command` has no sizing rule")
    if budgets and ("search" in table or "pbt" in table):
        raise fail(here, "param_budget", "`param_budget` cannot be combined with `search` or `pbt` "
                   "(each trial or member would need its own size)")
    pbt = None
    if "pbt" in table:
        if sweep or rnd or seeds or search is not None:
            raise fail(here, "pbt", "`pbt` runs a population of its own; it cannot be combined "
                       "with `search`, `sweep`, `random` or `seeds`")
        pbt = parse_pbt(table["pbt"], params, lambda k, what: fail(f"{here}.pbt", k, what))
    return Experiment(name=name, params=params, command=command, cwd=cwd, description=description,
                      sweep=sweep, random=rnd, seeds=tuple(seeds), priority=priority, tags=tuple(tags),
                      slurm=slurm, search=search, pbt=pbt, param_budget=budgets, **run)


def _check_finite(cfg: Config, exp: Experiment) -> None:
    """NaN and inf are TOML numbers, never a sensible param: refuse them with their line."""
    places = [("", k, v) for k, v in exp.params.items()]
    places += [("sweep.", k, v) for k, v in exp.sweep.items()]
    places += [("random.", k, v) for k, v in exp.random.items() if k not in ("trials", "seed")]
    for prefix, key, value in places:
        path = _non_finite(value, prefix + key)
        if path is not None:
            raise ConfigError(cfg.where(exp.name, prefix + key,
                                        f"`{path}` is not a finite number (nan or inf)"))


def _non_finite(node: Any, path: str) -> str | None:
    """The path of the first NaN or infinite float under `node`, else None."""
    if isinstance(node, float) and not math.isfinite(node):
        return path
    if isinstance(node, dict):
        items = [(f"{path}.{k}", v) for k, v in node.items()]
    elif isinstance(node, list):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(node)]
    else:
        return None
    for sub, v in items:
        found = _non_finite(v, sub)
        if found is not None:
            return found
    return None


def _slurm_fail(fail: Callable[[str, str | None, str], ConfigError],
                table: str) -> Callable[[str | None, str], ConfigError]:
    """A bad key of a `slurm` table, at its own line (a [x.slurm] table) or the table's
    (an inline `slurm = {...}`, whose keys the locator cannot see)."""
    def at(key: str | None, what: str) -> ConfigError:
        err = fail(f"{table}.slurm", key, what)
        return err if ", line " in str(err) else fail(table, "slurm", what)
    return at
