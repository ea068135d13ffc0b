"""Issue 19, cases 1 and 3: the index deleted, replaced or corrupted under a running
supervisor. The run directory is the truth; the index is a cache that is rebuilt.

Real processes only: the CLI, a detached supervisor, run processes, and the files of
the logs directory (`logs/index.sqlite` is deleted, restored from a copy, corrupted).
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.faults.outside import (
    GATED,
    TERMINAL,
    cli,
    ok,
    queue,
    read_json,
    row,
    run_dir,
    script,
    starts,
    status,
    stop_supervisor,
    until,
    wait_status,
)

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = {jobs}

[experiments.long]
command = "python GATED"
gate = "GATE"

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2
"""


@pytest.fixture
def gate(workdir: Path):
    """The file that lets the gated runs finish; made at the end whatever happened."""
    path = workdir / "release"
    yield path
    path.touch()


def setup(where: Path, gate: Path, jobs: int) -> Path:
    """experiments.toml with a gated `long` and a `quick` run; the logs dir."""
    gated = script(where, "gated.py", GATED)
    write_config(where, CONFIG.format(jobs=jobs).replace("GATED", str(gated))
                 .replace("GATE", str(gate)))
    return where / "logs"


def index_files(logs: Path) -> list[Path]:
    return [logs / f"index.sqlite{s}" for s in ("", "-wal", "-shm")]


def epoch_of(where: Path, run_id: str) -> int:
    return row(where, run_id).get("epoch") or 0


# -- case 1: a deleted index -----------------------------------------------------------
@pytest.mark.slow
def test_case1_a_deleted_index_is_noticed_and_rebuilt_by_the_running_supervisor(workdir, gate):
    logs = setup(workdir, gate, jobs=3)
    longs = [queue(workdir, "long"), queue(workdir, "long")]
    for rid in longs:
        until(lambda r=rid: epoch_of(workdir, r) >= 1, f"{rid} logged an epoch")

    for path in index_files(logs):  # the index goes away while 2 runs are active
        path.unlink(missing_ok=True)
    ok(workdir, "ls")  # builds a fresh index from the run directories
    quick = queue(workdir, "quick")
    until(lambda: (run_dir(logs, quick) / "exit.json").exists(), "the quick run ended")

    # the fresh index is the one every command reads: it must follow the runs
    seen = {rid: epoch_of(workdir, rid) for rid in longs}
    for rid in longs:
        until(lambda r=rid: epoch_of(workdir, r) > seen[r],
              f"{rid}'s epoch moving on in the fresh index (stuck at {seen[rid]})", timeout=20)
    wait_status(workdir, quick, ("finished",), timeout=20)
    assert cli(workdir, "wait", quick, timeout=60).returncode == 0

    gate.touch()
    for rid in longs:
        wait_status(workdir, rid, TERMINAL)
    assert [status(workdir, r) for r in longs] == ["finished", "finished"]
    stop_supervisor(workdir)  # a new supervisor reads the same index: nothing starts again
    ok(workdir, "daemon", "start")
    wait_status(workdir, quick, ("finished",))
    assert starts(logs, quick) == 1


def test_case1_a_run_is_never_started_twice_whatever_the_index_says(workdir, gate):
    """An index restored from a copy made while a run was queued (rsync, a backup): the
    run directory says attempt 1 ran and ended; the supervisor must believe it."""
    logs = setup(workdir, gate, jobs=1)
    blocker = queue(workdir, "long")
    wait_status(workdir, blocker, ("running",))
    quick = queue(workdir, "quick")  # waits behind the blocker
    assert status(workdir, quick) == "queued"

    stop_supervisor(workdir)  # its connection closes: the index is whole in index.sqlite
    backup = workdir / "index-backup"
    backup.mkdir()
    for path in index_files(logs):
        if path.exists():
            shutil.copy2(path, backup / path.name)

    ok(workdir, "daemon", "start")
    gate.touch()
    wait_status(workdir, quick, ("finished",))
    wait_status(workdir, blocker, ("finished",))
    proc = read_json(run_dir(logs, quick) / "proc.json")
    assert starts(logs, quick) == 1

    stop_supervisor(workdir)
    for path in index_files(logs):  # the copy comes back: it says `quick` is queued
        path.unlink(missing_ok=True)
    for path in backup.iterdir():
        shutil.copy2(path, logs / path.name)
    ok(workdir, "daemon", "start")
    wait_status(workdir, quick, ("finished",))
    wait_status(workdir, blocker, ("finished",))
    assert starts(logs, quick) == 1, "attempt 1 of the run was started a second time"
    assert read_json(run_dir(logs, quick) / "proc.json") == proc


# -- case 3: a corrupted index ------------------------------------------------------------
def corrupt(index: Path) -> str:
    """Seeded random bytes over the pages of the index's biggest table (the metric points,
    which opening the index never reads), as a failing disk or a stray write would leave
    it; the WAL is checkpointed into the file first, so no copy of a page survives there.
    Returns the table's name."""
    with sqlite3.connect(index, timeout=30) as db:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        name, = db.execute("SELECT name FROM dbstat WHERE name NOT LIKE 'sqlite%'"
                           " GROUP BY name ORDER BY COUNT(*) DESC LIMIT 1").fetchone()
        pages = [p for p, in db.execute("SELECT pageno FROM dbstat WHERE name = ?", (name,))]
        size, = db.execute("PRAGMA page_size").fetchone()
    db.close()
    assert busy == 0 and pages
    rng = random.Random(19)
    with open(index, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * size)
            f.write(rng.randbytes(size))
    return str(name)


@pytest.mark.slow
def test_case3_a_corrupted_index_is_moved_aside_and_rebuilt(workdir, gate):
    logs = setup(workdir, gate, jobs=2)
    done = ok(workdir, "run", "quick", "--wait").split()[0]
    long = queue(workdir, "long")
    until(lambda: epoch_of(workdir, long) >= 2, f"{long} logged epochs")

    table = corrupt(logs / "index.sqlite")  # while the supervisor runs and `long` is active
    said = []

    out = cli(workdir, "doctor")
    said.append(out.stdout + out.stderr)
    # the damage is reported: still there ("malformed"), or already moved aside by the
    # supervisor, which meets it at its next write of the table
    assert ("malformed" in said[-1] or "moved aside" in said[-1]) and \
        "no problems found" not in said[-1], \
        f"doctor on an index whose `{table}` pages are garbage:\n{said[-1]}"
    out = cli(workdir, "plot", "curves", "-o", str(workdir / "curves.png"))
    said.append(out.stdout + out.stderr)
    assert out.returncode == 0, out.stderr
    out = cli(workdir, "reindex")  # the supervisor still runs
    said.append(out.stdout + out.stderr)
    assert out.returncode == 0, out.stderr
    assert list(logs.glob("index.sqlite.corrupt-*")), "the malformed index was not moved aside"
    out = cli(workdir, "ls")
    said.append(out.stdout + out.stderr)
    assert out.returncode == 0 and done in out.stdout and long in out.stdout, out.stderr
    assert status(workdir, done) == "finished"

    gate.touch()  # the supervisor goes on with the rebuilt index
    wait_status(workdir, long, ("finished",))
    again = ok(workdir, "run", "quick", "--wait").split()[0]
    assert status(workdir, again) == "finished"
    out = cli(workdir, "doctor")
    said.append(out.stdout + out.stderr)
    assert "malformed" not in said[-1]
    assert not any("free some space" in text for text in said), said
    assert starts(logs, long) == 1 and starts(logs, again) == 1
