"""Helpers for fault tests that look at tuiexp only from outside (issue 19).

Nothing here imports tuiexp's modules: a run is seen through the real CLI
(`tuiexp ls --json`, `show --json`), its run directory (proc.json, exit.json,
events.jsonl) and /proc, so these tests survive any move of the code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import tuiexp

TERMINAL = ("finished", "failed", "crashed", "cancelled", "oom", "diverged", "preempted", "pruned")


def cli(where: Path, *args: str, logs: Path | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    """The real CLI in `where` (with --logs when given)."""
    opts = ("--logs", str(logs)) if logs is not None else ()
    return tuiexp(where, *opts, *args, timeout=timeout)


def ok(where: Path, *args: str, logs: Path | None = None) -> str:
    out = cli(where, *args, logs=logs)
    assert out.returncode == 0, f"tuiexp {' '.join(args)} ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout


def queue(where: Path, experiment: str, logs: Path | None = None) -> str:
    """`tuiexp run EXPERIMENT` for an experiment of one run; its id."""
    (run_id,) = ok(where, "run", experiment, logs=logs).split()
    return run_id


def listing(where: Path, logs: Path | None = None) -> dict[str, dict[str, Any]]:
    """`tuiexp ls --json`, by run id ({} when ls fails)."""
    out = cli(where, "ls", "--json", logs=logs)
    if out.returncode != 0:
        return {}
    return {r["id"]: r for r in json.loads(out.stdout)}


def row(where: Path, run_id: str, logs: Path | None = None) -> dict[str, Any]:
    return listing(where, logs).get(run_id, {})


def until(predicate: Any, what: str, timeout: float = 60, every: float = 0.2) -> Any:
    """Poll `predicate` until truthy and return it; AssertionError naming `what` at the
    deadline (a deadline only bounds a wait: no test asserts on how long a thing takes)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def status(where: Path, run_id: str, logs: Path | None = None) -> str:
    return row(where, run_id, logs).get("status", "")


def wait_status(where: Path, run_id: str, statuses: tuple[str, ...], timeout: float = 60,
                logs: Path | None = None) -> str:
    last = [""]

    def reached() -> str | bool:
        last[0] = status(where, run_id, logs)
        return last[0] in statuses and last[0]

    try:
        return str(until(reached, f"{run_id} {' or '.join(statuses)}", timeout))
    except AssertionError as e:
        raise AssertionError(f"{e} (last seen: {last[0] or 'not listed'})") from None


def run_dir(logs: Path, run_id: str) -> Path:
    return logs / "runs" / run_id


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def events(path: Path) -> list[dict[str, Any]]:
    """The complete, valid lines of an event log (a torn last line is not one)."""
    out = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return out
    for line in data.split(b"\n")[:-1]:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out


def starts(logs: Path, run_id: str) -> int:
    """How many processes started for this run (its `start` events)."""
    return sum(1 for e in events(run_dir(logs, run_id) / "events.jsonl") if e.get("kind") == "start")


def alive(pid: int) -> bool:
    """Is `pid` a live process (a zombie is dead)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of the process itself (not its children), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def supervisor_pid(logs: Path) -> int | None:
    info = read_json(logs / "daemon.json")
    return int(info["pid"]) if info and alive(int(info["pid"])) else None


def stop_supervisor(where: Path, logs: Path | None = None) -> None:
    ok(where, "daemon", "stop", logs=logs)


def script(where: Path, name: str, body: str) -> Path:
    path = where / name
    path.write_text(body)
    return path


def run_by_hand(where: Path, path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A script started by hand in `where` (a standalone run: it logs into ./logs)."""
    env = {k: v for k, v in os.environ.items() if k != "TUIEXP_RUN_DIR"}
    return subprocess.run([sys.executable, str(path)], cwd=where, text=True, capture_output=True,
                          timeout=timeout, env=env)


#: a run that logs an epoch every 0.1 s until its `gate` file exists (at most 600), then
#: finishes: it runs exactly as long as a test wants
GATED = """
import os, time
from tuiexp import track

run = track.init()
gate = run.params["gate"]
epoch = 0
while epoch < run.params.get("min_epochs", 0) or (not os.path.exists(gate) and epoch < 600):
    epoch += 1
    track.log(epoch=epoch, val_acc=epoch / 1000)
    time.sleep(0.1)
track.finish()
"""
