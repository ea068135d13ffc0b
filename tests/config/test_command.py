"""A user's command line from the spec: templates and `args = "flags"`, checked by a
real argparse script that prints what it parsed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuiexp.config.command import TemplateError, build_argv, fields, flags, render
from tuiexp.queue.executor import argv_for
from tuiexp.store.spec import RunSpec

PARSER = """
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--batch-size", type=int)
p.add_argument("--name")
p.add_argument("--flip", action="store_true")
p.add_argument("--mixup", action="store_true")
p.add_argument("--widths", type=int, nargs="+")
p.add_argument("--model_args.width", type=int)
p.add_argument("--tiny", type=float)
print(json.dumps(vars(p.parse_args())))
"""


def spec(command: str | None, params: dict, **kw) -> RunSpec:
    import shlex

    return RunSpec(id="r", experiment="e", params=params,
                   command=tuple(shlex.split(command)) if command else None, **kw)


def parsed(tmp_path: Path, s: RunSpec) -> dict:
    (tmp_path / "parse.py").write_text(PARSER)
    out = subprocess.run(argv_for(s), cwd=tmp_path, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_template_fills_params_dotted_and_escaped(tmp_path):
    s = spec("python parse.py --lr {lr} --batch-size {batch_size} --model_args.width "
             "{model_args.width} --name 'x {{y}} {name}'",
             {"lr": 1 / 3, "batch_size": 64, "model_args": {"width": 8}, "name": "a b; rm -rf /"})
    got = parsed(tmp_path, s)
    assert got["lr"] == 1 / 3 and got["batch_size"] == 64 and got["model_args.width"] == 8
    assert got["name"] == "x {y} a b; rm -rf /"  # one argument, no shell


def test_flags_round_trip_through_argparse(tmp_path):
    params = {"lr": 0.1, "batch_size": 64, "flip": True, "mixup": False, "widths": [16, 32],
              "model_args": {"width": 8}, "tiny": 1e-300 * 1.2345678901234567, "name": "it's \"q\""}
    s = spec("python parse.py", params, args="flags")
    assert build_argv(s)[2:] == ["--lr", "0.1", "--batch-size", "64", "--flip", "--widths", "16", "32",
                                 "--model_args.width", "8", "--tiny", repr(params["tiny"]),
                                 "--name", "it's \"q\""]
    got = parsed(tmp_path, s)
    assert parsed(tmp_path, spec("python parse.py", {"lr": -1e-05, "name": "-n"}, args="flags"))[
        "lr"] == -1e-05
    assert got == {"lr": 0.1, "batch_size": 64, "name": "it's \"q\"", "flip": True, "mixup": False,
                   "widths": [16, 32], "model_args.width": 8, "tiny": params["tiny"]}


def test_a_fork_changes_the_flags(tmp_path):
    parent = spec("python parse.py --lr {lr}", {"lr": 0.1, "batch_size": 64}, args="flags")
    assert build_argv(parent)[1:] == ["parse.py", "--lr", "0.1", "--batch-size", "64"]  # lr once
    child = parent.forked("c", 1, {"lr": 0.01, "batch_size": 32})
    assert parsed(tmp_path, child)["lr"] == 0.01 and parsed(tmp_path, child)["batch_size"] == 32


def test_leading_python_is_our_interpreter_and_scalars_wrap_it():
    assert argv_for(spec("python x.py", {}))[0] == sys.executable
    assert argv_for(spec("python3 x.py", {}, scalars="stdout")) == [
        sys.executable, "-m", "tuiexp.track.scalars", "--", sys.executable, "x.py"]
    assert argv_for(spec("./x.sh", {}, scalars=r"(?P<key>\w+)=(?P<value>\S+)"))[3:6] == [
        "--pattern", r"(?P<key>\w+)=(?P<value>\S+)", "--"]
    assert argv_for(spec(None, {"lr": 1}))[1:] == ["-m", "tuiexp.trainer"]


def test_template_details():
    assert fields("--w {model_args.width} {{x}} {lr:.2f}") == ["model_args.width", "lr"]
    assert render("{lr:.2f}", {"lr": 0.123}) == ["0.12"]
    assert render("{widths}", {"widths": [1, 2]}) == ["1", "2"]
    assert render("w={widths}", {"widths": [1, 2]}) == ["w=1,2"]
    assert render("{flip}", {"flip": False}) == ["false"]
    assert flags({"widths": [], "a_b": {"c_d": 1}}) == ["--a_b.c_d", "1"]
    assert flags({"lr": -1e-05, "name": "-x"}) == ["--lr=-1e-05", "--name=-x"]
    with pytest.raises(TemplateError, match="lone `}`"):
        fields("x}")
    with pytest.raises(TemplateError, match="`{lrr}`, a param this run does not have"):
        build_argv(spec("python x.py {lrr}", {"lr": 1}))
