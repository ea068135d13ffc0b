"""An attempt is claimed in its run directory before it starts (issue 19.1), and the
records of a run's end are written into space taken at its start (issue 19.2)."""

from __future__ import annotations

import os
import time

from tuiexp.store import atomic, runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


def made(tmp_path):
    return runstore.create(LogsDir.at(tmp_path / "logs"), RunSpec(id="r1", experiment="x",
                                                                 params={}))


def test_an_attempt_is_claimed_once_and_never_after_it_ran(tmp_path):
    paths = made(tmp_path)
    assert runstore.claim(paths, 1) and not runstore.claim(paths, 1)
    runstore.write_proc(paths, os.getpid(), attempt=1)
    (paths.dir / "attempt-1.claim").unlink()  # a directory from before claims existed
    assert not runstore.claim(paths, 1)  # proc.json says attempt 1 ran
    assert runstore.next_attempt(paths) == 2 and runstore.claim(paths, 2)
    assert runstore.next_attempt(paths) == 3  # a claimed attempt is never asked for again


def test_a_claim_without_its_process_is_starting_then_crashed(tmp_path):
    paths = made(tmp_path)
    assert runstore.derive_status(paths, None).status == "queued"
    runstore.claim(paths, 1)
    assert runstore.derive_status(paths, None).status == "starting"
    old = time.time() - runstore.START_GRACE - 1
    os.utime(paths.claim(1), (old, old))
    verdict = runstore.derive_status(paths, None)
    assert verdict.status == "crashed" and "resume it" in verdict.message


def test_a_reserved_record_is_written_in_its_own_space(tmp_path):
    target = tmp_path / "exit.json"
    assert atomic.reserve(target)
    spare = atomic.reserved(target)
    blocks = os.stat(spare).st_blocks
    atomic.fill_reserved(target, {"returncode": 0, "attempt": 1})
    assert not spare.exists() and os.stat(target).st_blocks == blocks
    assert runstore.read_json(target) == {"returncode": 0, "attempt": 1}
    atomic.fill_reserved(tmp_path / "other.json", {"x": 1})  # no reservation: a plain write
    assert runstore.read_json(tmp_path / "other.json") == {"x": 1}


def test_a_final_record_counting_lost_events_says_so_whatever_decided_the_status(tmp_path):
    paths = made(tmp_path)
    runstore.write_proc(paths, 99_999_999, attempt=1)
    proc_started = runstore.read_json(paths.proc)["started"]
    atomic.write_json(paths.final, {"t": proc_started + 1, "status": "finished", "message": "",
                                    "dropped": 1234, "reason": "disk full"})
    verdict = runstore.derive_status(paths, None)
    assert (verdict.status, verdict.message, verdict.dropped) == (
        "finished", "1,234 events lost: disk full", 1234)
    status = {"kind": "status", "status": "failed", "message": "boom", "t": proc_started + 1}
    verdict = runstore.derive_status(paths, status)
    assert verdict.message == "boom; 1,234 events lost: disk full"
