"""Fault figures (issue 10), measured with real processes in one run.

    PYTHONPATH=. python bench/faults_bench.py [--seed N] [--kills N]

1. Runs killed with SIGKILL at seeded random points (some aimed at checkpoint
   writes): kills survived (crashed, resumed, finished bit-exact), corrupt
   checkpoints and event lines, events lost or doubled in the index.
2. The supervisor killed with SIGKILL while two runs are active and two queued:
   runs finished once each, events lost or doubled, queue order.
3. Configs `tuiexp check` must reject: how many are rejected with the file and
   a line number, in one sentence.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.harness import kill_runs, kill_supervisor  # noqa: E402
from tests.faults.test_cases import CHECK_CASES  # noqa: E402
from tuiexp.queue import daemon  # noqa: E402
from tuiexp.store import lock  # noqa: E402
from tuiexp.store.paths import LogsDir  # noqa: E402


def bench_run_kills(tmp: Path, kills: int, seed: int) -> None:
    torch_kills = max(1, kills * 3 // 10)  # torch runs: 2-3 s of CPU per start
    plan = [("victim_torch", torch_kills - torch_kills // 2), ("victim_torch", torch_kills // 2)]
    rest = kills - torch_kills
    plan += [("victim_json", rest // 4 + (i < rest % 4)) for i in range(4)]
    plan = [p for p in plan if p[1] > 0]
    t = time.perf_counter()
    try:
        s = kill_runs(tmp, plan, seed=seed)
    finally:
        _stop(tmp)
    print(f"run kills: {s.kills} SIGKILLs of {s.runs} runs ({s.during_checkpoint} during a "
          f"checkpoint write) in {time.perf_counter() - t:.0f} s")
    print(f"  runs that came back (crashed, resumed, finished bit-exact): {s.survived}/{s.runs}")
    print(f"  corrupt checkpoints: {s.corrupt_checkpoints} of {s.checkpoints} checked; "
          f"corrupt event lines: {s.corrupt_event_lines}")
    print(f"  events lost: {s.events_lost}; events doubled: {s.events_doubled}")
    for p in s.problems:
        print(f"  problem: {p}")


def bench_supervisor_kills(tmp: Path, seed: int) -> None:
    t = time.perf_counter()
    try:
        s = kill_supervisor(tmp, kills=5, seed=seed)
    finally:
        _stop(tmp)
    print(f"supervisor kills: {s.kills} SIGKILLs with 2 active and 2 queued runs "
          f"in {time.perf_counter() - t:.0f} s")
    print(f"  runs finished: {s.finished}/{s.runs}; started twice: {s.started_twice}; "
          f"queue order kept: {'yes' if s.queue_order_kept else 'NO'}")
    print(f"  events lost: {s.events_lost}; events doubled: {s.events_doubled}")


def bench_configs(tmp: Path) -> None:
    (tmp / "x.py").write_text("")
    good, missed = 0, []
    for name, body in sorted(CHECK_CASES.items()):
        (tmp / "e.toml").write_text(body)
        out = subprocess.run([sys.executable, "-m", "tuiexp.cli", "check", "e.toml"], cwd=tmp,
                             capture_output=True, text=True, timeout=60)
        lines = out.stderr.strip().splitlines()
        located = "e.toml" in out.stderr and (name == "empty file" or "line" in out.stderr)
        if out.returncode == 2 and len(lines) == 1 and located:
            good += 1
        else:
            missed.append(name)
    print(f"configs rejected with file and line: {good}/{len(CHECK_CASES)}")
    if missed:
        print(f"  not yet: {', '.join(missed)}")


def _stop(where: Path) -> None:
    logs = LogsDir.at(where / "logs")
    if lock.is_running(logs):
        daemon.stop(logs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--kills", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for i, step in enumerate((lambda d: bench_run_kills(d, args.kills, args.seed),
                                  lambda d: bench_supervisor_kills(d, args.seed),
                                  bench_configs)):
            where = Path(tmp) / str(i)
            where.mkdir()
            step(where)


if __name__ == "__main__":
    main()
