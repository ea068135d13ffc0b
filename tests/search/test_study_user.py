"""Studies as a user leaves them overnight (issue 20): `run --wait` follows the study, a
script that stops on `should_prune()` is a pruned trial, swept and searched params are
a command's params, `study show` agrees with the runs, and only Optuna's public API.

Only the CLI, real processes, run directories and Optuna's public API (the journal is
read with `optuna.load_study`): no tuiexp internals, so these survive the layout move."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ROOT, tuiexp, wait_for, write_config
from .conftest import study_config

USER_TRIAL = Path(__file__).with_name("user_trial.py")
ARGV_SCRIPT = Path(__file__).with_name("argv_script.py")
TERMINAL = {"finished", "failed", "crashed", "diverged", "oom", "cancelled", "pruned"}


def config(where: Path, **kw: Any) -> Path:
    return study_config(where, USER_TRIAL, **kw)


def trial_runs(where: Path) -> dict[int, str]:
    """trial number → run id, from the run directories' run.json (the directory is the record)."""
    out = {}
    for spec_path in (where / "logs" / "runs").glob("*/run.json"):
        spec = json.loads(spec_path.read_text())
        if spec.get("trial") is not None:
            out[int(spec["trial"])] = spec["id"]
    return out


def rows(where: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in json.loads(tuiexp(where, "ls", "--json", check=True).stdout)}


def optuna_trials(where: Path, name: str = "tiny") -> list[Any]:
    """The study's trials as Optuna itself reads its journal (public API only)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    [journal] = (where / "logs").rglob(f"{name}.journal")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def study_over(where: Path, trials: int) -> bool:
    if not list((where / "logs").rglob("tiny.journal")):
        return False
    found = optuna_trials(where)
    return len(found) == trials and all(t.state.name not in ("RUNNING", "WAITING") for t in found)


def ended(run_dir: Path) -> bool:
    """The run's process said its last word (a status event in its events.jsonl)."""
    path = run_dir / "events.jsonl"
    if not path.exists():
        return False
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("kind") == "status":
                return True
        except ValueError:
            continue
    return False


class Follow:
    """A CLI command whose stdout is read line by line as it comes."""

    def __init__(self, where: Path, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "tuiexp.cli", *args], cwd=where,
                                     text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, *texts: str) -> bool:
        """Whether a line holds one of `texts`; fails at once if the command ended without."""
        if any(t in line for line in self.lines for t in texts):
            return True
        if self.proc.poll() is not None:
            self._reader.join(timeout=5)
            if any(t in line for line in self.lines for t in texts):
                return True
            said = " or ".join(map(repr, texts))
            raise AssertionError(f"the command ended (rc {self.proc.returncode}) without "
                                 f"printing {said}:\n" + "\n".join(self.lines))
        return False

    def finish(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc


def reports(lines: list[str], run_id: str, number: int, status: str) -> bool:
    """Whether a line reports trial `number` (by its run id or as `trial N`) with `status`."""
    return any((run_id in line or re.search(rf"\btrial {number}\b", line)) and status in line
               for line in lines)


# -- 20.1: `run --wait` and `wait --study` follow a study to its last trial ------------------


def test_run_wait_follows_a_study_to_its_last_trial_printing_each_as_it_ends(workdir: Path) -> None:
    gate = workdir / "gate"  # trials 1 and 2 wait for it: trial 0's line must come before
    config(workdir, trials=3, epochs=2, extra=f'gate = "{gate}"\ngated_from = 1')
    follow = Follow(workdir, "run", "tiny", "--wait")
    try:
        run0 = wait_for(lambda: trial_runs(workdir).get(0), timeout=120)
        wait_for(lambda: follow.saw(run0, "trial 0"), timeout=120)
        assert follow.proc.poll() is None  # trial 0 is printed as it ends; the rest still wait
        gate.touch()
        rc = follow.finish(timeout=240)
    finally:
        gate.touch()
        if follow.proc.poll() is None:
            follow.proc.kill()
    runs = trial_runs(workdir)
    status = {rid: r["status"] for rid, r in rows(workdir).items()}
    assert sorted(runs) == [0, 1, 2]  # it returned only after the last trial ...
    assert all(status[rid] in TERMINAL for rid in runs.values()), status
    for n, rid in runs.items():  # ... having printed each one with its status
        assert reports(follow.lines, rid, n, status[rid]), (n, status[rid], follow.lines)
    assert "best" in "\n".join(follow.lines[-3:]), follow.lines
    assert rc == 0
    assert "(done)" in tuiexp(workdir, "study", "show", "tiny", check=True).stdout


def test_wait_study_follows_a_running_study_to_its_end(workdir: Path) -> None:
    config(workdir, trials=2, epochs=2)
    tuiexp(workdir, "run", "tiny", check=True)
    done = tuiexp(workdir, "wait", "--study", "tiny", timeout=240)
    assert done.returncode == 0, done.stderr
    runs = trial_runs(workdir)
    status = {rid: r["status"] for rid, r in rows(workdir).items()}
    assert sorted(runs) == [0, 1] and all(status[r] in TERMINAL for r in runs.values())
    for n, rid in runs.items():
        assert reports(done.stdout.splitlines(), rid, n, status[rid]), (n, done.stdout)


def test_run_wait_on_a_study_where_no_trial_finishes_exits_non_zero(workdir: Path) -> None:
    config(workdir, trials=2, extra="crash_above = -1.0")  # every trial raises at once
    done = tuiexp(workdir, "run", "tiny", "--wait", timeout=240)
    runs = trial_runs(workdir)
    status = {rid: r["status"] for rid, r in rows(workdir).items()}
    assert sorted(runs) == [0, 1] and {status[r] for r in runs.values()} == {"failed"}
    assert done.returncode != 0


# -- 20.2: a trial that stops on should_prune() is pruned, for the run and for Optuna --------


def test_a_script_that_breaks_on_should_prune_and_finishes_is_a_pruned_trial(workdir: Path) -> None:
    # 6 epochs of 0.5 s: a verdict has time to arrive, pruning is no race on a busy machine
    config(workdir, trials=6, sleep=0.5, epochs=6)
    tuiexp(workdir, "run", "tiny", check=True)
    wait_for(lambda: study_over(workdir, 6), timeout=300, every=0.5)
    runs, status = trial_runs(workdir), rows(workdir)
    by_number = {t.number: t for t in optuna_trials(workdir)}
    judged = [n for n, rid in runs.items()
              if (workdir / "logs" / "runs" / rid / "prune.request").exists()]
    assert judged, "the pruner never acted: the test proves nothing"
    for n in judged:  # its own finish() said `finished`; the supervisor knows it was pruned
        row = status[runs[n]]
        assert row["status"] == "pruned", (n, row["status"], row["message"])
        assert by_number[n].state.name == "PRUNED", (n, by_number[n].state.name)
    for n, t in by_number.items():  # only a trial that ran all its epochs feeds TPE a value
        if t.state.name == "COMPLETE":
            assert status[runs[n]]["epoch"] == 6 and t.last_step == 6, (n, t.last_step)


# -- 20.4: swept, random and searched params are a command's params ----------------------------


SPACES = {
    "sweep": "sweep.lr = [0.1, 0.01]",
    "random": "random = { trials = 2, seed = 0, lr = { log_uniform = [0.001, 0.1] } }",
    "search": "search = { trials = 2, pruner = \"none\", lr = { log_uniform = [0.001, 0.1] } }",
}


@pytest.mark.parametrize("how", ["template", "flags"])
@pytest.mark.parametrize("space", sorted(SPACES))
def test_a_swept_or_searched_param_reaches_a_commands_argv(workdir: Path, space: str,
                                                          how: str) -> None:
    command = f'"{sys.executable} {ARGV_SCRIPT}'
    command += ' --lr {lr}"' if how == "template" else '"\nargs = "flags"'
    write_config(workdir, f"""
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.plain]
command = {command}
scalars = "stdout"
metric = "val_acc"
{SPACES[space]}
""")
    check = tuiexp(workdir, "check")
    assert check.returncode == 0, check.stderr
    tuiexp(workdir, "run", "plain", check=True)
    wait_for(lambda: len(found := rows(workdir)) == 2
             and all(r["status"] in TERMINAL for r in found.values()), timeout=180, every=0.5)
    for rid, row in rows(workdir).items():
        assert row["status"] == "finished", (rid, row["status"], row["message"])
        out = (workdir / "logs" / "runs" / rid / "stdout.log").read_text()
        argv = json.loads(next(line for line in out.splitlines() if line.startswith("argv "))[5:])
        assert float(argv[argv.index("--lr") + 1]) == pytest.approx(row["params"]["lr"])


# -- 20.3: `study show` agrees with the runs, with or without a supervisor ---------------------


def test_study_show_agrees_with_the_runs_while_no_supervisor_runs(workdir: Path) -> None:
    gate = workdir / "gate"  # trial 0 waits for it: the supervisor is stopped while it runs
    config(workdir, trials=2, epochs=2, extra=f'gate = "{gate}"\ngated_from = 0')
    tuiexp(workdir, "run", "tiny", check=True)
    run0 = wait_for(lambda: trial_runs(workdir).get(0), timeout=120)
    wait_for(lambda: rows(workdir).get(run0, {}).get("status") == "running", timeout=120, every=0.2)
    tuiexp(workdir, "daemon", "stop", check=True)
    gate.touch()
    wait_for(lambda: ended(workdir / "logs" / "runs" / run0), timeout=60)

    shown = tuiexp(workdir, "study", "show", "tiny", check=True).stdout
    row = rows(workdir)[run0]
    assert row["status"] == "finished"
    assert reports(shown.splitlines(), run0, 0, "finished"), shown
    best = next(line for line in shown.splitlines() if line.startswith("best"))
    assert "none yet" not in best and (run0 in best or "trial 0" in best), shown
    # and looking at it started a supervisor: the study, stalled between trials, goes on
    wait_for(lambda: study_over(workdir, 2), timeout=120, every=0.5)


# -- where the issue is silent: a grid study ends cleanly ---------------------------------------


def test_a_grid_study_ends_without_an_error(workdir: Path) -> None:
    write_config(workdir, f"""
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.tiny]
command = ["{sys.executable}", "{USER_TRIAL}"]
metric = "val/score"
x = 0.5
epochs = 2

[experiments.tiny.search]
sampler = "grid"
pruner = "none"
x = {{ choice = [0.1, 0.3, 0.5] }}
""")
    tuiexp(workdir, "run", "tiny", check=True)
    wait_for(lambda: "(done)" in tuiexp(workdir, "study", "show", "tiny").stdout, timeout=180,
             every=0.5)
    assert {t.state.name for t in optuna_trials(workdir)} == {"COMPLETE"}
    [log] = (workdir / "logs").rglob("daemon.log")
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert not errors, errors


# -- 20.7: Optuna's public API only ----------------------------------------------------------------


#: private names of Optuna's that tuiexp has reached for
KNOWN_PRIVATE = {"_trial_id", "_storage", "_suggest", "_study_id", "_cached_frozen_trial"}


def private_optuna_uses(root: Path) -> list[str]:
    """`file:line: what` for every use of a private Optuna name under `root`: an import from a
    private module (`optuna.x._y`) or of a private name, any attribute in KNOWN_PRIVATE, and,
    in a module that imports optuna, any `obj._name` whose `_name` tuiexp never defines
    (so it must be a library's)."""
    trees = {p: ast.parse(p.read_text(), str(p)) for p in sorted(root.rglob("*.py"))}
    ours: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                ours.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                ours.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                ours.add(node.id)
            elif isinstance(node, ast.arg):
                ours.add(node.arg)
    found = []
    for path, tree in trees.items():
        where = path.relative_to(root.parent)
        imports_optuna = False
        for node in ast.walk(tree):
            module = ""
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "optuna":
                        imports_optuna = True
                        if any(part.startswith("_") for part in alias.name.split(".")):
                            found.append(f"{where}:{node.lineno}: import {alias.name}")
            elif isinstance(node, ast.ImportFrom) and node.module:
                module = node.module
                if module.split(".")[0] == "optuna":
                    imports_optuna = True
                    names = [a.name for a in node.names]
                    if any(p.startswith("_") for p in module.split(".") + names):
                        what = f"from {module} import {', '.join(names)}"
                        found.append(f"{where}:{node.lineno}: {what}")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue  # an object's own attribute
            if attr in KNOWN_PRIVATE:
                found.append(f"{where}:{node.lineno}: .{attr}")
            elif imports_optuna and attr not in ours:
                found.append(f"{where}:{node.lineno}: .{attr} (defined nowhere in tuiexp)")
    return found


def test_the_private_api_finder_finds_what_it_must(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("import optuna\nfrom optuna.storages._journal import x\n"
                              "def f(study, t):\n"
                              "    return study._storage, t._trial_id, t._other\n")
    (pkg / "b.py").write_text("def _suggest(w):\n    return _suggest(w)\nclass C:\n"
                              "    def __init__(self):\n        self._own = 1\n"
                              "    def g(self, o):\n        return o._own, self._storage\n")
    found = "\n".join(private_optuna_uses(pkg))
    assert "a.py:2: from optuna.storages._journal" in found
    assert "a.py:4: ._storage" in found and "a.py:4: ._trial_id" in found
    assert "a.py:4: ._other (defined nowhere in tuiexp)" in found
    assert "b.py" not in found  # our own private names, and a function called _suggest


def test_tuiexp_uses_only_optunas_public_api() -> None:
    found = private_optuna_uses(ROOT / "tuiexp")
    assert not found, "private Optuna names:\n" + "\n".join(found)
