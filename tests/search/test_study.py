"""Studies end to end: a real supervisor drives Optuna, trials are real run processes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from tuiexp.search import study as studies
from tuiexp.store import lock, runstore
from tuiexp.store.paths import LogsDir

from ..conftest import tuiexp, wait_for
from .conftest import study_config

SCRIPT = Path(__file__).with_name("trial_script.py")


def config(where: Path, **kw: Any) -> Path:
    return study_config(where, SCRIPT, **kw)


def study_done(logs: LogsDir, name: str = "tiny") -> bool:
    return bool((runstore.read_json(studies.definition_path(logs, name)) or {}).get("done"))


def trials_of(logs: LogsDir, name: str = "tiny") -> list:
    definition = studies.load_definition(logs, name)
    return studies.open_study(logs, definition).get_trials(deepcopy=False)


def run_dirs(logs: LogsDir) -> list[str]:
    return sorted(runstore.run_ids(logs))


def test_a_study_runs_prunes_and_reports(workdir: Path) -> None:
    # a verdict has 5 epochs of 0.5 s to arrive: pruning is not a race on a busy machine
    config(workdir, trials=6, parallel=1, sleep=0.5, epochs=6, extra="crash_above = 0.9")
    out = tuiexp(workdir, "run", "tiny", check=True).stdout
    assert "study tiny: 6 trials, 1 at a time, tpe sampler, median pruner" in out
    logs = LogsDir.at(workdir / "logs")
    wait_for(lambda: study_done(logs), timeout=240, every=0.2)

    trials = trials_of(logs)
    definition = studies.load_definition(logs, "tiny")
    assert [t.number for t in trials] == list(range(6))
    assert run_dirs(logs) == sorted(studies.trial_run_id(definition, n) for n in range(6))
    states = [t.state.name for t in trials]
    assert "PRUNED" in states and "COMPLETE" in states and "RUNNING" not in states
    pruned_at = []
    listed = {r["id"]: r["status"] for r in json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)}
    for t in trials:  # each run is the trial: its spec says so, its status matches Optuna's
        run = studies.trial_run_id(definition, t.number)
        spec = runstore.load_spec(logs.run(run))
        assert (spec.study, spec.trial) == ("tiny", t.number)
        assert spec.params["x"] == t.params["x"] and spec.params["width"] == t.params["width"]
        status = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed"}[t.state.name]
        assert listed[run] == status
        if status == "failed":  # Optuna's journal says why, for its own dashboards
            assert t.user_attrs["reason"].startswith("failed: ValueError")
        if status == "pruned":
            assert logs.run(run).prune.exists() and t.last_step is not None and t.last_step < 6
            pruned_at.append((t.last_step, runstore.read_json(logs.run(run).judged)))
    # a trial waits at its epoch's end for the verdict on it: stopped there, not one later
    assert any((judged or {}).get("epoch") == last for last, judged in pruned_at), pruned_at

    shown = tuiexp(workdir, "study", "show", "tiny", check=True).stdout
    assert "study tiny (done): 6/6 trials" in shown and "pruned" in shown
    assert "best so far: trial" in shown and "parameter importance:" in shown
    listed = tuiexp(workdir, "ls", check=True).stdout
    assert "pruned" in listed


def test_a_crashing_trial_fails_and_the_study_goes_on(workdir: Path) -> None:
    config(workdir, trials=3, parallel=1, sleep=0.0, extra="crash_above = -1.0")
    tuiexp(workdir, "run", "tiny", check=True)
    logs = LogsDir.at(workdir / "logs")
    wait_for(lambda: study_done(logs), timeout=180, every=0.2)
    trials = trials_of(logs)
    assert [t.state.name for t in trials] == ["FAIL"] * 3  # every trial crashed; all 3 ran
    shown = tuiexp(workdir, "study", "show", "tiny", check=True).stdout
    assert "failed" in shown and "best so far: none yet" in shown
    assert "too few finished trials" in shown


def test_killing_the_supervisor_mid_study_loses_and_doubles_nothing(workdir: Path) -> None:
    config(workdir, trials=8, parallel=2, sleep=0.3)
    tuiexp(workdir, "run", "tiny", check=True)
    logs = LogsDir.at(workdir / "logs")
    wait_for(lambda: len(run_dirs(logs)) >= 3, timeout=120, every=0.1)
    pid = int((lock.info(logs) or {})["pid"])
    os.kill(pid, signal.SIGKILL)  # no goodbye: its runs go on in their own sessions
    wait_for(lambda: not lock.is_running(logs), timeout=10)
    tuiexp(workdir, "daemon", "start", check=True)
    wait_for(lambda: study_done(logs), timeout=240, every=0.2)

    trials = trials_of(logs)
    definition = studies.load_definition(logs, "tiny")
    assert [t.number for t in trials] == list(range(8))
    assert run_dirs(logs) == sorted(studies.trial_run_id(definition, n) for n in range(8))
    # every trial ran exactly once and ended as its run did: none failed for the restart
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    for t in trials:
        run = logs.run(studies.trial_run_id(definition, t.number))
        proc = runstore.read_json(run.proc) or {}
        assert proc.get("attempt") == 1


def test_a_trial_asked_but_never_queued_is_queued_once(tmp_path: Path) -> None:
    from tuiexp.config import loader
    from tuiexp.store.index import Index

    cfg = loader.load(config(tmp_path, trials=2, parallel=1, sleep=0.0))
    logs = LogsDir.at(tmp_path / "logs")
    name = studies.create(logs, cfg, "tiny", {})
    definition = studies.load_definition(logs, name)
    asked = studies.open_study(logs, definition).ask()
    x = asked.suggest_float("x", 0.0, 1.0)  # a supervisor killed here: `width` not chosen, no run
    with Index(logs) as index:
        for _ in range(3):  # a supervisor started again, stepping the study (no supervisor runs it)
            studies.Driver(logs, index, definition).step()
        [row] = index.runs()
    run_id = studies.trial_run_id(definition, 0)
    assert run_dirs(logs) == [run_id] and row.id == run_id and row.status == "queued"
    spec = runstore.load_spec(logs.run(run_id))
    assert spec.params["x"] == x and 1 <= spec.params["width"] <= 4 and spec.trial == 0
    [trial] = trials_of(logs)
    assert trial.state.name == "RUNNING" and trial.params == {"x": x, "width": spec.params["width"]}
