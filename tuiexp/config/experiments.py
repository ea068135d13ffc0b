"""experiments.toml: strict loading, `extends`, sweeps and seeds, expanded into run params.

Every mistake becomes one ConfigError sentence naming the file, the line and
the key, with a "did you mean" where a close match exists.
"""

from __future__ import annotations

import difflib
import itertools
import math
import random
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError, UsageError
from ..store.metrics import default_mode, valid_name
from ..store.spec import check_experiment_name
from .command import TemplateError, fields
from .params import ParamError, SizingSchema, builtin_schema, schema_for

TOP_LEVEL = ("queue", "defaults", "experiments", "ui")
QUEUE_KEYS = {"gpus": "auto", "jobs_per_gpu": 1, "min_free_memory_mb": 0, "cpu_jobs": 1,
              "executor": "local", "slurm": {}}
#: Tables that belong to a choice (`model`, `scheduler`): an experiment that sets
#: one replaces the inherited table instead of merging into it.
REPLACED_TABLES = frozenset({"model_args", "scheduler_args"})
#: How a run is started and judged; also allowed in [defaults], for every experiment.
RUN_KEYS = ("metric", "mode", "args", "scalars")
#: Keys of an experiment table that are not params.
RESERVED = ("extends", "description", "command", "cwd", "sweep", "random", "seeds", "priority", "tags",
            "slurm", "search", "pbt", "param_budget", *RUN_KEYS)
UI_KEYS = ("columns", "sparklines", "bell")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")


@dataclass(frozen=True)
class QueueSettings:
    gpus: str | tuple[int, ...] = "auto"  # "auto", "none", or GPU indices
    jobs_per_gpu: int = 1
    min_free_memory_mb: int = 0
    cpu_jobs: int = 1
    executor: str = "local"  # "local" | "slurm"
    #: sbatch settings for every run (queue/slurm.py SETTINGS); an experiment's `slurm` overrides
    slurm: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UiSettings:
    """The [ui] table: what the dashboard shows (empty: what the runs log)."""

    columns: tuple[str, ...] = ()
    sparklines: tuple[str, ...] = ()
    bell: bool = False  # ring the terminal bell when a run ends


@dataclass(frozen=True)
class Experiment:
    name: str
    params: dict[str, Any]
    command: tuple[str, ...] | None = None
    cwd: str | None = None
    description: str = ""
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    priority: int = 0
    tags: tuple[str, ...] = ()
    metric: str | None = None  # the primary metric; None: the read model's default
    mode: str | None = None  # "max" | "min"
    args: str | None = None  # "flags": every param passed as --key value
    scalars: str | None = None  # "stdout" or a regex with groups `key` and `value`
    slurm: dict[str, Any] = field(default_factory=dict)
    #: an Optuna study instead of independent runs (search/study.py); None: no search
    search: dict[str, Any] | None = None
    #: population-based training on forks (search/pbt.py); None: none
    pbt: dict[str, Any] | None = None
    #: parameter counts to size the model to, one run (per sweep point and seed) each
    param_budget: tuple[float, ...] = ()

    @property
    def builtin(self) -> bool:
        return self.command is None

    @property
    def num_runs(self) -> int:
        grid = math.prod(len(v) for v in self.sweep.values()) if self.sweep else 1
        if self.search is not None:
            return int(self.search["trials"])  # a study's trials, one run each
        if self.pbt is not None:
            return int(self.pbt["population"])  # its first members (forks come later)
        trials = int(self.random.get("trials", 1)) if self.random else 1
        return grid * max(1, len(self.param_budget)) * trials * max(1, len(self.seeds))


@dataclass(frozen=True)
class Config:
    path: Path
    queue: QueueSettings
    experiments: dict[str, Experiment]
    locate: _Locator
    ui: UiSettings = field(default_factory=UiSettings)

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            raise ConfigError(
                f"{self.path.name}: no experiment '{name}'{_suggest(name, self.experiments)}"
                f" (known: {', '.join(self.experiments) or 'none'})."
            )
        return self.experiments[name]

    def expand(self, name: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The params of every run of an experiment (sweep × trials × seeds), validated."""
        exp = self.experiment(name)
        overrides = overrides or {}
        base = deep_merge(exp.params, overrides)
        # what --set fixes is not swept: a dotted sweep key, or the seeds when `seed` is set
        grid = {k: v for k, v in exp.sweep.items() if not _overridden(k, overrides)}
        seeds = [None] if "seed" in overrides else exp.seeds or [None]
        budgets = _budgets(exp, base, overrides,
                           lambda what: ConfigError(self.where(exp.name, "param_budget", what)))
        runs = []
        for combo in itertools.product(*grid.values()) if grid else [()]:
            point = dict(zip(grid, combo, strict=True))
            for budget in budgets:
                for trial in _random_trials(exp.random, overrides):
                    for seed in seeds:
                        params = deep_merge(base, set_dotted({}, {**point, **trial}))
                        if budget is not None:
                            params = self.sized(exp, params, budget, overrides)
                        if seed is not None:
                            params["seed"] = seed
                        runs.append(params)
        for params in runs:
            self.validate_params(exp, params, overrides)
        return runs

    def sized(self, exp: Experiment, params: dict[str, Any], budget: float,
              overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """`params` with the model sized to `budget` parameters by the experiment's trainer
        (model_args and param_budget set); ConfigError naming `param_budget` when it has
        no sizing rule or no width reaches the budget."""
        schema = schema_for(exp)
        if not isinstance(schema, SizingSchema):
            raise ConfigError(self.where(exp.name, "param_budget", (
                "`param_budget` sizes the built-in trainer's models (vgg, resnet, mbconv); "
                "an experiment with a `command` has no sizing rule" if exp.command is not None
                else "`param_budget` needs a trainer with a sizing rule, and this one has none")))
        try:
            return schema.size_to_budget(params, budget)
        except ParamError as e:
            what = f"`param_budget` {_budget_text(budget)} {e.reason}"
            if "param_budget" in (overrides or {}):
                raise ConfigError(f"--set: {what}.") from None
            raise ConfigError(self.where(exp.name, "param_budget", what)) from None

    def validate_params(self, exp: Experiment, params: dict[str, Any], overrides: dict[str, Any]) -> None:
        schema = schema_for(exp)  # None for a user's command: its params are its own business
        if schema is None:
            return
        try:
            schema.validate(params)
        except ParamError as e:
            top = e.key.split(".")[0].split("[")[0]
            if top in overrides:
                raise ConfigError(f"--set: {describe_param_error(e.key, e.reason)}.") from None
            raise ConfigError(self.where(exp.name, top, describe_param_error(e.key, e.reason))) from None

    def where(self, exp_name: str, key: str, what: str) -> str:
        line, table = self.locate.find_param(exp_name, key, self.chain(exp_name))
        place = f"{self.path.name}, line {line}" if line else self.path.name
        return f"{place}: {sentence(what)} (in [{table}])"

    def chain(self, name: str) -> list[str]:
        out, cur = [], name
        while cur in self.experiments or cur in self.locate.raw_experiments:
            out.append(cur)
            cur = self.locate.raw_experiments.get(cur, {}).get("extends")
            if cur is None or cur in out:
                break
        return out


def load(path: str | Path) -> Config:
    path = Path(path)
    raw, text = _read(path)
    return parse(raw, path, text)


def load_ui(path: str | Path) -> UiSettings:
    """Only the `[ui]` table (what the dashboard and `ls` show): no experiment is
    expanded, so a listing does not pay for validating every param."""
    path = Path(path)
    raw, text = _read(path)
    loc = _Locator(text, {})

    def fail(table: str, key: str | None, what: str) -> ConfigError:
        line = loc.line(table, key)
        return ConfigError(f"{path.name}{f', line {line}' if line else ''}: {sentence(what)}")

    return _parse_ui(raw.get("ui", {}), fail)


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
    loc = _Locator(text, raw.get("experiments", {}) if isinstance(raw.get("experiments"), dict) else {})
    name = path.name

    def fail(table: str, key: str | None, what: str) -> ConfigError:
        line = loc.line(table, key)
        place = f"{name}, line {line}" if line else name
        return ConfigError(f"{place}: {sentence(what)}")

    for key in raw:
        if key not in TOP_LEVEL:
            raise fail("", key, f"unknown table `{key}`{_suggest(key, TOP_LEVEL)}")
    queue = _parse_queue(raw.get("queue", {}), fail)
    ui = _parse_ui(raw.get("ui", {}), fail)
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise fail("", "defaults", "`defaults` must be a table")
    _check_run_keys(defaults, lambda k, what: fail("defaults", k, what))
    for key in defaults:
        if key in RESERVED and key not in RUN_KEYS:
            raise fail("defaults", key, f"`{key}` belongs in each experiment's table; [defaults] holds "
                       f"the built-in trainer's params and {', '.join(RUN_KEYS)}")
    raw_exps = raw.get("experiments", {})
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
                           f"`extends` names no experiment '{parent}'{_suggest(parent, raw_exps)}")
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
            from ..search.study import check_parallel, check_space

            where = f"experiments.{exp.name}.search"
            check_parallel(exp.search, queue, partial(fail, where, "parallel"))
            check_space(exp, partial(fail, where))
    return cfg


def _check_table(table: Any, name: str, known: Any, fail: Any) -> None:
    """A top-level table of known keys: anything else is one sentence with its line."""
    if not isinstance(table, dict):
        raise fail("", name, f"`{name}` must be a table")
    for k in table:
        if k not in known:
            raise fail(name, k, f"unknown key `{k}` in [{name}]{_suggest(k, known)}")


def _parse_ui(u: Any, fail: Any) -> UiSettings:
    _check_table(u, "ui", UI_KEYS, fail)
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


def _check_run_keys(table: dict[str, Any], fail: Any) -> None:
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


def _parse_queue(q: Any, fail: Any) -> QueueSettings:
    _check_table(q, "queue", QUEUE_KEYS, fail)
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
    from ..queue.slurm import check_settings

    slurm = check_settings(q.get("slurm", {}), _slurm_fail(fail, "queue"))
    return QueueSettings(gpus=gpus, executor=executor, slurm=slurm, **ints)


def _make_experiment(name: str, table: dict[str, Any], defaults: dict[str, Any], fail: Any,
                     loc: _Locator) -> Experiment:
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
    _check_run_keys(table, lambda k, what: fail(here, k, what))
    run = {k: table.get(k, defaults.get(k)) for k in RUN_KEYS}
    for k in ("args", "scalars"):
        if command is None and k in table:
            raise fail(here, k, f"`{k}` applies to a `command`; the built-in trainer takes its params as they are")
        if command is None:
            run[k] = None  # [defaults] gives them to experiments with a command only
    run["metric"], run["mode"] = _primary_metric(name, loc.raw_experiments, defaults)

    from ..queue.slurm import check_settings

    slurm = check_settings(table.get("slurm", {}), _slurm_fail(fail, here))
    own = {k: v for k, v in table.items() if k not in RESERVED}
    params = own
    if command is None:
        trainer_defaults = {k: v for k, v in defaults.items() if k not in RUN_KEYS}
        params = deep_merge(deep_merge(builtin_schema().defaults(), trainer_defaults), own,
                            replace=REPLACED_TABLES)
    if command is not None:
        _check_template(command, params, seeds, lambda what: fail(here, "command", what))

    sweep = table.get("sweep", {})
    if not isinstance(sweep, dict):
        raise fail(here, "sweep", "`sweep` must be a table of key = [values]")
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise fail(f"{here}.sweep", key, f"sweep over `{key}` needs a non-empty list of values")
        _check_exists(key, params, lambda what, k=key: fail(f"{here}.sweep", k, what))
    rnd = table.get("random", {})
    if not isinstance(rnd, dict):
        raise fail(here, "random", "`random` must be a table")
    for key, dist in rnd.items():
        if key in ("trials", "seed"):
            if not isinstance(dist, int) or dist < (1 if key == "trials" else 0):
                raise fail(f"{here}.random", key, f"`random.{key}` must be a positive integer")
            continue
        _check_distribution(key, dist, lambda what, k=key: fail(f"{here}.random", k, what))
        _check_exists(key, params, lambda what, k=key: fail(f"{here}.random", k, what))
    search = None
    if "search" in table:
        from ..search.study import parse_search

        if sweep or rnd or seeds:
            raise fail(here, "search", "`search` runs a study of its own; it cannot be combined "
                       "with `sweep`, `random` or `seeds`")
        search = parse_search(table["search"], params, lambda k, what: fail(f"{here}.search", k, what),
                              lambda key, dist, f: _check_distribution(key, dist, f, "search"),
                              lambda key, f: _check_exists(key, params, f))
    budgets = _parse_budgets(table.get("param_budget"), lambda what: fail(here, "param_budget", what))
    if budgets and command is not None:
        raise fail(here, "param_budget", "`param_budget` sizes the built-in trainer's models "
                   "(vgg, resnet, mbconv); an experiment with a `command` has no sizing rule")
    if budgets and ("search" in table or "pbt" in table):
        raise fail(here, "param_budget", "`param_budget` cannot be combined with `search` or `pbt` "
                   "(each trial or member would need its own size)")
    pbt = None
    if "pbt" in table:
        from ..search.pbt import parse_pbt

        if sweep or rnd or seeds or search is not None:
            raise fail(here, "pbt", "`pbt` runs a population of its own; it cannot be combined "
                       "with `search`, `sweep`, `random` or `seeds`")
        pbt = parse_pbt(table["pbt"], params, lambda k, what: fail(f"{here}.pbt", k, what))
    return Experiment(name=name, params=params, command=command, cwd=cwd, description=description,
                      sweep=sweep, random=rnd, seeds=tuple(seeds), priority=priority, tags=tuple(tags),
                      slurm=slurm, search=search, pbt=pbt, param_budget=budgets, **run)


def _parse_budgets(value: Any, fail: Any) -> tuple[float, ...]:
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
            raise fail(f"`param_budget` lists {_budget_text(n)} twice")
        out.append(n)
    return tuple(out)


def _budgets(exp: Experiment, base: dict[str, Any], overrides: dict[str, Any],
             fail: Any) -> list[float | None]:
    """The budgets one run each is sized to: `--set param_budget=N` fixes one; a
    `param_budget` param set as a plain value (in [defaults]) sizes every run; None: no sizing."""
    if "param_budget" in overrides:
        value = overrides["param_budget"]
        return list(_parse_budgets(value, lambda what: ConfigError(f"--set: {sentence(what)}")))
    if exp.param_budget:
        return list(exp.param_budget)
    if base.get("param_budget") is not None and exp.command is None:
        return list(_parse_budgets(base["param_budget"], fail))
    return [None]


def _budget_text(budget: float) -> str:
    return f"{budget:,.0f}" if float(budget).is_integer() else f"{budget:,}"


def _primary_metric(name: str, raw: dict[str, Any], defaults: dict[str, Any]) -> tuple[str | None, str | None]:
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


def _check_template(command: tuple[str, ...], params: dict[str, Any], seeds: list[int], fail: Any) -> None:
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
                               f"have{_suggest(key, choices)}")
                node = node[key]


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


def _check_exists(key: str, params: dict[str, Any], fail: Any) -> None:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            known = node.keys() if isinstance(node, dict) else []
            raise fail(f"sweep over `{key}`, a key that does not exist{_suggest(part, known)}")
        node = node[part]


def _check_distribution(key: str, dist: Any, fail: Any, table: str = "random") -> None:
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


def _random_trials(rnd: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    if not rnd:
        return [{}]
    rng = random.Random(rnd.get("seed", 0))
    dists = {k: v for k, v in rnd.items()
             if k not in ("trials", "seed") and not _overridden(k, overrides)}
    trials = []
    for _ in range(int(rnd.get("trials", 1))):
        trial = {}
        for key, dist in dists.items():
            kind, (lo, *rest) = next(iter(dist.items()))
            hi = rest[0] if rest else lo
            if kind == "uniform":
                trial[key] = rng.uniform(lo, hi)
            elif kind == "log_uniform":
                trial[key] = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            elif kind == "int_uniform":
                trial[key] = rng.randint(int(lo), int(hi))
            else:
                trial[key] = rng.choice(dist["choice"])
        trials.append(trial)
    return trials


def _overridden(dotted: str, overrides: dict[str, Any]) -> bool:
    """Does `overrides` set the dotted key (or a table or value above it)?"""
    node: Any = overrides
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, dict):
            return True
    return True


def deep_merge(base: dict[str, Any], over: dict[str, Any],
               replace: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`over` on top of `base`; tables merge key by key (but those named in `replace`),
    everything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in replace:
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def set_dotted(target: dict[str, Any], flat: dict[str, Any]) -> dict[str, Any]:
    """{"augment.flip": False} → {"augment": {"flip": False}} merged into target."""
    for key, value in flat.items():
        node = target
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return target


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs; values are TOML inline values, bare words are strings."""
    flat: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", key):
            raise ConfigError(f"--set {pair!r} must look like key=value (e.g. --set lr=0.05).")
        flat[key] = parse_value(value.strip())
    return set_dotted({}, flat)


def parse_value(text: str, what: str = "--set value") -> Any:
    """A TOML value, or a bare word; `what` names where the text came from in the error."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[\w.:/+-]+", text):
            return text  # a bare word such as adam or tv:resnet18
        raise ConfigError(f"{what} {text!r} is not a TOML value (quote strings, e.g. '\"x y\"').") from None


def describe_param_error(key: str, reason: str) -> str:
    if reason.startswith("unknown key"):
        return f"unknown key `{key}`{reason[len('unknown key'):]}"
    return f"`{key}` {reason}"


def sentence(text: str) -> str:
    """End a message with a full stop unless it ends with one or a question."""
    return text if text.endswith((".", "?")) else text + "."


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean `{close[0]}`?" if close else ""


class _Locator:
    """Finds the line of a key in the TOML text (tomllib keeps no positions)."""

    HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text: str, raw_experiments: dict[str, Any]):
        self.lines = text.splitlines()
        self.raw_experiments = raw_experiments
        self.sections: list[tuple[str, int]] = [("", 0)]
        for i, line in enumerate(self.lines):
            m = self.HEADER.match(line)
            if m:
                self.sections.append((re.sub(r"\s*\.\s*", ".", m.group(1)).replace('"', ""), i))

    def line(self, table: str, key: str | None) -> int | None:
        """1-based line of `key` in `[table]`; also found as a dotted key of an
        enclosing table (`sweep.lr = ...` under `[experiments.x]`) or as a sub-table."""
        found = self._line(table, key)
        parts = table.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            if found or not key:
                break
            found = self._line(".".join(parts[:cut]), ".".join([*parts[cut:], key]))
        if not found and key and "." in key:  # `[x.sweep]` then `lr = ...`
            head, rest = key.split(".", 1)
            found = self._line(f"{table}.{head}" if table else head, rest)
        if not found and key and len(parts) > 1 and table.startswith("experiments."):
            # inside an inline table (`random = { lr = {...} }`): the line of the table's key
            return self.line(".".join(parts[:-1]), parts[-1])
        return found

    def _line(self, table: str, key: str | None) -> int | None:
        full = f"{table}.{key}" if table and key else (key or table)
        pattern = None
        if key:
            dotted = r"\s*\.\s*".join(f'"?{re.escape(k)}"?' for k in key.split("."))
            pattern = re.compile(rf"^\s*{dotted}\s*[=.]")
        for idx, (name, start) in enumerate(self.sections):
            if name == full or (key and name.startswith(full + ".")):
                return start + 1
            if name == table and pattern is not None:
                end = self.sections[idx + 1][1] if idx + 1 < len(self.sections) else len(self.lines)
                for i in range(start + (1 if name else 0), end):
                    if pattern.match(self.lines[i]):
                        return i + 1
        return None

    def find_param(self, exp: str, key: str, chain: list[str]) -> tuple[int | None, str]:
        for name in chain or [exp]:
            line = self.line(f"experiments.{name}", key)
            if line:
                return line, f"experiments.{name}"
        line = self.line("defaults", key)
        if line:
            return line, "defaults"
        return self.line(f"experiments.{exp}", None), f"experiments.{exp}"
