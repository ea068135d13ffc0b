"""Notes and tags (core/notes.py): kept in the run directory, mirrored by the index,
recovered by a rebuild; and the one filter grammar (query.row_filter) every view uses."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from tuiexp.errors import UsageError
from tuiexp.queue.client import Client
from tuiexp.store import notes, query, runstore
from tuiexp.store.index import Index, RunRow
from tuiexp.store.paths import LogsDir
from tuiexp.store.schema import SCHEMA_VERSION
from tuiexp.store.spec import RunSpec


def make_runs(logs: LogsDir) -> list[str]:
    """Three queued runs; the first has a tag from its experiment's config."""
    specs = [RunSpec(id="r-aa", experiment="sweep", params={"lr": 0.1, "aug": {"flip": True}},
                     created=1.0, tags=("from-config",)),
             RunSpec(id="r-bb", experiment="sweep", params={"lr": 0.01}, created=2.0),
             RunSpec(id="r-cc", experiment="other", params={"lr": 0.1}, created=3.0)]
    with Index(logs) as index:
        for spec in specs:
            runstore.create(logs, spec)
            index.add_run(spec)
    return [s.id for s in specs]


# -- edits -------------------------------------------------------------------------------


def test_edit_words_add_remove_and_check_names():
    assert notes.parse_edits(["+best", "-old", "keep", "a,b c"]) == (
        ["best", "keep", "a", "b", "c"], ["old"])
    assert notes.apply_edits(["old", "x"], ["best", "x", "best"], ["old"]) == ["x", "best"]
    for bad in ("b@d", "+.hidden", "-with:colon", "x" * 41):
        with pytest.raises(UsageError, match=r"is not a valid tag name \(letters, digits"):
            notes.parse_edits([bad])


def test_tags_and_note_live_in_the_run_directory_and_the_index_mirrors_them(tmp_path):
    logs = LogsDir.at(tmp_path)
    make_runs(logs)
    with Client(logs, autostart=False) as client:
        assert client.row("r-aa").tags == ["from-config"]  # the config's tags until edited
        assert client.annotate("r-aa", add=["best"], remove=["from-config"]) == (
            "r-aa", "", ["best"])
        client.annotate("r-aa", note="lr too high")
        client.annotate("r-aa", note="second thought", append=True)
        row = client.row("r-aa")
    assert (row.tags, row.note) == (["best"], "lr too high\nsecond thought")
    on_disk = json.loads(logs.run("r-aa").annotations.read_text())
    assert on_disk == {"note": "lr too high\nsecond thought", "tags": ["best"]}
    assert not logs.run("r-bb").annotations.exists()  # never edited: no file


def test_a_rebuild_recovers_tags_and_notes_after_the_index_is_deleted(tmp_path):
    logs = LogsDir.at(tmp_path)
    make_runs(logs)
    with Client(logs, autostart=False) as client:
        client.annotate("r-bb", note="keep me", add=["best"])
    for p in tmp_path.glob("index.sqlite*"):
        p.unlink()
    with Index(logs) as index:
        assert index.rebuild() == 3
        rows = {r.id: r for r in index.runs()}
    assert (rows["r-bb"].tags, rows["r-bb"].note) == (["best"], "keep me")
    assert rows["r-aa"].tags == ["from-config"] and rows["r-cc"].tags == []


def test_an_index_of_the_previous_schema_is_rebuilt_with_the_tags(tmp_path):
    """An index written before notes existed (schema 3) is rebuilt on open, and the
    tags come back from the directories."""
    logs = LogsDir.at(tmp_path)
    make_runs(logs)
    with Client(logs, autostart=False) as client:
        client.annotate("r-cc", add=["best"])
    db = sqlite3.connect(logs.index)
    db.execute("UPDATE settings SET value = '3' WHERE key = 'schema'")
    db.execute("UPDATE runs SET tags = NULL")
    db.commit()
    db.close()
    with Index(logs) as index:
        schema = index.db.execute("SELECT value FROM settings WHERE key = 'schema'").fetchone()[0]
        assert schema == str(SCHEMA_VERSION)
        assert index.run("r-cc").tags == ["best"]


def test_a_broken_annotations_file_is_refused_by_an_edit_and_skipped_by_a_rebuild(tmp_path):
    logs = LogsDir.at(tmp_path)
    make_runs(logs)
    logs.run("r-bb").annotations.write_text("{not json")
    with Client(logs, autostart=False) as client:
        with pytest.raises(UsageError, match=r"annotations\.json cannot be read .*fix or delete it"):
            client.annotate("r-bb", add=["best"])
    assert logs.run("r-bb").annotations.read_text() == "{not json"  # never overwritten
    with Index(logs) as index:
        assert index.rebuild() == 3 and index.run("r-bb").tags == []


EDITOR = """
import sys, time
from pathlib import Path
from tuiexp.queue.client import Client
from tuiexp.store.paths import LogsDir
root, name, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with Client(LogsDir.at(root), autostart=False) as client:
    (root / f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not (root / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.005)  # both editors start together: their edits interleave
    for i in range(n):
        client.annotate("r-aa", add=[f"{name}{i}"])
"""


def test_two_processes_tagging_one_run_lose_no_tag(tmp_path):
    """Read-modify-write of annotations.json under the index's write lock: concurrent
    editors take turns, so every tag either of them added is there."""
    logs = LogsDir.at(tmp_path)
    make_runs(logs)
    procs = [subprocess.Popen([sys.executable, "-c", EDITOR, str(logs.root), name, "12"])
             for name in ("p", "q")]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{n}").exists() for n in "pq"):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (tmp_path / "go").touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Index(logs) as index:
        tags = index.run("r-aa").tags
    assert sorted(tags) == sorted(["from-config", *(f"{n}{i}" for n in "pq" for i in range(12))])
    assert json.loads(logs.run("r-aa").annotations.read_text())["tags"] == tags


# -- the filter grammar ---------------------------------------------------------------------


def rows() -> list[RunRow]:
    def row(rid: str, exp: str, status: str, tags: list[str], note: str = "",
            params: dict | None = None) -> RunRow:
        return RunRow(rid, exp, status, tags=tags, note=note,
                      spec={"params": params or {}, "seed": 0})
    return [row("20261118-sweep-aa", "sweep", "finished", ["best", "paper"], "lr too high",
                {"lr": 0.1, "aug": {"flip": True}}),
            row("20261118-sweep-bb", "sweep", "failed", ["old"], params={"lr": 0.01, "dropout": 0.3}),
            row("20261118-other-cc", "other", "crashed", [], params={"lr": 0.1, "opt": "adam"})]


@pytest.mark.parametrize("text, expected", [
    ("", ["aa", "bb", "cc"]),
    ("sweep", ["aa", "bb"]),                    # a plain word: id, experiment, status or a tag
    ("FAILED", ["bb"]),
    ("paper", ["aa"]),
    ("tag:best", ["aa"]),
    ("tag:best,old", ["aa", "bb"]),             # a comma list: any of them
    ("tag:p*", ["aa"]),                          # a glob
    ("-tag:best", ["bb", "cc"]),                # `-` negates
    ("status:failed,crashed", ["bb", "cc"]),
    ("status:fail", ["bb"]),                    # the start of a status
    ("exp:other", ["cc"]),
    ("exp:sw*", ["aa", "bb"]),
    ("id:cc", ["cc"]),
    ("note:HIGH", ["aa"]),
    ("lr=0.1", ["aa", "cc"]),                   # a param, as a number
    ("lr=1e-1 opt=adam", ["cc"]),               # terms AND together
    ("aug.flip=true", ["aa"]),                  # a nested param
    ("flip=true opt=adam", []),                 # ... named as a run label names it
    ("flip=TRUE", ["aa"]),
    ("d=0.3", ["bb"]),                          # dropout, as the label shows it
    ("sweep -status:failed", ["aa"]),
    ("tag:", ["aa", "bb", "cc"]),               # as typed so far: no constraint yet
    ('note:"too high"', ["aa"]),                # quotes keep a term whole (a note's words)
])
def test_filter_grammar(text, expected):
    assert [r.id[-2:] for r in query.filter_rows(rows(), text)] == expected


def test_filter_mistakes_are_one_sentence():
    with pytest.raises(UsageError, match=r"^unknown filter 'foo:' in 'foo:bar'; use plain words"):
        query.filter_rows(rows(), "sweep foo:bar")
    with pytest.raises(UsageError, match=r"^unknown status 'done' in 'status:done'; choose from: "
                                         r"queued, starting, running, finished"):
        query.filter_rows(rows(), "status:done")
