"""Plots and the report after the README's plain install (issue 18.6).

The README installs with `pip install -e .`; matplotlib was only in the `plot` and
`test` extras, so `tuiexp plot` and `tuiexp report` died with a ModuleNotFoundError
traceback, and `report` left a half-written folder (the tables, no report.md).

Two tests, because neither alone is the whole truth:
- the declaration: pyproject.toml's base `dependencies` name matplotlib, so the
  README's install brings it (what a fresh venv would prove, without the network and
  the torch download such a test would need);
- the failure mode, for an environment where matplotlib still cannot be imported (an
  install made before the fix and not reinstalled, `--no-deps`, a broken wheel): a
  directory on PYTHONPATH holds a `matplotlib` package that raises exactly the error a
  missing one raises, so tuiexp cannot tell the difference. The same command without it
  is the control: it succeeds on the same logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, tuiexp, write_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MISSING = ('raise ModuleNotFoundError("No module named \'matplotlib\'", name="matplotlib")\n')


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project with two finished runs (two seeds, epochs, confusion matrices)."""
    where = tmp_path_factory.mktemp("plots")
    write_config(where, '[experiments.fake]\ncommand = "python FAKE_RUN"\nepochs = 2\n'
                 "seeds = [0, 1]\n")
    try:
        out = tuiexp(where, "run", "fake", "--wait", timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        yield where
    finally:
        tuiexp(where, "daemon", "stop")


def hidden_env(where: Path) -> dict[str, str]:
    """The environment in which `import matplotlib` fails as it does when it is not
    installed: a shadow package first on PYTHONPATH."""
    shadow = where / "no-matplotlib" / "matplotlib"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text(MISSING)
    path = os.pathsep.join(p for p in (str(shadow.parent), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def without_matplotlib(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, in `where`, without matplotlib."""
    return subprocess.run([sys.executable, "-m", "tuiexp.cli", *args], cwd=where, text=True,
                          capture_output=True, timeout=120, env=hidden_env(where))


def test_matplotlib_is_a_base_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(";")[0].strip().lower() for d in project["dependencies"]]
    assert any(n == "matplotlib" or n.startswith(("matplotlib>", "matplotlib=", "matplotlib~"))
               for n in names), names


def test_the_shadow_really_hides_matplotlib(project):
    """The premise of the test below: with the shadow, importing matplotlib fails as a
    missing package does; without it, the same logs give a whole report."""
    probe = subprocess.run([sys.executable, "-c", "import matplotlib"], cwd=project, text=True,
                           capture_output=True, env=hidden_env(project))
    assert probe.returncode == 1, probe.stderr
    assert probe.stderr.strip().endswith("ModuleNotFoundError: No module named 'matplotlib'")
    control = tuiexp(project, "report", "-o", "control")
    assert control.returncode == 0, control.stderr
    assert (project / "control" / "report.md").is_file()


@pytest.mark.parametrize("args,written", [
    (("report", "-o", "rep"), "rep"),
    (("plot", "curves", "-o", "curves.png"), "curves.png"),
    (("plot", "params", "-o", "params.png"), "params.png"),
    (("plot", "confusion", "fake", "-o", "conf.png"), "conf.png"),
], ids=["report", "plot-curves", "plot-params", "plot-confusion"])
def test_without_matplotlib_plots_and_the_report_are_one_sentence_and_write_nothing(
        project, args, written):
    run_ids = sorted(p.name for p in (project / "logs" / "runs").iterdir()
                     if not p.name.startswith("."))
    args = tuple(run_ids[0] if a == "fake" else a for a in args)  # an id: labels are 18.12
    out = without_matplotlib(project, *args)
    assert out.returncode in (1, 2), out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tuiexp: ") and "matplotlib" in lines[0], lines
    assert "pip install" in lines[0]  # says how to get it
    assert not (project / written).exists()  # no half-written report folder, no empty file
