"""`tuiexp study ls|show`: the studies of a logs directory (search/study.py), and
`tuiexp run X` for an experiment with a [search] table (it starts a study)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError
from ..search import studies, study
from ..store.paths import LogsDir


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
    from ..queue import daemon

    exp = config.experiment(experiment)
    name = study.create(logs, config, experiment, overrides,
                          kind="pbt" if exp.pbt is not None else "search")
    if not daemon.spawn(logs):
        raise UsageError(f"the supervisor did not start; see {logs.daemon_log}.")
    if exp.pbt is not None:
        p = exp.pbt
        print(f"population {name}: {p['population']} members, every {p['interval']} epochs the "
              f"bottom {p['quantile']:.0%} replaced by forks of the top, perturbing "
              f"{', '.join(p['perturb'])}")
    else:
        s = exp.search
        print(f"study {name}: {s['trials']} trials, {s['parallel']} at a time, "
              f"{s['sampler']} sampler, {s['pruner']} pruner")
    print(f"follow it with: tuiexp study show {name}")
    return 0


def cmd_study_ls(args: argparse.Namespace) -> int:
    logs = LogsDir.at(args.logs)
    found = study.names(logs)
    if not found:
        print(f"no studies in {study.folder(logs)}")
    for name in found:
        d = study.load_definition(logs, name)
        state = "done" if d.get("done") else "running"
        size = (f"{d['pbt']['population']:>4} members" if d.get("kind") == "pbt"
                else f"{d['search']['trials']:>4} trials ")
        print(f"{name:<24} {d['experiment']:<20} {size}  {state}")
    return 0


def cmd_study_show(args: argparse.Namespace) -> int:
    print(studies.summary(LogsDir.at(args.logs), args.name))
    return 0
