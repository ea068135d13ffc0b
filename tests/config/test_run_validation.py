"""One validation path (issue 18.5): what `tuiexp check` refuses, `tuiexp run` refuses
too, with the same sentence, exit 2 and nothing queued; today `run` queues it and the
run ends `failed`. (The dashboard's `n` is the third caller: its test is a tmux one.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config

CASES = [
    pytest.param('[experiments.x]\ncommand = "python missing.py"\nscalars = "stdout"\n',
                 "missing.py", id="script-missing"),
    pytest.param('[experiments.x]\ncommand = "python fit.py"\ncwd = "nowhere"\n',
                 "nowhere", id="cwd-missing"),
    pytest.param('[experiments.x]\ncommand = "no-such-program --fast"\n',
                 "no-such-program", id="not-on-path"),
    pytest.param('[queue]\ngpus = [97]\n\n[experiments.x]\ncommand = "python fit.py"\n',
                 "97", id="gpu-missing"),
    pytest.param('[experiments.x]\ncommand = "python missing.py"\nmetric = "score"\nx = 0.5\n\n'
                 '[experiments.x.search]\nsampler = "random"\npruner = "none"\ntrials = 2\n'
                 'x = { uniform = [0.0, 1.0] }\n', "missing.py", id="study-script-missing"),
]


def _nothing_queued(workdir: Path) -> None:
    runs = workdir / "logs" / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]
    studies = workdir / "logs" / "studies"
    assert not studies.exists() or not list(studies.iterdir())
    listed = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
    assert listed == []


@pytest.mark.parametrize("body,named", CASES)
def test_run_refuses_what_check_refuses(workdir, body, named):
    write_config(workdir, body)
    (workdir / "fit.py").write_text("print('ok')\n")
    check = tuiexp(workdir, "check")
    assert check.returncode == 2, check.stdout + check.stderr  # today's check already says it
    sentence = next(x for x in check.stderr.splitlines() if named in x)
    for args in (("run", "x"), ("run", "x", "--wait")):
        out = tuiexp(workdir, *args, timeout=60)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert sentence in out.stderr, (sentence, out.stderr)
        assert "Traceback" not in out.stderr
        assert out.stdout == ""  # no run id printed: nothing was queued
    _nothing_queued(workdir)
