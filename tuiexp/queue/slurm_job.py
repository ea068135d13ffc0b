"""The job side of a Slurm run (`python -m tuiexp.queue.slurm_job RUN_DIR TOKEN ATTEMPT -- ARGV`).

Runs on the compute node as the batch script itself (exec'd, so Slurm's signals reach it):
1. the supervisor's marker file must be there with this token, else this node does not
   see the run directory (the logs dir is not shared): exit 86, touching nothing;
2. job.json records attempt, job id, node and pid, so the supervisor knows the job ran;
3. SIGUSR1 (sent `signal_before` seconds before the time limit) becomes a
   `stop.request` file, which `track.should_stop()` sees at the run's next step;
   SIGTERM (scancel) reaches the run itself from Slurm, so it is not forwarded twice;
4. the run's return code goes into job.json (negative: killed by that signal).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..store import atomic
from .slurm import EXIT_NOT_SHARED, JOB_FILE, MARKER


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: python -m tuiexp.queue.slurm_job RUN_DIR TOKEN ATTEMPT -- ARGV...",
              file=sys.stderr)
        return 2
    run_dir, token, attempt, cmd = Path(argv[0]), argv[1], int(argv[2]), argv[4:]
    node = socket.gethostname()
    try:
        seen = (run_dir / MARKER).read_text().strip() == token
    except OSError:
        seen = False
    if not seen:
        print(f"tuiexp: node {node} cannot see the run directory {run_dir} (marker file "
              f"missing): the logs dir must be on a filesystem the compute nodes share.",
              file=sys.stderr)
        return EXIT_NOT_SHARED
    record = {"attempt": attempt, "job_id": os.environ.get("SLURM_JOB_ID"), "node": node,
              "started": time.time(), "returncode": None}
    stop_file = run_dir / "stop.request"

    def on_usr1(signum: int, frame: object) -> None:
        atomic.write_text(stop_file, f"{time.time()} SIGUSR1 from Slurm (time limit)\n")

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the run gets scancel's TERM itself
    env = {**os.environ, "TUIEXP_RUN_DIR": str(run_dir), "PYTHONUNBUFFERED": "1"}
    try:
        child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                 preexec_fn=_default_signals)
    except OSError as e:
        record["returncode"] = 127
        record["start_error"] = f"command `{cmd[0]}` could not start on {node}: {e.strerror or e}"
        atomic.write_json(run_dir / JOB_FILE, record)
        print(f"tuiexp: {record['start_error']}", file=sys.stderr)
        return 127
    record["pid"] = child.pid
    atomic.write_json(run_dir / JOB_FILE, record)
    rc = child.wait()
    record["returncode"] = rc
    record["ended"] = time.time()
    atomic.write_json(run_dir / JOB_FILE, record)
    return rc if rc >= 0 else 128 - rc


def _default_signals() -> None:
    """The run starts with default handlers (not the wrapper's ignored SIGTERM)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
