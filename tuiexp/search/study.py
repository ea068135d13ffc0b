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
import itertools
import logging
import math
import os
import random
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
from ..store.schema import total_epochs
from ..store.spec import RunSpec, git_commit, new_run_id
from .outcome import COMPLETE, FAIL, PRUNED, outcome

log = logging.getLogger("tuiexp.study")


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


def journal(logs: LogsDir, name: str) -> Any:
    """The study's Optuna storage (a JournalStorage over its journal file)."""
    optuna_module()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    path = str(journal_path(logs, name))
    # only the supervisor writes (one per logs directory): a lock it left when killed
    # mid-write is stale, and need not hold the next one up for optuna's default 30 s
    return JournalStorage(JournalFileBackend(path, JournalFileSymlinkLock(path, LOCK_GRACE)))


def open_study(logs: LogsDir, definition: dict[str, Any], seed_offset: int = 0,
               create: bool = True, storage: Any = None) -> Any:
    """The Optuna study over its journal, with the definition's sampler and pruner
    (made afresh: a sampler's state is not in the journal; its seed moves on by
    `seed_offset`, the trials already asked, so a restart does not repeat them).
    Without `create`, None where the supervisor has not created it yet: a reader
    never writes to the journal."""
    optuna = optuna_module()
    if not create and not journal_path(logs, definition["name"]).exists():
        return None
    storage = storage if storage is not None else journal(logs, definition["name"])
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


def trials_asked(storage: Any, name: str) -> int:
    """How many trials the study has asked for (0 before it exists)."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    waiting = optuna_module().trial.TrialState.WAITING
    return sum(t.state != waiting for t in storage.get_all_trials(study_id, deepcopy=False))


def make_sampler(optuna: Any, search: dict[str, Any], seed: int) -> Any:
    """The definition's sampler. A grid's points are enqueued trials (`grid_points`), each
    with every param fixed, so the sampler behind them draws nothing: Optuna's GridSampler
    would stop the study from inside `tell` (optuna#5141), which only works in `optimize`."""
    kind, startup = search["sampler"], search["startup_trials"]
    s = optuna.samplers
    if kind == "tpe":
        return s.TPESampler(seed=seed, n_startup_trials=startup)
    if kind == "cmaes":
        return s.CmaEsSampler(seed=seed, n_startup_trials=startup)
    return s.RandomSampler(seed=seed)


def grid_points(search: dict[str, Any]) -> list[dict[str, Any]]:
    """A grid study's trials: every point (or `trials` of them), in an order shuffled by
    the study's seed, as GridSampler would visit them."""
    space = {k: grid_values(d) for k, d in search["space"].items()}
    points = [dict(zip(space, combo, strict=True)) for combo in itertools.product(*space.values())]
    random.Random(search["seed"]).shuffle(points)
    return points[: search["trials"]]


def make_pruner(optuna: Any, search: dict[str, Any], epochs: int | None) -> Any:
    kind, warmup = search["pruner"], search["warmup"]
    p = optuna.pruners
    if kind == "median":
        return p.MedianPruner(n_startup_trials=search["startup_trials"], n_warmup_steps=warmup)
    eta = reduction(search)
    if kind == "asha":
        return p.SuccessiveHalvingPruner(min_resource=max(1, warmup), reduction_factor=eta)
    if kind == "hyperband":
        return p.HyperbandPruner(min_resource=max(1, warmup), max_resource=epochs or "auto",
                                 reduction_factor=eta)
    return p.NopPruner()


def reduction(search: dict[str, Any]) -> int:
    """ASHA's or Hyperband's reduction factor (Optuna's defaults: 4 and 3)."""
    eta = search.get("reduction")
    return int(eta) if eta else (4 if search["pruner"] == "asha" else 3)


def next_verdict(search: dict[str, Any], completed: int, after: int,
                 epochs: int | None) -> int | None:
    """The first epoch after `after` at which the study's pruner can stop a trial, with
    `completed` trials complete; None where it can at none (as things stand: a median
    pruner starts judging once `startup_trials` trials are complete). A trial waits for
    a verdict only there. The run's last epoch (`epochs`) is never judged: a trial that
    trained to its end is a result, not a candidate for pruning."""
    kind = search["pruner"]
    if kind == "median":  # MedianPruner: every step from n_warmup_steps on
        if completed < max(1, search["startup_trials"]):
            return None
        at = max(after + 1, search["warmup"])
    elif kind in ("asha", "hyperband"):  # rungs at min_resource·η^k (Hyperband: every bracket's)
        at, eta = max(1, search["warmup"]), reduction(search)
        while at <= after:
            at *= eta
    else:
        return None
    return None if epochs is not None and at >= epochs else at


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


def suggest(optuna: Any, trial: Any, name: str, dist: Any) -> Any:
    """`trial.suggest_*` for a distribution: the value the trial has, or a new one."""
    d = optuna.distributions
    if isinstance(dist, d.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, d.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _epochs(definition: dict[str, Any]) -> int | None:
    return total_epochs(definition["spec"].get("params", {}))


# -- one study, stepped from the supervisor (search/studies.py) -------------------------------


class Driver:
    """One study: asks for trials, queues them as runs, reports, prunes, tells.

    It holds the `Trial` of each unfinished trial (from `ask`, or made once after a
    restart), so reports and verdicts go through Optuna's public Trial API."""

    def __init__(self, logs: LogsDir, index: Any, definition: dict[str, Any]):
        self.logs, self.index, self.definition = logs, index, definition
        self.name: str = definition["name"]
        self.search: dict[str, Any] = definition["search"]
        self.optuna = optuna_module()
        self.storage = journal(logs, self.name)
        self.study = open_study(logs, definition, trials_asked(self.storage, self.name),
                                storage=self.storage)
        self.study_id = self.storage.get_study_id_from_name(self.name)
        if self.search["sampler"] == "grid":
            for point in grid_points(self.search):  # (a restart enqueues none twice)
                self.study.enqueue_trial(point, skip_if_exists=True)
        self.dists = distributions(self.optuna, self.search["space"])
        self.live: dict[int, Any] = {}  # trial number -> its Trial, while unfinished
        self.judged: dict[int, dict[str, Any]] = {}  # trial number -> judged.json as written
        self.finished = False

    def step(self) -> None:
        """Follow every unfinished trial, then ask for new ones while there is room."""
        states = self.optuna.trial.TrialState
        trials = self.study.get_trials(deepcopy=False)
        completed = sum(t.state == states.COMPLETE for t in trials)
        for t in trials:
            if t.state == states.RUNNING:
                completed += self._follow(t, completed)
        trials = [t for t in self.study.get_trials(deepcopy=False) if t.state != states.WAITING]
        active = sum(t.state == states.RUNNING for t in trials)
        total = len(trials)
        while active < self.search["parallel"] and total < self.search["trials"]:
            trial = self.study.ask(self.dists)
            self.live[trial.number] = trial
            if self._queue(trial, trial.params, completed):
                active += 1
            total += 1
        if total >= self.search["trials"] and active == 0:
            self.finished = True
            atomic.write_json(definition_path(self.logs, self.name),
                              {**self.definition, "done": True, "ended": time.time()})
            log.info("study %s finished: %d trials", self.name, total)

    def _trial(self, number: int) -> Any:
        """The Trial of an unfinished trial (made once after a supervisor's restart)."""
        if number not in self.live:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
            self.live[number] = self.optuna.trial.Trial(self.study, trial_id)
        return self.live[number]

    def _queue(self, trial: Any, params: dict[str, Any], completed: int) -> bool:
        """Queue a trial's run; a trial whose params cannot run is told failed (False)."""
        template = RunSpec.from_json(self.definition["spec"])
        run_params = deep_merge(template.params, set_dotted({}, params))
        run_id = trial_run_id(self.definition, trial.number)
        trial.set_user_attr("run", run_id)
        if template.command is None:
            try:
                builtin_schema().validate(run_params)
            except ParamError as e:
                trial.set_user_attr("error", describe_param_error(e.key, e.reason))
                self._finish(trial, self.optuna.trial.TrialState.FAIL)
                return False
        spec = replace(template, id=run_id, params=run_params, created=time.time(),
                       seed=run_params.get("seed"), study=self.name, trial=trial.number)
        try:
            paths = runstore.create(self.logs, spec)
        except UsageError:
            paths = self.logs.run(run_id)  # made before a restart: its directory is the record
        # before it starts: where it need not wait for a verdict
        self._write_judged(trial.number, paths, 0, total_epochs(run_params), completed)
        self.index.add_run(spec)
        log.info("study %s: trial %d queued as %s", self.name, trial.number, run_id)
        return True

    def _follow(self, t: Any, completed: int) -> int:
        """One unfinished trial: queue its run if a restart lost that, report new epochs,
        prune, and tell Optuna how the run ended. Returns 1 if it was told complete."""
        trial = self._trial(t.number)
        run_id = trial_run_id(self.definition, t.number)
        paths = self.logs.run(run_id)
        if not paths.dir.exists():  # asked, not queued: the supervisor stopped in between
            # params it has are kept; any the sampler had not chosen yet are chosen now
            params = {n: suggest(self.optuna, trial, n, d) for n, d in self.dists.items()}
            self._queue(trial, params, completed)
            return 0
        row = self.index.run(run_id)
        if row is None:
            self.index.reindex_run(run_id)
            row = self.index.run(run_id)
        if row is None or row.status in ("queued", "starting"):
            return 0
        reported = self._report(trial, t, row)
        if row.status in TERMINAL:
            return self._tell(trial, row)
        if row.status != "running" or paths.prune.exists():
            return 0
        epochs = row.epochs
        judged = self.judged[t.number]["epoch"] if t.number in self.judged else \
            max(t.intermediate_values, default=0)  # (after a restart: as far as reported)
        if reported is not None and (epochs is None or reported < epochs):
            if trial.should_prune():
                runstore.request_prune(paths, reported)
                atomic.write_json(paths.judged, {"epoch": reported, "next": None}, durable=False)
                log.info("study %s: pruning trial %d (%s) after epoch %d", self.name,
                         t.number, run_id, reported)
                return 0
            judged = reported
        # the verdict on this epoch is in (the trial, waiting at its end, goes on), and
        # where the next can come may have moved (the median pruner's startup is over)
        self._write_judged(t.number, paths, judged, epochs, completed)
        return 0

    def _write_judged(self, number: int, paths: Any, judged: int, epochs: int | None,
                      completed: int) -> None:
        """judged.json: the last epoch judged, and the next one a verdict can come at (the
        run waits only there: docs/SEARCH.md); written when it changes."""
        now = {"epoch": judged, "next": next_verdict(self.search, completed, judged, epochs)}
        if self.judged.get(number) != now:  # (a hint: rewritten after a restart, not fsynced)
            atomic.write_json(paths.judged, now, durable=False)
            self.judged[number] = now

    def _report(self, trial: Any, t: Any, row: Any) -> int | None:
        """Report the run's primary metric at each new epoch; the last one, if any was new."""
        if not row.metric:
            return None
        after = max(t.intermediate_values, default=-1)
        points = [(x, v) for x, v in self.index.points(row.num, row.metric, "epoch", after=after)
                  if math.isfinite(v)]
        for x, v in points:
            trial.report(v, x)
        return int(points[-1][0]) if points else None

    def _tell(self, trial: Any, row: Any) -> int:
        """Tell Optuna how the run ended (search/outcome.py decides); 1 if complete."""
        states = self.optuna.trial.TrialState
        [row] = self.index.attach_summaries([row], [row.metric] if row.metric else [])
        said = outcome(row)
        if said.state == FAIL:  # (why: one attribute, each journal write costs an fsync)
            trial.set_user_attr("reason", said.reason)
        if said.state == COMPLETE:
            self._finish(trial, None, said.value)
        else:
            self._finish(trial, states.PRUNED if said.state == PRUNED else states.FAIL)
        log.info("study %s: trial %d (%s) %s%s", self.name, trial.number, row.id, row.status,
                 f" ({said.reason})" if said.reason else "")
        return int(said.state == COMPLETE)

    def _finish(self, trial: Any, state: Any, value: float | None = None) -> None:
        self.study.tell(trial, value, state=state)
        self.live.pop(trial.number, None)
        self.judged.pop(trial.number, None)
