"""Seen as soon as it is logged (issue 21.2): the flush thread writes the first event
after a quiet spell at once, and the supervisor handles a run's new lines, a new run
directory and a run's exit when they happen, not at its next tick. The clocks are set
to an hour here, so only the wake-ups can pass these tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tuiexp.queue import daemon
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

HOUR = 3600.0

SCRIPT = """
import os, sys, time
from pathlib import Path
from tuiexp import track
from tuiexp.track import run as runmod
runmod.FLUSH_INTERVAL = 3600.0  # only the wake-up on the first event can write it
run = track.init(params={}, experiment="byhand", logs=sys.argv[1])
print(run.id, flush=True)
gate = Path(sys.argv[2])
for epoch in (1, 2):
    track.log({"acc": epoch / 10}, epoch=epoch)  # no flush() here
    while not (gate / f"go-{epoch}").exists():
        time.sleep(0.01)
os._exit(3)  # dies without a final status: the supervisor must see the exit itself
"""


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("TUIEXP_")}
    root = str(Path(__file__).resolve().parents[2])
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [root, out.get("PYTHONPATH")]))
    return out


def logged(events: Path, epoch: int) -> bool:
    try:
        lines = events.read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(json.loads(line).get("epoch") == epoch for line in lines if line.endswith("}"))


@pytest.fixture
def sleepy_supervisor(tmp_path, monkeypatch):
    """A supervisor whose tick and directory scan come once an hour, serving in a thread;
    stopped at the end (a new entry in runs/ wakes it to see that)."""
    monkeypatch.setattr(daemon, "TICK", HOUR)
    monkeypatch.setattr(daemon, "SCAN_EVERY", HOUR)
    logs = LogsDir.at(tmp_path / "logs")
    sup = daemon.Supervisor(logs)
    thread = threading.Thread(target=sup.serve, daemon=True)
    thread.start()
    yield logs
    sup.stopping = True
    (logs.runs / ".wake").mkdir()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_between_ticks_the_supervisor_follows_a_hand_run_and_sees_it_die(sleepy_supervisor, tmp_path):
    logs = sleepy_supervisor
    gates = tmp_path / "gates"
    gates.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(logs.root), str(gates)],
                            env=env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        events = logs.run(run_id).events
        with Index(logs) as index:
            def row(epoch: int, status: str) -> bool:
                r = index.run(run_id)
                return r is not None and r.epoch == epoch and r.status == status

            wait_for(lambda: logged(events, 1), timeout=30)  # the flush woke on it
            wait_for(lambda: row(1, "running"), timeout=30)  # found, followed, ingested
            (gates / "go-1").touch()
            wait_for(lambda: row(2, "running"), timeout=30)  # a new line: ingested
            (gates / "go-2").touch()
            assert proc.wait(timeout=30) == 3
            wait_for(lambda: row(2, "crashed"), timeout=30)  # the exit: seen and judged
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
