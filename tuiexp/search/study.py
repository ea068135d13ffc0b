"""Studies: an Optuna search whose trials are ordinary runs in the queue.

`[experiments.x.search]` names a sampler, a pruner, the number of trials, how many
run at once, and a search space in the `random` syntax. `tuiexp run x` writes the
study's definition (`logs/studies/NAME.json`); the supervisor's tick drives it
(search/studies.py): it asks Optuna for trials while fewer than `parallel` are
unfinished, queues each as a run whose spec names the study and the trial number,
reports the run's primary metric per epoch, writes `prune.request` into the run
directory when the pruner says so, and tells Optuna how each run ended.

The study's state is an Optuna journal (`logs/studies/NAME.journal`). A trial's run
id is derived from the study and the trial number, so the run directory is the
trial↔run mapping: a supervisor killed at any point finds, on its next tick, each
unfinished trial's run (or queues it, once) and loses or doubles none.

Optuna is imported only where a study exists.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..config.params import builtin_schema
from ..config.values import deep_merge, describe_param_error, overridden, set_dotted
from ..errors import ParamError, UsageError
from ..queue import preflight
from ..store import atomic, runstore
from ..store.events import TERMINAL
from ..store.index import Index
from ..store.metrics import default_mode
from ..store.paths import LogsDir
from ..store.spec import RunSpec, git_commit, new_run_id

log = logging.getLogger("tuiexp.study")



# -- configuration ---------------------------------------------------------------------


# -- files ---------------------------------------------------------------------------------


def folder(logs: LogsDir) -> Path:
    return logs.root / "studies"


def definition_path(logs: LogsDir, name: str) -> Path:
    return folder(logs) / f"{name}.json"


def journal_path(logs: LogsDir, name: str) -> Path:
    return folder(logs) / f"{name}.journal"


def names(logs: LogsDir) -> list[str]:
    """Every study of this logs directory, oldest first."""
    found = [(p.stat().st_mtime, p.stem) for p in folder(logs).glob("*.json")] \
        if folder(logs).is_dir() else []
    return [n for _, n in sorted(found)]


def load_definition(logs: LogsDir, name: str) -> dict[str, Any]:
    data = runstore.read_json(definition_path(logs, name))
    if data is None:
        known = names(logs)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"no study '{name}' in {folder(logs)}{hint} "
                         f"(known: {', '.join(known) or 'none'}).")
    return data


def trial_run_id(definition: dict[str, Any], number: int) -> str:
    """A trial's run id: fixed by the study and the number, so the run directory's
    existence says whether the trial was queued (no second run can be made for it)."""
    return f"{definition['prefix']}-t{number}"


def create(logs: LogsDir, config: Any, experiment: str, overrides: dict[str, Any],
           kind: str = "search") -> str:
    """Write a new study of `experiment` (named after it: `x`, `x-2`, ...), or with
    kind "pbt" a population (search/pbt.py); the supervisor queues its runs. Returns
    the study's name."""
    exp = config.experiment(experiment)
    base = preflight.require(config, experiment, overrides)[0]  # what `check` refuses never starts
    if kind == "pbt":
        if exp.pbt is None:
            raise UsageError(f"experiment '{experiment}' has no `pbt` table.")
        plan: dict[str, Any] = {"kind": "pbt", "pbt": exp.pbt}
    else:
        try:
            optuna_module()
        except ImportError:
            raise UsageError("studies need Optuna: pip install optuna.") from None
        if exp.search is None:
            raise UsageError(f"experiment '{experiment}' has no [search] table.")
        search = dict(exp.search)
        search["space"] = {k: v for k, v in search["space"].items() if not overridden(k, overrides)}
        if not search["space"]:
            raise UsageError("--set fixes every param of the search: nothing is left to search.")
        plan = {"search": search}
    cwd = str((config.path.parent / Path(exp.cwd or ".").expanduser()).resolve())
    template = RunSpec(id="template", experiment=experiment, params=base, command=exp.command,
                       cwd=cwd, seed=base.get("seed"), priority=exp.priority,
                       git_commit=git_commit(config.path.parent),
                       config_path=str(config.path.resolve()), tags=exp.tags, metric=exp.metric,
                       mode=exp.mode, args=exp.args, scalars=exp.scalars)
    mode = exp.mode or (default_mode(exp.metric) if exp.metric else "max")
    with Index(logs) as index:  # the supervisor runs the trials with this queue's settings
        index.put_setting("queue", asdict(config.queue))
    folder(logs).mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        name = experiment if n == 1 else f"{experiment}-{n}"
        definition = {"name": name, "experiment": experiment, "created": time.time(),
                      "prefix": new_run_id(name), **plan, "metric": exp.metric,
                      "direction": "maximize" if mode == "max" else "minimize",
                      "spec": template.to_json()}
        if _write_new(definition_path(logs, name), definition):
            return name
    raise UsageError(f"could not find a free study name for '{experiment}' in {folder(logs)}.")


def _write_new(path: Path, data: dict[str, Any]) -> bool:
    """Write `path` whole unless it exists (two clients cannot take one name)."""
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    atomic.write_json(tmp, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


# -- Optuna ------------------------------------------------------------------------------


def optuna_module() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the supervisor's log says enough
    return optuna


LOCK_GRACE = 5  # seconds after which a journal lock left by a killed supervisor is broken


def open_study(logs: LogsDir, definition: dict[str, Any], seed_offset: int = 0,
               create: bool = True) -> Any:
    """The Optuna study over its journal, with the definition's sampler and pruner
    (made afresh: a sampler's state is not in the journal; its seed moves on by
    `seed_offset`, the trials already asked, so a restart does not repeat them).
    Without `create`, None where the supervisor has not created it yet: a reader
    never writes to the journal."""
    optuna = optuna_module()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    path = str(journal_path(logs, definition["name"]))
    if not create and not os.path.exists(path):
        return None
    # only the supervisor writes (one per logs directory): a lock it left when killed
    # mid-write is stale, and need not hold the next one up for optuna's default 30 s
    storage = JournalStorage(JournalFileBackend(path, JournalFileSymlinkLock(path, LOCK_GRACE)))
    search = definition["search"]
    sampler = make_sampler(optuna, search, search["seed"] + seed_offset)
    pruner = make_pruner(optuna, search, _epochs(definition))
    try:
        return optuna.load_study(study_name=definition["name"], storage=storage, sampler=sampler,
                                 pruner=pruner)
    except KeyError:
        if not create:
            return None
    return optuna.create_study(storage=storage, study_name=definition["name"],
                               direction=definition["direction"], sampler=sampler, pruner=pruner)


def count_trials(logs: LogsDir, definition: dict[str, Any]) -> int:
    return len(open_study(logs, definition).get_trials(deepcopy=False))


def make_sampler(optuna: Any, search: dict[str, Any], seed: int) -> Any:
    kind, startup = search["sampler"], search["startup_trials"]
    s = optuna.samplers
    if kind == "tpe":
        return s.TPESampler(seed=seed, n_startup_trials=startup)
    if kind == "random":
        return s.RandomSampler(seed=seed)
    if kind == "cmaes":
        return s.CmaEsSampler(seed=seed, n_startup_trials=startup)
    return s.GridSampler({k: grid_values(d) for k, d in search["space"].items()}, seed=seed)


def make_pruner(optuna: Any, search: dict[str, Any], epochs: int | None) -> Any:
    kind, warmup = search["pruner"], search["warmup"]
    p = optuna.pruners
    if kind == "median":
        return p.MedianPruner(n_startup_trials=search["startup_trials"], n_warmup_steps=warmup)
    eta = search.get("reduction")  # None: Optuna's default (ASHA 4, Hyperband 3)
    if kind == "asha":
        return p.SuccessiveHalvingPruner(min_resource=max(1, warmup), reduction_factor=eta or 4)
    if kind == "hyperband":
        return p.HyperbandPruner(min_resource=max(1, warmup), max_resource=epochs or "auto",
                                 reduction_factor=eta or 3)
    return p.NopPruner()


def grid_values(dist: dict[str, Any]) -> list[Any]:
    kind, arg = next(iter(dist.items()))
    return list(arg) if kind == "choice" else list(range(int(arg[0]), int(arg[1]) + 1))


def distributions(optuna: Any, space: dict[str, Any]) -> dict[str, Any]:
    """The `random` syntax as Optuna distributions."""
    d = optuna.distributions
    out = {}
    for key, dist in space.items():
        kind, arg = next(iter(dist.items()))
        if kind == "choice":
            out[key] = d.CategoricalDistribution(arg)
        elif kind == "int_uniform":
            out[key] = d.IntDistribution(int(arg[0]), int(arg[1]))
        else:
            out[key] = d.FloatDistribution(float(arg[0]), float(arg[1]), log=kind == "log_uniform")
    return out


def _epochs(definition: dict[str, Any]) -> int | None:
    epochs = definition["spec"].get("params", {}).get("epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


# -- one study, stepped from the supervisor (search/studies.py) -------------------------------


class Driver:
    """One study: asks for trials, queues them as runs, reports, prunes, tells."""

    def __init__(self, logs: LogsDir, index: Any, definition: dict[str, Any]):
        self.logs, self.index, self.definition = logs, index, definition
        self.name: str = definition["name"]
        self.search: dict[str, Any] = definition["search"]
        self.optuna = optuna_module()
        self.study = open_study(logs, definition, count_trials(logs, definition))
        self.dists = distributions(self.optuna, self.search["space"])
        self.finished = False

    def step(self) -> None:
        """Follow every unfinished trial, then ask for new ones while there is room."""
        running = self.optuna.trial.TrialState.RUNNING
        trials = self.study.get_trials(deepcopy=False)
        for t in trials:
            if t.state == running:
                self._follow(t)
        trials = self.study.get_trials(deepcopy=False)
        active = sum(t.state == running for t in trials)
        total = len(trials)
        while active < self.search["parallel"] and total < self.search["trials"]:
            trial = self.study.ask(self.dists)
            self._queue(trial.number, trial._trial_id, trial.params)
            active, total = active + 1, total + 1
        if total >= self.search["trials"] and active == 0:
            self.finished = True
            atomic.write_json(definition_path(self.logs, self.name),
                              {**self.definition, "done": True, "ended": time.time()})
            log.info("study %s finished: %d trials", self.name, total)

    def _queue(self, number: int, trial_id: int, params: dict[str, Any]) -> None:
        """Queue a trial's run; a trial whose params cannot run is told failed."""
        template = RunSpec.from_json(self.definition["spec"])
        run_params = deep_merge(template.params, set_dotted({}, params))
        run_id = trial_run_id(self.definition, number)
        storage = self.study._storage
        storage.set_trial_user_attr(trial_id, "run", run_id)
        if template.command is None:
            try:
                builtin_schema().validate(run_params)
            except ParamError as e:
                storage.set_trial_user_attr(trial_id, "error", describe_param_error(e.key, e.reason))
                self.study.tell(number, state=self.optuna.trial.TrialState.FAIL)
                return
        spec = replace(template, id=run_id, params=run_params, created=time.time(),
                       seed=run_params.get("seed"), study=self.name, trial=number)
        try:
            runstore.create(self.logs, spec)
        except UsageError:
            pass  # made before a restart: its directory is the record, never a second run
        self.index.add_run(spec)
        log.info("study %s: trial %d queued as %s", self.name, number, run_id)

    def _follow(self, t: Any) -> None:
        """One unfinished trial: queue its run if a restart lost that, report new epochs,
        prune, and tell Optuna how the run ended."""
        run_id = trial_run_id(self.definition, t.number)
        paths = self.logs.run(run_id)
        if not paths.dir.exists():  # asked, not queued: the supervisor stopped in between
            trial = self.optuna.trial.Trial(self.study, t._trial_id)
            # params it has are kept; any the sampler had not chosen yet are chosen now
            params = {name: trial._suggest(name, dist) for name, dist in self.dists.items()}
            self._queue(t.number, t._trial_id, params)
            return
        row = self.index.run(run_id)
        if row is None:
            self.index.reindex_run(run_id)
            row = self.index.run(run_id)
        if row is None or row.status in ("queued", "starting"):
            return
        reported = self._report(t, row)
        if row.status in TERMINAL:
            self._tell(t, row)
        elif reported is not None and row.status == "running" and not paths.prune.exists():
            if self.optuna.trial.Trial(self.study, t._trial_id).should_prune():
                atomic.write_text(paths.prune, f"{time.time()}\n")
                log.info("study %s: pruning trial %d (%s)", self.name, t.number, run_id)
            # the verdict on this epoch is in: the trial, waiting at its epoch's end, goes on
            atomic.write_json(paths.judged, {"epoch": reported})

    def _report(self, t: Any, row: Any) -> int | None:
        """Report the run's primary metric at each new epoch; the last one, if any was new."""
        if not row.metric:
            return None
        after = max(t.intermediate_values, default=-1)
        points = [(x, v) for x, v in self.index.points(row.num, row.metric, "epoch", after=after)
                  if math.isfinite(v)]
        if not points:
            return None
        trial = self.optuna.trial.Trial(self.study, t._trial_id)
        for x, v in points:
            trial.report(v, x)
        return int(points[-1][0])

    def _tell(self, t: Any, row: Any) -> None:
        states = self.optuna.trial.TrialState
        self.study._storage.set_trial_user_attr(t._trial_id, "status", row.status)
        if row.status == "finished" and row.best is not None and math.isfinite(row.best):
            self.study.tell(t.number, row.best)
        elif row.status == "pruned":
            self.study.tell(t.number, state=states.PRUNED)
        else:  # failed, crashed, diverged, oom, cancelled, or finished without the metric
            self.study.tell(t.number, state=states.FAIL)
        log.info("study %s: trial %d (%s) %s", self.name, t.number, row.id, row.status)


# -- the study as text (`tuiexp study show`, the dashboard) ------------------------------------


def summary(logs: LogsDir, definition: dict[str, Any]) -> str:
    """The study's header, one line per trial, the best so far and which params mattered."""
    study = open_study(logs, definition, create=False)
    if study is None:
        return f"study {definition['name']}: no trials yet (the supervisor has not started it)."
    trials = study.get_trials(deepcopy=False)
    with Index(logs, readonly=True) as index:
        rows = {t.number: index.run(trial_run_id(definition, t.number)) for t in trials}
    return "\n".join((describe(definition, trials, rows), best_line(study, definition, rows),
                      importance(study)))


def describe(definition: dict[str, Any], trials: list[Any], rows: dict[int, Any]) -> str:
    """The study's header and one line per trial: number, run id, status, value, params."""
    s = definition["search"]
    metric = definition.get("metric") or "the primary metric"
    state = "done" if definition.get("done") else "running"
    lines = [f"study {definition['name']} ({state}): {len(trials)}/{s['trials']} trials, "
             f"{s['sampler']} sampler, {s['pruner']} pruner, {definition['direction']} {metric}"]
    lines.append(f"  {'#':>3}  {'run':<36} {'status':<9} {'value':>10}  params")
    for t in trials:
        row = rows.get(t.number)
        run_id = trial_run_id(definition, t.number)
        status = row.status if row is not None else t.user_attrs.get("status", t.state.name.lower())
        value = t.value if t.value is not None else (row.best if row is not None else None)
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        if t.user_attrs.get("error"):
            params += f"  ({t.user_attrs['error']})"
        lines.append(f"  {t.number:>3}  {run_id:<36} {status:<9} {_fmt(value):>10}  {params}")
    return "\n".join(lines)


def best_line(study: Any, definition: dict[str, Any], rows: dict[int, Any]) -> str:
    try:
        best = study.best_trial
    except ValueError:
        return "best so far: none yet (no trial has finished)"
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
    return (f"best so far: trial {best.number} ({trial_run_id(definition, best.number)}) "
            f"value {_fmt(best.value)} with {params}")


def importance(study: Any) -> str:
    """Which params mattered (Optuna's fANOVA importance), or why it cannot say yet."""
    optuna = optuna_module()
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 3:
        return (f"parameter importance: too few finished trials to tell ({len(done)} finished, "
                "at least 3 needed)")
    try:
        ranked = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as e:
        return f"parameter importance: not available ({e})"
    if not ranked:
        return "parameter importance: no param varied among the finished trials"
    return "parameter importance: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked.items())


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return json.dumps(v) if not isinstance(v, (int, str)) else str(v)
