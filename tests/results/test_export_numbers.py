"""Numbers in machine-readable exports (issue 18.12): a mean over seeds is written as
the number it is, `0.5255`, never with binary noise (`0.5255000000000001`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config

#: a tuiexp.track script whose seeds reach val_acc 0.525 and 0.526: their mean, summed
#: in binary floating point, is 0.5255000000000001
SCRIPT = """
from tuiexp import track
run = track.init()
seed = run.params["seed"]
for epoch, acc in ((1, 0.5), (2, 0.525 + seed / 1000)):
    track.log(epoch=epoch, val_acc=acc, train_loss=1 / epoch)
track.finish()
"""


def significant_digits(text: str) -> int:
    mantissa = text.lower().lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("numbers")
    (where / "acc.py").write_text(SCRIPT)
    write_config(where, '[experiments.acc]\ncommand = "python acc.py"\nseeds = [0, 1]\n')
    try:
        out = tuiexp(where, "run", "acc", "--wait", timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        yield where
    finally:
        tuiexp(where, "daemon", "stop")


def test_csv_numbers_carry_no_binary_noise(project):
    rows = list(csv.DictReader(io.StringIO(tuiexp(project, "export", "--format", "csv",
                                                  check=True).stdout)))
    assert len(rows) == 1 and rows[0]["n"] == "2"  # the two seeds, one row
    assert rows[0]["best_val_acc"] == "0.5255", rows[0]
    for key, text in rows[0].items():
        try:
            float(text)
        except ValueError:
            continue
        assert significant_digits(text) <= 15, (key, text)


def test_json_numbers_carry_no_binary_noise(project):
    (row,) = json.loads(tuiexp(project, "export", "--format", "json", check=True).stdout)["rows"]
    assert row["best_val_acc"]["mean"] == 0.5255
    stack = [row]
    while stack:
        node = stack.pop()
        values = node.values() if isinstance(node, dict) else node
        for v in values:
            if isinstance(v, (dict, list)):
                stack.append(v)
            elif isinstance(v, float):
                assert significant_digits(repr(v)) <= 15, v
