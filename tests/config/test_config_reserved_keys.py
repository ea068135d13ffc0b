"""A typo in a reserved key of experiments.toml (issue 18.4) is one sentence with the
file, the line and a "did you mean", from `check` and from `run` alike, exit 2 and
nothing queued; today it becomes a param, passes `check`, and the run fails later with
the script's `unrecognized arguments`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config

SCRIPT = """
import argparse
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--seed", type=int, default=0)
print(vars(p.parse_args()))
"""

#: (what the experiment table holds, the key written, the key meant)
TYPOS = [
    pytest.param('command = "python fit.py"\nargs = "flags"\nsweeps.lr = [0.1, 0.2]',
                 "sweeps", "sweep", id="sweeps-command"),
    pytest.param('command = "python fit.py"\nargs = "flags"\nseed = [0, 1]',
                 "seed", "seeds", id="seed-list-command"),
    pytest.param('command = "python fit.py"\nscalar = "stdout"', "scalar", "scalars",
                 id="scalar-command"),
    pytest.param('command = "python fit.py"\nextend = "base"', "extend", "extends",
                 id="extend-command"),
    pytest.param("sweeps.lr = [0.1, 0.2]", "sweeps", "sweep", id="sweeps-trainer"),
    pytest.param("seed = [0, 1]", "seed", "seeds", id="seed-list-trainer"),
    pytest.param('comand = "python fit.py"', "comand", "command", id="comand"),
    pytest.param('command = "python fit.py"\nmetrics = "val/acc"', "metrics", "metric", id="metrics"),
    pytest.param('command = "python fit.py"\ntag = ["first"]', "tag", "tags", id="tag-list"),
    pytest.param("serach = { trials = 4, lr = { log_uniform = [0.01, 0.1] } }", "serach", "search",
                 id="serach-trainer"),
]


def _config(workdir: Path, body: str) -> int:
    """Write experiments.toml with experiment `x` holding `body`; the 1-based line
    where `body` starts."""
    head = '[experiments.base]\nlr = 0.1\n\n[experiments.x]\nlr = 0.1\n'
    write_config(workdir, head + body + "\n")
    (workdir / "fit.py").write_text(SCRIPT)
    return head.count("\n") + 1


@pytest.mark.parametrize("body,written,meant", TYPOS)
def test_a_reserved_key_typo_is_refused_with_did_you_mean(workdir, body, written, meant):
    first = _config(workdir, body)
    lines = body.splitlines()
    line = first + next(i for i, x in enumerate(lines) if x.startswith(written))
    for args in (("check",), ("run", "x")):
        out = tuiexp(workdir, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        said = out.stderr.strip().splitlines()
        problem = [x for x in said if f"`{written}`" in x]
        assert len(problem) == 1, (args, out.stderr)
        assert f"experiments.toml, line {line}" in problem[0], problem
        assert re.search(rf"did you mean `{meant}`", problem[0]), problem
        assert "Traceback" not in out.stderr
    runs = workdir / "logs" / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]


def test_a_param_that_only_looks_like_a_reserved_key_is_still_a_param(workdir):
    """The other side of the rule: a real param stays a param (guards the fix against
    refusing too much). `seed = 3` is one run's seed; `sweep_lr` is a plain param."""
    write_config(workdir, '[experiments.x]\ncommand = "python fit.py"\nargs = "flags"\n'
                 'seed = 3\nsweep_lr = 0.5\nmodel = "resnet"\ntag = "v1"\nextend = "left"\n'
                 'research = { area = "vision" }\n')
    (workdir / "fit.py").write_text(SCRIPT)
    out = tuiexp(workdir, "check")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^\s+x\s+1 run\b", out.stdout, re.M), out.stdout
