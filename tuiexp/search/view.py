"""A study as its runs say it is: the one read model of `tuiexp study show`, `run --wait` /
`wait --study` and the dashboard's study screen.

Each trial's state and value come from its run's index row through `outcome` (the same
function the supervisor tells Optuna with), so the view agrees with `ls` even where
Optuna has not been told yet (no supervisor runs); Optuna's journal gives the trials,
their params, and the state of a trial that never got a run (its params refused)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..store.index import Index
from ..store.paths import LogsDir
from .outcome import COMPLETE, FAIL, PRUNED, RUNNING, Outcome, outcome
from .study import distributions, open_study, optuna_module, trial_run_id


@dataclass(frozen=True)
class TrialView:
    """One trial: its run, the run's status (Optuna's state for a trial without a run),
    its outcome, params, and when its run ended."""

    number: int
    run: str
    status: str
    outcome: Outcome
    params: dict[str, Any]
    ended: float | None = None

    @property
    def state(self) -> str:
        return self.outcome.state


@dataclass(frozen=True)
class StudyView:
    definition: dict[str, Any]
    trials: list[TrialView]
    metric: str | None = None  # the objective: the definition's, else the runs' resolved one

    @property
    def name(self) -> str:
        return str(self.definition["name"])

    @property
    def wanted(self) -> int:
        """The trials the study runs in all."""
        return int(self.definition["search"]["trials"])

    @property
    def done(self) -> bool:
        """Every trial asked for and ended (the supervisor need not have told Optuna)."""
        return bool(self.definition.get("done")) or (
            len(self.trials) >= self.wanted and all(t.outcome.ended for t in self.trials))

    @property
    def best(self) -> TrialView | None:
        complete = [t for t in self.trials if t.state == COMPLETE and t.outcome.value is not None]
        if not complete:
            return None
        pick = max if self.definition["direction"] == "maximize" else min
        return pick(complete, key=lambda t: t.outcome.value or 0.0)

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)


def read(logs: LogsDir, definition: dict[str, Any], index: Index, study: Any = None) -> StudyView:
    """The study now: its trials from Optuna's journal (`study`, open already, or opened
    here read-only), each with its run's row from `index` (refreshed by the caller)."""
    study = study if study is not None else open_study(logs, definition, create=False)
    if study is None:  # the supervisor has not created it yet
        return StudyView(definition, [])
    waiting = optuna_module().trial.TrialState.WAITING
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != waiting]
    ids = {t.number: trial_run_id(definition, t.number) for t in trials}
    rows = {n: row for n, rid in ids.items() if (row := index.run(rid)) is not None}
    index.attach_summaries(list(rows.values()), {r.metric for r in rows.values() if r.metric})
    out = []
    for t in trials:
        row = rows.get(t.number)
        if row is not None:
            out.append(TrialView(t.number, ids[t.number], row.status, outcome(row), t.params,
                                 row.ended))
        else:  # no run: asked, not queued yet (RUNNING), or its params refused (FAIL)
            state = t.state.name if t.state.name in (COMPLETE, PRUNED, FAIL) else RUNNING
            said = Outcome(state, t.value, str(t.user_attrs.get("error", "")))
            ended = t.datetime_complete.timestamp() if t.datetime_complete else None
            status = "asked" if state == RUNNING else t.state.name.lower()
            out.append(TrialView(t.number, ids[t.number], status, said, t.params, ended))
    metric = definition.get("metric") or next((r.metric for r in rows.values() if r.metric), None)
    return StudyView(definition, out, metric)


# -- as text ----------------------------------------------------------------------------


def summary(view: StudyView) -> str:
    """`tuiexp study show`: the header, one line per trial, the best, what mattered."""
    lines = [header(view), f"  {'#':>3}  {'run':<36} {'status':<9} {'value':>10}  params"]
    lines += [trial_line(t) for t in view.trials]
    return "\n".join([*lines, best_line(view), importance(view)])


def header(view: StudyView) -> str:
    s, d = view.definition["search"], view.definition
    metric = view.metric or "the primary metric"
    state = "done" if view.done else "running"
    return (f"study {view.name} ({state}): {len(view.trials)}/{view.wanted} trials, "
            f"{s['sampler']} sampler, {s['pruner']} pruner, {d['direction']} {metric}")


def trial_line(t: TrialView) -> str:
    """A trial as a row of `study show`: number, run, status, value, params, why it failed."""
    return f"  {t.number:>3}  {t.run:<36} {t.status:<9} {fmt(t.outcome.value):>10}  {_params(t)}"


def ended_line(t: TrialView) -> str:
    """A trial as it ends, for `run --wait` / `wait --study`: the same, unpadded."""
    return f"trial {t.number}  {t.run}  {t.status}  {fmt(t.outcome.value)}  {_params(t)}"


def _params(t: TrialView) -> str:
    params = " ".join(f"{k}={fmt(v)}" for k, v in t.params.items())
    if t.state != COMPLETE and t.outcome.reason and t.status != "pruned":
        params += f"  ({t.outcome.reason})"
    return params


def best_line(view: StudyView) -> str:
    best = view.best
    if best is None:
        return "best so far: none yet (no trial has finished)"
    params = ", ".join(f"{k}={fmt(v)}" for k, v in best.params.items())
    return f"best so far: trial {best.number} ({best.run}) value {fmt(best.outcome.value)} with {params}"


def importance(view: StudyView) -> str:
    """Which params mattered: Optuna's fANOVA importance over the complete trials, as the
    runs say them (an in-memory study of those), or why it cannot say yet."""
    done = [t for t in view.trials if t.state == COMPLETE and t.outcome.value is not None]
    if len(done) < 3:
        return (f"parameter importance: too few finished trials to tell ({len(done)} finished, "
                "at least 3 needed)")
    optuna = optuna_module()
    dists = distributions(optuna, view.definition["search"]["space"])
    study = optuna.create_study(direction=view.definition["direction"])
    try:
        study.add_trials([optuna.trial.create_trial(
            params=t.params, distributions={k: dists[k] for k in t.params if k in dists},
            value=t.outcome.value) for t in done])
        ranked = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as e:
        return f"parameter importance: not available ({e})"
    if not ranked:
        return "parameter importance: no param varied among the finished trials"
    return "parameter importance: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked.items())


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return json.dumps(v) if not isinstance(v, (int, str)) else str(v)
