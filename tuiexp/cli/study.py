"""`tuiexp study ls|show`: the studies of a logs directory (search/study.py), and
`tuiexp run X` for an experiment with a [search] table (it starts a study)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..errors import UsageError
from ..queue.client import Client
from ..search import outcome, pbt, studies, study, view
from ..store import lock
from ..store.events import TERMINAL
from ..store.paths import LogsDir
from ..store.reconcile import reconcile_active


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


def start_study(logs: LogsDir, config: Any, experiment: str, overrides: dict[str, Any],
                wait: bool = False) -> int:
    """Write the study and make sure a supervisor runs it; with `wait`, follow it."""
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
              f"{', '.join(p['perturb'])}", flush=True)
    else:
        s = exp.search
        print(f"study {name}: {s['trials']} trials, {s['parallel']} at a time, "
              f"{s['sampler']} sampler, {s['pruner']} pruner", flush=True)
    if wait:
        return follow_studies(logs, [name])
    print(f"follow it with: tuiexp wait --study {name}")
    return 0


def follow_studies(logs: LogsDir, names: list[str], poll: float = 0.25) -> int:
    """Follow studies (and populations) until each has ended: one line per trial as its
    run ends, then each study's best. Non-zero if a study ended with no complete trial.
    The supervisor is started whenever none runs (between two trials nothing is queued)."""
    from ..queue import daemon

    definitions = {n: study.load_definition(logs, n) for n in names}
    followers = {n: _Follower(logs, d) for n, d in definitions.items()}
    try:
        with Client(logs, autostart=False, reading=True) as client:
            while True:
                reconcile_active(client.index)
                for f in followers.values():
                    f.poll(client.index)
                if all(f.done for f in followers.values()):
                    break
                if not lock.is_running(logs) and not daemon.spawn(logs):
                    raise UsageError(f"the supervisor did not start; see {logs.daemon_log}.")
                time.sleep(poll)
    except KeyboardInterrupt:
        print(f"stopped following; the stud{'ies go' if len(names) > 1 else 'y goes'} on "
              f"(tuiexp wait {' '.join('--study ' + n for n in names)} follows again).",
              file=sys.stderr)
        return 130
    return max(f.close() for f in followers.values())


class _Follower:
    """One study (or population) followed: prints each trial (member) once, as it ends."""

    def __init__(self, logs: LogsDir, definition: dict[str, Any]):
        self.logs, self.definition = logs, definition
        self.pbt = definition.get("kind") == "pbt"
        self.printed: set[Any] = set()
        self.study: Any = None  # Optuna's study, opened once the supervisor made it
        self.view: view.StudyView | None = None
        self.done = False
        self.finished = False  # (a population) some member finished

    def poll(self, index: Any) -> None:
        if self.pbt:
            self._poll_members(index)
            return
        if self.study is None:
            self.study = study.open_study(self.logs, self.definition, create=False)
        self.view = view.read(self.logs, self.definition, index, self.study)
        ended = [t for t in self.view.trials if t.outcome.ended and t.number not in self.printed]
        for t in sorted(ended, key=lambda t: (t.ended or 0.0, t.number)):
            print(view.ended_line(t), flush=True)
            self.printed.add(t.number)
        self.done = self.view.done

    def _poll_members(self, index: Any) -> None:
        """A population: each member run as it ends; done once its definition says so."""
        prefix = f"{self.definition['prefix']}-"
        rows = [r for r in index.runs(experiment=[self.definition["experiment"]])
                if r.id.startswith(prefix)]
        for r in rows:
            if r.status in TERMINAL and r.id not in self.printed:
                print(f"member {r.id}  {r.status}  {view.fmt(r.best)}", flush=True)
                self.printed.add(r.id)
        self.finished = any(r.status == "finished" for r in rows)
        definition = study.load_definition(self.logs, self.definition["name"])
        self.done = bool(definition.get("done")) and all(r.status in TERMINAL for r in rows)

    def close(self) -> int:
        """Print the end (the best trial, or the population's summary); 1 if nothing finished."""
        if self.pbt:
            print(pbt.summary(self.logs, study.load_definition(self.logs, self.definition["name"])))
            return 0 if self.finished else 1
        v = self.view
        assert v is not None
        counts = ", ".join(f"{v.count(s)} {w}" for s, w in (
            (outcome.COMPLETE, "finished"), (outcome.PRUNED, "pruned"), (outcome.FAIL, "failed"))
            if v.count(s))
        print(f"study {v.name} done: {len(v.trials)} trials ({counts or 'none ran'})")
        print(view.best_line(v).replace("best so far", "best"))
        return 0 if v.best is not None else 1


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
    studies.wake(logs)
    return 0


def cmd_study_show(args: argparse.Namespace) -> int:
    print(studies.summary(LogsDir.at(args.logs), args.name))
    return 0
