"""A loaded experiments.toml: the queue, ui and experiment settings, and how an
experiment expands into the params of its runs (sweep × budgets × trials × seeds)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ParamError
from .checks import budget_text, parse_budgets
from .locate import Locator
from .params import SizingSchema, schema_for
from .values import deep_merge, describe_param_error, overridden, sentence, set_dotted, suggest


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
    locate: Locator
    ui: UiSettings = field(default_factory=UiSettings)

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            raise ConfigError(
                f"{self.path.name}: no experiment '{name}'{suggest(name, self.experiments)}"
                f" (known: {', '.join(self.experiments) or 'none'})."
            )
        return self.experiments[name]

    def expand(self, name: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The params of every run of an experiment (sweep × trials × seeds), validated."""
        exp = self.experiment(name)
        overrides = dict(overrides or {})
        seeds_set = _seeds_override(overrides.pop("seeds", None))  # a reserved key, not a param
        base = deep_merge(exp.params, overrides)
        # what --set fixes is not swept: a dotted sweep key, or the seeds when `seed` is set
        grid = {k: v for k, v in exp.sweep.items() if not overridden(k, overrides)}
        chosen = seeds_set or list(exp.seeds)
        seeds: list[int | None] = [None] if "seed" in overrides or not chosen else [*chosen]
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
            what = f"`param_budget` {budget_text(budget)} {e.reason}"
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


def _budgets(exp: Experiment, base: dict[str, Any], overrides: dict[str, Any],
             fail: Any) -> list[float | None]:
    """The budgets one run each is sized to: `--set param_budget=N` fixes one; a
    `param_budget` param set as a plain value (in [defaults]) sizes every run; None: no sizing."""
    if "param_budget" in overrides:
        value = overrides["param_budget"]
        return list(parse_budgets(value, lambda what: ConfigError(f"--set: {sentence(what)}")))
    if exp.param_budget:
        return list(exp.param_budget)
    if base.get("param_budget") is not None and exp.command is None:
        return list(parse_budgets(base["param_budget"], fail))
    return [None]


def _random_trials(rnd: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    if not rnd:
        return [{}]
    rng = random.Random(rnd.get("seed", 0))
    dists = {k: v for k, v in rnd.items()
             if k not in ("trials", "seed") and not overridden(k, overrides)}
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


def _seeds_override(value: Any) -> list[int] | None:
    """`--set seeds=[7, 8]` (or the dashboard's `seeds = [7, 8]`): the run's seeds."""
    if value is None:
        return None
    if not (isinstance(value, list) and value
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ConfigError(f"--set: seeds must be a list of integers such as [0, 1], got {value!r}.")
    return value
