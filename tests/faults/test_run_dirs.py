"""check_run_dir: which directories under runs/ can be read as the run they are named after."""

from __future__ import annotations

import json

import pytest

from tuiexp.store.paths import RunPaths
from tuiexp.store.runstore import check_run_dir

GOOD = {"id": "r1", "experiment": "x", "params": {}, "command": ["true"]}


@pytest.mark.parametrize("name, content, says", [
    ("r1", json.dumps(GOOD), None),
    ("r1", None, "has no run.json"),
    ("r1", "{", "is not valid JSON"),
    ("r1", b"\xff\xfe", "is not valid JSON"),
    ("r1", "[1]", "does not hold a run spec"),
    ("r1-copy", json.dumps(GOOD), "names run 'r1', not 'r1-copy'"),
    ("r1", json.dumps({**GOOD, "id": "../../etc"}), "names run '../../etc'"),
    ("r1", json.dumps({**GOOD, "id": 7}), "names run no valid id"),
    ("r1", json.dumps({"id": "r1"}), "is not a valid run spec"),
    ("bad name!", json.dumps(GOOD), "is not named like a run id"),
])
def test_check_run_dir(tmp_path, name, content, says):
    run_dir = tmp_path / name
    run_dir.mkdir()
    if isinstance(content, str):
        (run_dir / "run.json").write_text(content)
    elif isinstance(content, bytes):
        (run_dir / "run.json").write_bytes(content)
    problem = check_run_dir(RunPaths(run_dir))
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem and problem.endswith(".")
        assert problem.count(". ") == 0  # one sentence
