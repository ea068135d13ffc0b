"""Issue 10, case 3: out of disk. Nothing wedges, every command answers in a sentence,
and the supervisor catches up once space returns."""

from __future__ import annotations

import json
import os
import shutil

from tests.conftest import tuiexp, write_config
from tests.faults.harness import compare_index, deadline_wait, status_of
from tuiexp.config.loader import load
from tuiexp.queue import daemon
from tuiexp.queue.client import Client
from tuiexp.store import lock
from tuiexp.store.events import TERMINAL
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.chatty]
command = "python FAKE_RUN"
epochs = 2
steps_per_epoch = 6000

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2
"""


def one_sentence(out) -> bool:
    return "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) <= 1


def test_a_full_disk_wedges_nothing_and_the_supervisor_catches_up(workdir, small_disk):
    write_config(workdir, CONFIG)
    logs = LogsDir.at(small_disk / "logs")
    opt = ("--logs", str(logs.root))
    tuiexp(workdir, *opt, "run", "quick", "--wait", check=True)
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - (700 << 10)))
    cfg = load(workdir / "experiments.toml")
    with Client(logs, autostart=False) as client:  # both queued before either starts
        (chatty,) = client.enqueue(cfg, "chatty")
        (queued,) = client.enqueue(cfg, "quick")
    assert daemon.spawn(logs)

    proc = deadline_wait(lambda: logs.run(chatty).proc.exists() and logs.run(chatty).proc, 30,
                         "the chatty run started")
    pid = json.loads(proc.read_text())["pid"]
    deadline_wait(lambda: not _alive(pid), 60, "the chatty run ended")
    assert shutil.disk_usage(small_disk).free < (64 << 10)  # the disk is full indeed

    # a full disk: the supervisor lives, reading commands work, writing ones say why
    assert lock.is_running(logs)
    for args in (("ls",), ("ls", "--json"), ("show", chatty)):
        out = tuiexp(workdir, *opt, *args)
        assert out.returncode == 0 and one_sentence(out), (args, out.stderr)
        assert chatty in out.stdout
    out = tuiexp(workdir, *opt, "run", "quick")
    assert out.returncode != 0 and one_sentence(out) and "space" in out.stderr, out.stderr

    ballast.unlink()  # space returns: the supervisor catches up, the queue goes on
    with Index(logs) as index:
        deadline_wait(lambda: status_of(index, chatty)[0] in TERMINAL, 60, "chatty concluded")
        deadline_wait(lambda: status_of(index, queued)[0] == "finished", 60, "queued run done")
        assert compare_index(logs, index, queued) == (0, 0)
    assert lock.is_running(logs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_reading_commands_read_the_run_directories_when_the_index_cannot_be_opened(workdir):
    """Where no tmpfs can be mounted too: an index that cannot be opened at all."""
    write_config(workdir, CONFIG)
    run_id = tuiexp(workdir, "run", "quick", "--wait", check=True).stdout.split()[0]
    logs = LogsDir.at(workdir / "logs")
    daemon.stop(logs)
    for suffix in ("", "-wal", "-shm"):
        (logs.root / f"index.sqlite{suffix}").unlink(missing_ok=True)
    logs.index.mkdir()  # SQLite: "unable to open database file"
    for args in (("ls",), ("show", run_id)):
        out = tuiexp(workdir, *args)
        assert out.returncode == 0 and run_id in out.stdout and "finished" in out.stdout
        assert out.stderr.count("\n") == 1 and "read from their directories" in out.stderr
    out = tuiexp(workdir, "run", "quick")
    assert out.returncode != 0 and one_sentence(out) and str(logs.index) in out.stderr
