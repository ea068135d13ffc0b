"""Labels are accepted where ids are (issue 18.12): a user reads `smoke` or `sw s1` in
the dashboard and types it to `tuiexp show`; today only an id, or its unique prefix or
suffix, is found."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import tuiexp, write_config

CONFIG = """
[experiments.smoke]
command = "python FAKE_RUN"
epochs = 1

[experiments.sw]
command = "python FAKE_RUN"
epochs = 1
seeds = [0, 1]
"""


@pytest.fixture
def project(workdir):
    write_config(workdir, CONFIG)
    ids = {}
    for name in ("smoke", "sw"):
        out = tuiexp(workdir, "run", name, "--wait", timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        ids[name] = [x.split()[0] for x in out.stdout.splitlines()
                     if re.fullmatch(r"\S+", x.strip())]
    return workdir, ids


def test_show_and_tag_take_a_runs_label(project):
    where, ids = project
    (smoke,) = ids["smoke"]
    out = tuiexp(where, "show", "smoke")
    assert out.returncode == 0, out.stderr
    assert re.search(rf"^run\s+{smoke}$", out.stdout, re.M), out.stdout
    assert tuiexp(where, "tag", "smoke", "+first").returncode == 0
    assert json.loads(tuiexp(where, "show", smoke, "--json", check=True).stdout)["tags"] == ["first"]

    # three seeds look alike but for the seed: the label with the seed picks one
    by_seed = {json.loads(tuiexp(where, "show", rid, "--json", check=True).stdout)["spec"]["seed"]: rid
               for rid in ids["sw"]}
    out = tuiexp(where, "show", "sw s1", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["id"] == by_seed[1]


def test_a_label_that_names_several_runs_is_one_sentence_listing_them(project):
    where, ids = project
    out = tuiexp(where, "show", "sw")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "matches 2 runs" in lines[0], lines
    assert "sw s0" in lines[0] and "sw s1" in lines[0], lines  # the labels, to pick from
