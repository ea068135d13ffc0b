"""A run the supervisor follows but did not start is not its own (issue 21.1): a script
run by hand is never requeued, a cancel reaches its process and nothing else, and a run
whose proc.json names another host is judged by its events, not by a pid of this host."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import tuiexp, wait_for
from tests.live.test_hand_run import project  # noqa: F401 - the fixture
from tuiexp.store import atomic, events, runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec, new_run_id

SCRIPT = """
import sys, time
from pathlib import Path
from tuiexp import track
run = track.init(params={"lr": 0.1}, experiment="byhand", logs=sys.argv[1])
print(run.id, flush=True)
track.log({"acc": 0.5}, epoch=1)
track.flush()
gate = Path(sys.argv[2])
while not gate.exists():
    time.sleep(0.01)
track.finish(sys.argv[3])
"""

LOOP = """
import sys, time
from tuiexp import track
run = track.init(params={}, experiment="byhand", logs=sys.argv[1])
print(run.id, flush=True)
track.log({"acc": 0.5}, epoch=1)
track.flush()
while True:  # until SIGTERM: track raises Cancelled here and ends the run cancelled
    time.sleep(0.01)
"""


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("TUIEXP_")}
    root = str(Path(__file__).resolve().parents[2])
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [root, out.get("PYTHONPATH")]))
    return out


def show(where: Path, run_id: str) -> dict:
    return json.loads(tuiexp(where, "show", run_id, "--logs", "logs", "--json", check=True).stdout)


def followed(where: Path, run_id: str) -> bool:
    log = where / "logs" / "daemon.log"
    return log.exists() and f"following {run_id}" in log.read_text()


def test_a_hand_run_that_ends_preempted_is_not_requeued(project):  # noqa: F811
    """The supervisor requeues a run of its own that stops preempted; a script run by
    hand has no command to run again, so it stays preempted."""
    tuiexp(project, "daemon", "start", "--logs", "logs", check=True)
    gate = project / "go"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "logs", str(gate), "preempted"],
                            cwd=project, env=env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    wait_for(lambda: followed(project, run_id), timeout=60)
    gate.touch()
    assert proc.wait(timeout=60) == 0
    data = wait_for(lambda: (d := show(project, run_id))["status"] != "running" and d, timeout=60)
    assert data["status"] == "preempted"
    log = project / "logs" / "daemon.log"
    wait_for(lambda: f"{run_id} ended: preempted" in log.read_text(), timeout=60)
    queued = json.loads((project / "logs" / "runs" / run_id / "queue.json").read_text())
    assert queued["attempt"] == 1 and show(project, run_id)["status"] == "preempted"


def test_a_cancel_signals_a_hand_run_alone_when_it_leads_no_process_group(project):  # noqa: F811
    """A script started from a shell script is in the shell's process group: the cancel
    reaches the script (which ends cancelled) and leaves the shell alone."""
    tuiexp(project, "daemon", "start", "--logs", "logs", check=True)
    script = project / "loop.py"
    script.write_text(LOOP)
    shell = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" "{script}" logs; echo "shell went on"'],
        cwd=project, env=env(), stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert shell.stdout is not None
        run_id = shell.stdout.readline().strip()
        proc = json.loads((project / "logs" / "runs" / run_id / "proc.json").read_text())
        assert proc["pgid"] == shell.pid != proc["pid"]  # the script leads no group
        wait_for(lambda: followed(project, run_id), timeout=60)
        tuiexp(project, "cancel", run_id, "--logs", "logs", check=True)
        assert shell.wait(timeout=60) == 0  # not killed by the signal
        assert shell.stdout.read().strip() == "shell went on"
        data = wait_for(lambda: (d := show(project, run_id))["status"] != "running" and d,
                        timeout=60)
        assert data["status"] == "cancelled"
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()


def dead_pid() -> int:
    """A pid that no process of this host has now (one just reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("supervised", [True, False])
def test_a_run_on_another_host_is_followed_by_its_events(project, supervised):  # noqa: F811
    """A script run by hand on a compute node writes to the shared logs directory; its
    pid means nothing on this host, so neither the supervisor nor a reader calls it
    crashed: it runs until its log says it ended."""
    if supervised:
        tuiexp(project, "daemon", "start", "--logs", "logs", check=True)
    logs = LogsDir.at(project / "logs")
    spec = RunSpec(id=new_run_id("node"), experiment="node", params={}, command=("(by hand)",))
    staging = logs.runs / f".new-{spec.id}"
    staging.mkdir(parents=True)
    atomic.write_json(staging / "run.json", spec.to_json())
    atomic.write_json(staging / "queue.json", {"attempt": 1, "priority": 0, "queued": time.time()})
    host = "node-7" if socket.gethostname() != "node-7" else "node-8"
    atomic.write_json(staging / "proc.json", {
        "pid": dead_pid(), "pgid": 1, "host": host, "attempt": 1, "start_time": time.time(),
        "started": time.time(), "standalone": True})
    log = staging / "events.jsonl"
    events.append(log, "start", time.time(), {"pid": 1, "host": host})
    events.append(log, "epoch", time.time(), {"epoch": 1, "acc": 0.25})
    os.rename(staging, logs.runs / spec.id)
    log = logs.run(spec.id).events

    def at(epoch: int, status: str):
        return lambda: (d := show(project, spec.id))["epoch"] == epoch and d["status"] == status

    wait_for(at(1, "running"), timeout=60)
    assert show(project, spec.id)["message"] == f"on {host}"
    events.append(log, "epoch", time.time(), {"epoch": 2, "acc": 0.5})
    wait_for(at(2, "running"), timeout=60)
    events.append(log, "status", time.time(), {"status": "finished", "message": ""})
    wait_for(at(2, "finished"), timeout=60)
    assert runstore.derive_status(logs.run(spec.id), None).status == "running"  # by its pid
