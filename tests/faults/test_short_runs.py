"""Issue 19, cases 2 and 6: no run may end silently short.

A run that lost events (a full disk), an import that stopped early (a truncated or
corrupt TensorBoard file) or a parser that fell behind must say so where the run is
shown; a run whose process has exited is never shown `running`.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.faults.outside import (
    TERMINAL,
    alive,
    cli,
    events,
    ok,
    queue,
    read_json,
    row,
    run_dir,
    script,
    status,
    until,
    wait_status,
)

# -- case 2: a full disk ------------------------------------------------------------------
EPOCHS, STEPS = 300, 1000
MANY = f"""
from tuiexp import track

track.init()
n = 0
for epoch in range(1, {EPOCHS} + 1):
    for _ in range({STEPS}):
        n += 1
        track.log(step=n, loss=1.0 / n)
    track.log(epoch=epoch, val_acc=epoch / {EPOCHS})
track.finish()
"""

DISK_CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.many]
command = "python MANY"

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2
"""


def said_about(where: Path, run_id: str, logs: Path) -> str:
    """Everything `show --json` says about a run beyond its numbers: status, message,
    warnings."""
    shown = json.loads(ok(where, "show", run_id, "--json", logs=logs))
    return " ".join([shown["status"], shown.get("message") or "", *shown.get("warnings", [])])


@pytest.mark.slow
def test_case2_a_run_that_lost_events_to_a_full_disk_says_so(workdir, small_disk):
    many = script(workdir, "many.py", MANY)
    write_config(workdir, DISK_CONFIG.replace("MANY", str(many)))
    logs = small_disk / "logs"
    ok(workdir, "run", "quick", "--wait", logs=logs)  # the index and the supervisor exist
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - (1500 << 10)))

    rid = queue(workdir, "many", logs=logs)
    proc = until(lambda: read_json(run_dir(logs, rid) / "proc.json"), "the run started")
    until(lambda: not alive(proc["pid"]), "the run's process exited")
    assert shutil.disk_usage(small_disk).free < (64 << 10)  # the disk is full indeed

    # its process is gone: whatever could not be recorded, it is not running
    until(lambda: status(workdir, rid, logs) not in ("", "running"),
          "the dead run no longer shown running", timeout=20)
    out = cli(workdir, "resume", rid, logs=logs)
    assert "is running" not in out.stderr, out.stderr

    ballast.unlink()  # space returns: the run concludes, and says what it lost
    wait_status(workdir, rid, TERMINAL, logs=logs)
    on_disk = sum(1 for e in events(run_dir(logs, rid) / "events.jsonl")
                  if e.get("kind") in ("step", "epoch"))
    lost = EPOCHS * STEPS + EPOCHS - on_disk
    assert lost > 0  # the disk did refuse most of them
    said = said_about(workdir, rid, logs)
    assert str(lost) in said or f"{lost:,}" in said, \
        f"{lost} events were lost, and the run says: {said!r}"


# -- case 6: a truncated or corrupt TensorBoard file -----------------------------------------
TB_WRITER = """
import sys
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

writer = EventFileWriter(sys.argv[1])
for step in range(400):
    value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (step + 1))
    writer.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step,
                                     summary=summary_pb2.Summary(value=[value])))
writer.close()
"""


def tb_file(where: Path, name: str) -> Path:
    """A real TensorBoard event file of 400 scalars (tensorboard's own writer), in
    `where/tb/name/`."""
    pytest.importorskip("tensorboard")
    folder = where / "tb" / name
    folder.mkdir(parents=True)
    writer = script(where, "tb_writer.py", TB_WRITER)
    subprocess.run([sys.executable, str(writer), str(folder)], check=True, timeout=120)
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "flipped":
        start = len(data) // 3
        for i in range(start, start + 200):
            data[i] ^= 0xFF
    elif how == "garbage":
        data = bytearray(random.Random(6).randbytes(len(data)))
    path.write_bytes(bytes(data))


def imported_ids(out: str) -> list[str]:
    return [word for word in out.split() if re.fullmatch(r"\d{8}-\d{6}-[\w.-]+", word)]


def imported_id(out: str) -> str:
    ids = imported_ids(out)
    assert len(ids) == 1, out
    return ids[0]


@pytest.mark.parametrize("how", ["truncated", "flipped", "garbage"])
def test_case6_a_damaged_event_file_imports_what_it_can_with_a_warning(workdir, how):
    path = tb_file(workdir, how)
    damage(path, how)
    out = cli(workdir, "import", "tb", str(workdir / "tb"))
    assert "Traceback" not in out.stderr, out.stderr
    assert path.name in out.stdout + out.stderr, f"the import named no file:\n{out.stdout}{out.stderr}"
    ids = imported_ids(out.stdout)
    if how == "garbage" and not ids:
        return  # nothing readable: no run, and the file was named
    (rid,) = ids
    said = said_about(workdir, rid, workdir / "logs")
    assert path.name in said, f"the imported run does not say it is partial: {said!r}"


def test_case6_an_event_file_mended_after_an_import_is_imported_again(workdir):
    path = tb_file(workdir, "run")
    whole = path.read_bytes()
    damage(path, "truncated")
    first = imported_id(ok(workdir, "import", "tb", str(workdir / "tb")))
    path.write_bytes(whole)  # the file is complete again (a copy finished, a disk mended)
    out = ok(workdir, "import", "tb", str(workdir / "tb"))
    assert "already imported" not in out, out
    second = imported_id(out)
    assert second != first
    counts = {rid: row(workdir, rid)["metrics"]["loss@step"]["count"] for rid in (first, second)}
    assert counts[second] == 400 and counts[first] < 400, counts
