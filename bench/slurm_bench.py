"""Slurm executor figures on a real cluster (scripts/slurm-up.sh gives a one-node one).

    python bench/slurm_bench.py [--runs 5]

Prints, as medians over the runs:
- submit → running: from calling `tuiexp run` to the index showing the run running
  (sbatch, Slurm's scheduling, the job starting, the supervisor's next squeue);
- requeue round trip: from Slurm's time-limit signal (SIGUSR1 to the batch shell, sent
  here with `scancel --batch --signal=USR1`) to the run running again as a new job
  (the run stops at its next step, says preempted, the supervisor submits attempt 2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = """\
import time
from tuiexp import track
run = track.init()
for step in range(1, 100000):
    track.log(step=step, loss=1.0 / step)
    if track.should_stop():
        track.finish("preempted", f"stopped at step {step}")
        raise SystemExit(0)
    if step >= run.params["steps"]:
        break
    time.sleep(0.05)
track.finish()
"""

CONFIG = """\
[queue]
executor = "slurm"
[queue.slurm]
cpus_per_task = 1

[experiments.bench]
command = "python {script}"
steps = 100000
"""


def cli(where: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tuiexp.cli", *args], cwd=where, text=True,
                         capture_output=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"tuiexp {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def row(where: Path, rid: str) -> dict:
    return json.loads(cli(where, "show", rid, "--json"))


def wait(pred, timeout: float = 120.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise SystemExit("timed out")


def running_attempt(where: Path, rid: str, attempt: int) -> bool:
    r = row(where, rid)
    return r["status"] == "running" and r["attempt"] == attempt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("TUIEXP_DAEMON_IDLE", "60")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "run.py").write_text(SCRIPT)
        (where / "experiments.toml").write_text(CONFIG.format(script=where / "run.py"))
        cli(where, "daemon", "start")
        submit, requeue = [], []
        for _ in range(args.runs):
            t0 = time.monotonic()
            (rid,) = cli(where, "run", "bench").split()
            wait(lambda rid=rid: running_attempt(where, rid, 1))
            submit.append(time.monotonic() - t0)
            proc = json.loads((where / "logs" / "runs" / rid / "proc.json").read_text())
            t1 = time.monotonic()
            subprocess.run(["scancel", "--batch", "--signal=USR1", str(proc["job_id"])], check=True)
            wait(lambda rid=rid: running_attempt(where, rid, 2))
            requeue.append(time.monotonic() - t1)
            cli(where, "cancel", rid)
            wait(lambda rid=rid: row(where, rid)["status"] == "cancelled")
        cli(where, "daemon", "stop")
    print(f"submit -> running     median {statistics.median(submit):.2f} s "
          f"(min {min(submit):.2f}, max {max(submit):.2f}, n={len(submit)})")
    print(f"requeue round trip    median {statistics.median(requeue):.2f} s "
          f"(min {min(requeue):.2f}, max {max(requeue):.2f}, n={len(requeue)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
