"""Fault injection with real processes, shared by tests/faults and bench/faults_bench.py.

Every random choice comes from a seeded `random.Random`, so a failing kill point can be
replayed (the times at which a process is killed still vary with the machine's load).
What a run's index holds is read in one place (`indexed_steps`, `indexed_epochs`,
`status_of`), so a change of the index's API is adapted here only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import FAKE_RUN, write_config
from tests.faults.outside import until
from tuiexp.config.loader import load
from tuiexp.queue import daemon
from tuiexp.queue.client import Client
from tuiexp.store import events, lock, query
from tuiexp.store.index import Index
from tuiexp.store.metrics import RESERVED
from tuiexp.store.paths import LogsDir

HERE = Path(__file__).resolve().parent
KILL_RUN = HERE / "kill_run.py"

KILL_CONFIG = """
[queue]
gpus = "none"
cpu_jobs = {jobs}

[experiments.victim_json]
command = "python KILL_RUN"
torch = false
epochs = {epochs}
steps_per_epoch = 6
sleep = 0.01
size = 20000

[experiments.victim_torch]
extends = "victim_json"
torch = true
size = 100000
epochs = {torch_epochs}
"""
SIZES = {"victim_json": 20000, "victim_torch": 100000}

SLOW_CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 2

[experiments.slow]
command = "python FAKE_RUN"
epochs = 6
steps_per_epoch = 10
sleep = 0.025
"""


def config(where: Path, body: str) -> Path:
    return write_config(where, body.replace("KILL_RUN", str(KILL_RUN)))


def deadline_wait(predicate: Any, timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll `predicate` until truthy; AssertionError naming `what` at the deadline."""
    return until(predicate, what, timeout, every)


# -- what the index holds (one place to adapt) -----------------------------------
def status_of(index: Index, run_id: str) -> tuple[str, str]:
    row = index.run(run_id)
    return (row.status, row.message) if row else ("", "")


def indexed_steps(index: Index, run_id: str) -> list[int]:
    """Steps the index holds any metric at (each step once: points are keyed)."""
    row = query.get_run(index, run_id)
    if row is None:
        return []
    steps: set[int] = set()
    for name, scope in row.summaries:
        if scope == "step":
            steps.update(x for x, _ in index.points(row.num, name, "step"))
    return sorted(steps)


def indexed_epochs(index: Index, run_id: str) -> dict[int, dict[str, Any]]:
    """Per epoch, the metric values the index holds."""
    row = query.get_run(index, run_id)
    out: dict[int, dict[str, Any]] = {}
    for name, scope in row.summaries if row else ():
        if scope == "epoch":
            for x, v in index.points(row.num, name, "epoch"):
                out.setdefault(x, {})[name] = v
    return out


# -- what a run directory holds ----------------------------------------------------
def bad_lines(path: Path) -> int:
    """Complete lines of an event log that are not valid events (a torn last line,
    without its newline, is not complete and not counted)."""
    return events.read_from(path, 0, max_bytes=None).skipped


def last_per_key(evs: list[dict[str, Any]], kind: str, key: str) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for e in evs:
        if e.get("kind") == kind and isinstance(e.get(key), int):
            out[e[key]] = e
    return out


def compare_index(logs: LogsDir, index: Index, run_id: str) -> tuple[int, int]:
    """(events lost, events doubled): step and epoch events in the run's log that the
    index lacks or holds differently, and index rows beyond the log's keys."""
    evs = events.read_all(logs.run(run_id).events)
    steps = last_per_key(evs, "step", "step")
    epochs = last_per_key(evs, "epoch", "epoch")
    in_steps = indexed_steps(index, run_id)
    in_epochs = indexed_epochs(index, run_id)
    lost = len(set(steps) - set(in_steps))
    lost += sum(1 for e, ev in epochs.items()
                if any(in_epochs.get(e, {}).get(k) != v for k, v in ev.items()
                       if k not in RESERVED and type(v) in (int, float)))
    doubled = len(set(in_steps) - set(steps)) + len(set(in_epochs) - set(epochs))
    return lost, doubled


# -- killing runs -------------------------------------------------------------------
@dataclass
class KillStats:
    kills: int = 0
    survived: int = 0  # runs killed, resumed, and finished bit-exact
    runs: int = 0
    during_checkpoint: int = 0
    checkpoints: int = 0
    corrupt_checkpoints: int = 0
    corrupt_event_lines: int = 0
    events_lost: int = 0
    events_doubled: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, **counts: int) -> None:
        with _lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)


_lock = threading.Lock()


def _live_attempt(logs: LogsDir, run_id: str, attempt: int) -> int | None:
    proc = json.loads(logs.run(run_id).proc.read_text()) if logs.run(run_id).proc.exists() else {}
    if proc.get("attempt") == attempt and proc.get("pid"):
        try:
            os.kill(proc["pid"], 0)
        except ProcessLookupError:
            return None
        return int(proc["pid"])
    return None


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _ckpt_temp(logs: LogsDir, run_id: str, pid: int) -> bool:
    """Is process `pid` writing a checkpoint (its temporary file is there)?"""
    return any(f".{pid}." in n and n.endswith(".tmp") for n in os.listdir(logs.run(run_id).ckpt))


def _checkpoints(paths: Any, chain: list[list[float]], seen: set[tuple[str, int]]) -> tuple[int, int]:
    """(checkpoints, corrupt ones) among those not `seen` before: each must load and hold
    exactly its epoch's state."""
    count = bad = 0
    for path in sorted(paths.ckpt.glob("epoch-*.pt")) + sorted(paths.ckpt.glob("state-*.json")):
        key = (path.name, path.stat().st_ino)
        if key in seen:
            continue
        seen.add(key)
        epoch = int(path.stem.split("-")[1])
        try:
            if path.suffix == ".pt":
                import torch

                state = torch.load(path, weights_only=True)
                x = state["x"].tolist()
            else:
                state = json.loads(path.read_text())
                x = state["x"]
            good = state["epoch"] == epoch and x == chain[epoch]
        except Exception:  # noqa: BLE001 - any failure to load is corruption
            good = False
        count, bad = count + 1, bad + (not good)
    return count, bad


def _hunt(logs: LogsDir, run_id: str, kills: int, rng: random.Random,
          stats: KillStats, chain: list[list[float]]) -> None:
    """Kill one run `kills` times at random points, checking and resuming it each time."""
    paths = logs.run(run_id)
    seen: set[tuple[str, int]] = set()
    with Client(logs) as client:
        for attempt in range(1, kills + 1):
            pid = deadline_wait(lambda a=attempt: _live_attempt(logs, run_id, a), 60,
                                f"{run_id} attempt {attempt} running")
            if rng.random() < 0.35:  # aim at a checkpoint write
                deadline_wait(lambda p=pid: _ckpt_temp(logs, run_id, p), 60,
                              "a checkpoint write", every=0.002)
            else:
                target = _lines(paths.events) + rng.randint(1, 25)
                deadline_wait(lambda t=target: _lines(paths.events) >= t, 60, "events",
                              every=0.01)
                time.sleep(rng.uniform(0, 0.03))
            os.killpg(pid, signal.SIGKILL)
            stats.add(kills=1, during_checkpoint=int(_ckpt_temp(logs, run_id, pid)))
            status, message = deadline_wait(
                lambda: (s := status_of(client.index, run_id))[0] == "crashed" and s, 30,
                f"{run_id} shown crashed")
            if "SIGKILL" not in message:
                stats.problems.append(f"{run_id}: crashed with message {message!r}")
            count, bad = _checkpoints(paths, chain, seen)
            stats.add(corrupt_event_lines=bad_lines(paths.events), checkpoints=count,
                      corrupt_checkpoints=bad)
            client.resume(run_id)


def kill_runs(workdir: Path, plan: list[tuple[str, int]], seed: int = 0,
              epochs: int = 30) -> KillStats:
    """Queue one run per (experiment, kills) of `plan` (`victim_json`, `victim_torch`),
    SIGKILL each that many times at random points (each time: shown crashed, event log
    and checkpoints intact, resumed), let them finish, and compare each with an
    uninterrupted run and with the index."""
    sys.path.insert(0, str(HERE))
    from kill_run import advance, initial

    chains = {}
    for name, size in SIZES.items():
        chains[name] = [initial(size)]
        for e in range(1, epochs + 1):
            chains[name].append(advance(chains[name][-1], e))
    torch_epochs = max(6, epochs // 2)  # its epochs cost more; a few suffice between kills
    config(workdir, KILL_CONFIG.format(jobs=len(plan), epochs=epochs, torch_epochs=torch_epochs))
    logs = LogsDir.at(workdir / "logs")
    cfg = load(workdir / "experiments.toml")
    with Client(logs) as client:
        ids = [client.enqueue(cfg, name)[0] for name, _ in plan]
    stats = KillStats(runs=len(plan))
    rng = random.Random(seed)
    errors: list[BaseException] = []

    def hunt(*args: Any) -> None:
        try:
            _hunt(*args)
        except BaseException as e:  # noqa: BLE001 - raised in the test's thread below
            errors.append(e)

    threads = [threading.Thread(target=hunt, args=(logs, rid, kills, random.Random(rng.random()),
                                                   stats, chains[name]), daemon=True)
               for rid, (name, kills) in zip(ids, plan, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise errors[0]
    with Index(logs) as index:
        deadline_wait(lambda: all(status_of(index, r)[0] in ("finished", "failed", "crashed")
                                  for r in ids), 120, "every run ended")
        for rid, (name, _) in zip(ids, plan, strict=True):
            evs = events.read_all(logs.run(rid).events)
            last = last_per_key(evs, "epoch", "epoch")
            n = torch_epochs if name == "victim_torch" else epochs
            exact = status_of(index, rid)[0] == "finished" and all(
                last.get(e, {}).get("checksum") == sum(chains[name][e]) for e in range(1, n + 1))
            lost, doubled = compare_index(logs, index, rid)
            stats.add(survived=int(exact), events_lost=lost, events_doubled=doubled)
            if not exact:
                stats.problems.append(f"{rid} ended {status_of(index, rid)} and not bit-exact")
    return stats


# -- killing the supervisor -----------------------------------------------------------
@dataclass
class SupervisorKillStats:
    kills: int = 0
    runs: int = 0
    finished: int = 0
    events_lost: int = 0
    events_doubled: int = 0
    started_twice: int = 0
    queue_order_kept: bool = True


def kill_supervisor(workdir: Path, kills: int = 3, seed: int = 0) -> SupervisorKillStats:
    """Two active and two queued runs; SIGKILL the supervisor `kills` times at random
    moments and start a new one each time; every run must finish once, in queue order,
    with every event in the index exactly once."""
    config(workdir, SLOW_CONFIG)
    logs = LogsDir.at(workdir / "logs")
    cfg = load(workdir / "experiments.toml")
    with Client(logs) as client:
        ids = [client.enqueue(cfg, "slow")[0] for _ in range(4)]
    rng = random.Random(seed)
    stats = SupervisorKillStats(runs=len(ids))
    with Index(logs) as index:
        for _ in range(kills):
            deadline_wait(lambda: any(status_of(index, r)[0] == "running" for r in ids), 60,
                          "a run running")
            time.sleep(rng.uniform(0.1, 0.6))
            info = lock.info(logs)
            if info is None:
                continue
            os.kill(int(info["pid"]), signal.SIGKILL)
            deadline_wait(lambda: not lock.is_running(logs), 30, "the supervisor gone")
            stats.kills += 1
            assert daemon.spawn(logs)
        deadline_wait(lambda: all(status_of(index, r)[0] in ("finished", "failed", "crashed")
                                  for r in ids), 120, "every run ended")
        started = []
        for rid in ids:
            paths = logs.run(rid)
            proc = json.loads(paths.proc.read_text())
            started.append(proc["started"])
            stats.started_twice += proc["attempt"] != 1
            stats.finished += status_of(index, rid)[0] == "finished"
            lost, doubled = compare_index(logs, index, rid)
            on_disk = [e["step"] for e in events.read_all(paths.events) if e["kind"] == "step"]
            doubled += len(on_disk) - len(set(on_disk))
            stats.events_lost += lost
            stats.events_doubled += doubled
        stats.queue_order_kept = started[2] <= started[3] and max(started[:2]) <= min(started[2:])
    return stats


def tuiexp_with_umask(where: Path, umask: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI under a given umask (inherited by the supervisor it starts, and runs)."""
    return subprocess.run([sys.executable, "-m", "tuiexp.cli", *args], cwd=where, text=True,
                          capture_output=True, timeout=120, preexec_fn=lambda: os.umask(umask))


__all__ = ["FAKE_RUN", "KillStats", "kill_runs", "kill_supervisor", "config"]
