"""Issue 19, case 9: a script whose output has no newline. The stdout wrapper must parse
it in linear time (no re-scan of the unfinished line), so the run ends when its script
does and no metric is cut silently; a line past the limit is dropped with one warning.

(The run is seen through the real CLI, its run directory and /proc, with the helpers
of tests/faults/outside.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tuiexp, wait_for, write_config
from tests.faults.outside import alive, cpu_seconds, read_json
from tuiexp.track.scalars import Backlog, Batcher, Parser, parse_all

NO_NEWLINE = """
import sys

for i in range(270_000):  # 4 MB of `loss: x` pairs, flushed one by one, never a newline
    sys.stdout.write(f"loss: {1 / (i + 1):.6f} ")
    sys.stdout.flush()
sys.stdout.write("final_acc: 0.75")
"""

STDOUT_CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.nonl]
command = "python NO_NEWLINE"
scalars = "stdout"
"""


def _row(where: Path, run_id: str) -> dict:
    out = tuiexp(where, "ls", "--json")
    rows = json.loads(out.stdout) if out.returncode == 0 else []
    return next((r for r in rows if r["id"] == run_id), {})


@pytest.mark.slow
def test_case9_output_without_a_newline_is_parsed_in_linear_time(workdir):
    """The run's process is the stdout wrapper: the CPU it spends parsing 4 MB without a
    newline is measured (CPU seconds of that process alone, not wall time: the wrapper
    spent 5-20 s of CPU re-splitting a growing line; a linear parser about 0.2 s)."""
    nonl = workdir / "no_newline.py"
    nonl.write_text(NO_NEWLINE)
    write_config(workdir, STDOUT_CONFIG.replace("NO_NEWLINE", str(nonl)))
    logs = workdir / "logs"
    (rid,) = tuiexp(workdir, "run", "nonl", check=True).stdout.split()
    proc = wait_for(lambda: read_json(logs / "runs" / rid / "proc.json"), timeout=60, every=0.05)
    used = 0.0

    def ended() -> bool:
        nonlocal used
        seen = cpu_seconds(proc["pid"])
        if seen is None or not alive(proc["pid"]):
            return True
        used = max(used, seen)
        return False

    wait_for(ended, timeout=120, every=0.05)
    assert used < 1.5, f"the stdout wrapper spent {used:.1f} s of CPU parsing 4 MB"
    wait_for(lambda: _row(workdir, rid).get("status") not in (None, "queued", "starting", "running"))
    row = _row(workdir, rid)
    assert row["status"] == "finished"
    # 4 MB is past the 1 MiB line limit: the long line is dropped, and the run says so
    assert any("longer than 1 MiB" in w for w in row["warnings"]), row["warnings"]


def test_a_line_past_the_limit_is_dropped_with_one_warning_and_the_next_line_counts(tmp_path):
    backlog, batcher = Backlog(), Batcher(tmp_path / "events.jsonl")
    for chunk in (b"loss: 1\nacc: ", b"0.5 " * 10, b"x" * 30, b"y\rloss: 2\n", b"z" * 50, b"\nloss: 3"):
        backlog.put(chunk)
    backlog.close()
    parse_all(backlog, Parser(), batcher, limit=64)
    batcher.flush()
    got = [{k: v for k, v in e.items() if k not in ("v", "t")}
           for e in map(json.loads, (tmp_path / "events.jsonl").read_text().splitlines())]
    warnings = [e for e in got if e["kind"] == "warning"]
    assert len(warnings) == 1 and "longer than 64 bytes" in warnings[0]["message"]
    assert [e for e in got if e["kind"] != "warning"] == [
        {"kind": "step", "step": 0, "loss": 1.0}, {"kind": "step", "step": 1, "loss": 2.0},
        {"kind": "step", "step": 2, "loss": 3.0}]


#: the real wrapper, its parser slowed down to 50 ms a line and its grace cut to 0.2 s
SLOW_PARSER = """
import sys, time
from tuiexp.track import scalars
scalars.PARSE_GRACE = 0.2
events = scalars.Parser.events
scalars.Parser.events = lambda self, line: (time.sleep(0.05), events(self, line))[1]
sys.exit(scalars.main(["--", sys.executable, "-c", "for i in range(100): print('loss: 1')"]))
"""


def test_a_parser_that_falls_behind_says_so_on_the_run(tmp_path):
    env = {**os.environ, "TUIEXP_RUN_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SLOW_PARSER], env=env, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    steps = [e for e in got if e["kind"] == "step"]
    assert 0 < len(steps) < 100  # cut short, by construction
    (warning,) = [e["message"] for e in got if e["kind"] == "warning"]
    assert "had not read the whole output" in warning and "missing" in warning
