"""`tuiexp study ls|show`: the studies of a logs directory (core/study.py), and
`tuiexp run X` for an experiment with a [search] table (it starts a study)."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from .core import study as studies
from .core.errors import UsageError
from .core.paths import LogsDir


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser | None = None
                ) -> None:
    """Register `study` (ls, show) on an argparse subparsers object."""
    parents = [common] if common is not None else []
    p = sub.add_parser("study", help="Optuna studies: trials, best so far, what mattered",
                       description="Studies started by `tuiexp run` for an experiment with a "
                       "[search] table.")
    verbs = p.add_subparsers(dest="study_verb", metavar="VERB", required=True)
    ls = verbs.add_parser("ls", parents=parents, help="list the studies")
    ls.set_defaults(func=cmd_study_ls)
    show = verbs.add_parser("show", parents=parents,
                            help="a study's trials, the best so far, and parameter importance")
    show.add_argument("name", metavar="NAME", help="the study (its experiment's name, or NAME-2...)")
    show.set_defaults(func=cmd_study_show)


def start_study(logs: LogsDir, config: Any, experiment: str, overrides: dict[str, Any]) -> int:
    """Write the study and make sure a supervisor runs it."""
    from .core import daemon

    name = studies.create(logs, config, experiment, overrides)
    search = config.experiment(experiment).search
    if not daemon.spawn(logs):
        raise UsageError(f"the supervisor did not start; see {logs.daemon_log}.")
    print(f"study {name}: {search['trials']} trials, {search['parallel']} at a time, "
          f"{search['sampler']} sampler, {search['pruner']} pruner")
    print(f"follow it with: tuiexp study show {name}")
    return 0


def cmd_study_ls(args: argparse.Namespace) -> int:
    logs = LogsDir.at(args.logs)
    found = studies.names(logs)
    if not found:
        print(f"no studies in {studies.folder(logs)}")
    for name in found:
        d = studies.load_definition(logs, name)
        state = "done" if d.get("done") else "running"
        print(f"{name:<24} {d['experiment']:<20} {d['search']['trials']:>4} trials  {state}")
    return 0


def cmd_study_show(args: argparse.Namespace) -> int:
    from .core.index import Index

    logs = LogsDir.at(args.logs)
    definition = studies.load_definition(logs, args.name)
    study = studies.open_study(logs, definition, create=False)
    if study is None:
        print(f"study {definition['name']}: no trials yet (the supervisor has not started it).")
        return 0
    trials = study.get_trials(deepcopy=False)
    with Index(logs, readonly=True) as index:
        rows = {t.number: index.run(studies.trial_run_id(definition, t.number)) for t in trials}
    print(describe(definition, trials, rows))
    print(best_line(study, definition, rows))
    print(importance(study))
    return 0


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
        run_id = studies.trial_run_id(definition, t.number)
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
    return (f"best so far: trial {best.number} ({studies.trial_run_id(definition, best.number)}) "
            f"value {_fmt(best.value)} with {params}")


def importance(study: Any) -> str:
    """Which params mattered (Optuna's fANOVA importance), or why it cannot say yet."""
    optuna = studies.optuna_module()
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
