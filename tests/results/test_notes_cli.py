"""`tuiexp note` / `tuiexp tag` and `--filter`, through real CLI processes: the edit
lands in the run directory, the index mirrors it, `ls`, `show` and `export` show it,
and a rebuilt index has it back."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.results.conftest import build_logs
from tuiexp.store.paths import LogsDir

CLI = [sys.executable, "-c", "import sys; from tuiexp.cli import main; sys.exit(main())"]


def tuiexp(logs: LogsDir, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--logs", str(logs.root)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def logs(tmp_path: Path) -> LogsDir:
    """The results tests' logs (seeds, a fork, a crashed and a queued run), a fresh copy:
    these tests write notes and tags."""
    return build_logs(tmp_path / "logs")


def ls_column(out: str, column: str) -> dict[str, str]:
    """run id -> the text under `column` of an `ls` table."""
    head, *lines = out.splitlines()
    start = head.index(column)
    end = head.index("PARENT")
    return {line.split()[0]: line[start:end].strip() for line in lines}


def test_note_and_tags_round_trip_through_the_directory_the_index_and_ls(logs):
    done = tuiexp(logs, "tag", "bs32-s0", "bs32-s1", "+best", "+paper")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["bs32-s0  tags: best paper", "bs32-s1  tags: best paper"]
    assert tuiexp(logs, "tag", "bs32-s1", "-paper").stdout == "bs32-s1  tags: best\n"
    done = tuiexp(logs, "note", "bs32-s0", "lr", "too", "high")
    assert done.stdout == "bs32-s0  note: lr too high\n"
    assert tuiexp(logs, "note", "bs32-s0", "--append", "-5% with flips").returncode == 0

    on_disk = json.loads((logs.run("bs32-s0").annotations).read_text())
    assert on_disk == {"note": "lr too high\n-5% with flips", "tags": ["best", "paper"]}
    tags = ls_column(tuiexp(logs, "ls").stdout, "TAGS")
    assert tags["bs32-s0"] == "best paper" and tags["bs32-s1"] == "best"
    assert tags["bs64-s0"] == ""
    shown = tuiexp(logs, "show", "bs32-s0").stdout
    assert "tags        best paper\n" in shown
    assert "note        lr too high\n            -5% with flips\n" in shown
    listed = {r["id"]: r for r in json.loads(tuiexp(logs, "ls", "--json").stdout)}
    assert listed["bs32-s1"]["tags"] == ["best"] and listed["bs32-s0"]["note"].startswith("lr")
    assert tuiexp(logs, "note", "bs32-s0").stdout == "lr too high\n-5% with flips\n"
    assert tuiexp(logs, "note", "bs32-s0", "").stdout == "bs32-s0  note cleared\n"
    assert tuiexp(logs, "note", "bs32-s0").stdout == "\n"

    # the directory is the record: a rebuilt index has every tag back
    for p in logs.root.glob("index.sqlite*"):
        p.unlink()
    assert tuiexp(logs, "reindex").returncode == 0
    tags = ls_column(tuiexp(logs, "ls").stdout, "TAGS")
    assert tags["bs32-s0"] == "best paper" and tags["bs32-s1"] == "best"


def test_filter_selects_by_tag_on_ls_and_export(logs):
    assert tuiexp(logs, "tag", "bs32-s0", "tune-lr001", "+best").returncode == 0
    out = tuiexp(logs, "ls", "--filter", "tag:best").stdout
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["bs32-s0", "tune-lr001"]
    out = tuiexp(logs, "ls", "--filter=-tag:best status:finished").stdout
    assert {line.split()[0] for line in out.splitlines()[1:]} == {
        "bs32-s1", "bs32-s2", "bs64-s0", "tune-base"}

    done = tuiexp(logs, "export", "--no-group", "-f", "csv", "--filter", "tag:best")
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["run"], r["tags"]) for r in table] == [("bs32-s0", "best"), ("tune-lr001", "best")]
    done = tuiexp(logs, "export", "-f", "csv", "--columns", "run,tags,note", "--filter",
                  "batch_size=64")
    assert {r["run"].split()[0] for r in csv.DictReader(io.StringIO(done.stdout))} == {
        "bs64-s0", "tune-base", "tune-lr001"}
    # no tag anywhere: no tags column by default
    assert tuiexp(logs, "tag", "bs32-s0", "tune-lr001", "-best").returncode == 0
    done = tuiexp(logs, "export", "-f", "csv")
    assert "tags" not in done.stdout.splitlines()[0].split(",")


def test_tag_every_run_a_filter_selects(logs):
    done = tuiexp(logs, "tag", "--filter", "exp:fine* status:finished", "+tuned")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["tune-base  tags: tuned", "tune-lr001  tags: tuned"]


@pytest.mark.parametrize("args, sentence", [
    (["tag", "bs32-s0", "+b@d"],
     "tuiexp: 'b@d' is not a valid tag name (letters, digits, '_', '.', '/', '-', at most 40 "
     "characters, starting with a letter, a digit or '_')."),
    (["tag", "nosuchrun", "+best"], "tuiexp: no run 'nosuchrun' in {runs}."),
    (["tag", "bs32-s0", "best"],
     "tuiexp: no run 'best' in {runs}; to add the tag 'best', write +best."),
    (["tag", "bs32", "+best"], "tuiexp: 'bs32' matches 3 runs (bs32-s0, bs32-s1, bs32-s2); "
                               "give more of the id."),
    (["note", "nosuchrun", "hello"], "tuiexp: no run 'nosuchrun' in {runs}."),
    (["ls", "--filter", "colour:red"],
     "tuiexp: unknown filter 'colour:' in 'colour:red'; use plain words (id, experiment, "
     "status, tag), tag:T, status:S, exp:NAME, id:TEXT, note:TEXT, PARAM=VALUE; -TERM negates."),
    (["export", "--filter", "status:done"],
     "tuiexp: unknown status 'done' in 'status:done'; choose from: queued, starting, running, "
     "finished, failed, diverged, oom, cancelled, crashed, preempted, pruned."),
])
def test_mistakes_are_one_sentence_and_exit_2(logs, args, sentence):
    done = tuiexp(logs, *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == sentence.format(runs=logs.runs) + "\n"
    assert not logs.run("bs32-s0").annotations.exists()  # nothing half-done
