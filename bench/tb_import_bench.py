"""`tuiexp import tb` against TensorBoard's EventAccumulator alone on the same event files
(issue 21.6: aim ≤ 1.1×), side by side in one run, both as fresh processes.

    nice python bench/tb_import_bench.py [--runs 10] [--steps 2000] [--reps 3]

The event files are written by TensorBoard's own writer: `runs` runs of `steps` steps of
20 scalars each (`val/m00`..`val/m19`, random values), one directory per run. The two
commands run in interleaved rounds (the order swapped each round); the figures are
medians. EventAccumulator reads every scalar of every run (size guidance 0: keep all);
`tuiexp import tb` reads the same and writes the runs' event logs and the index.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def write(root: Path, runs: int, steps: int) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    rng = random.Random(1)
    for r in range(runs):
        writer = EventFileWriter(str(root / f"run-{r:03d}"))
        for step in range(steps):
            values = [summary_pb2.Summary.Value(tag=f"val/m{k:02d}", simple_value=rng.random())
                      for k in range(20)]
            writer.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step,
                                             summary=summary_pb2.Summary(value=values)))
        writer.close()


def accumulate(logdir: Path) -> int:
    """TensorBoard's EventAccumulator alone: every scalar of every run under `logdir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    n = 0
    for run in sorted(p for p in logdir.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            n += len(acc.Scalars(tag))
    return n


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    if sys.argv[1:2] == ["accumulate"]:
        print(json.dumps({"scalars": accumulate(Path(sys.argv[2]))}))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tb-import-bench-") as d:
        tmp = Path(d)
        tb = tmp / "tblogs"
        write(tb, args.runs, args.steps)
        ours, theirs = [], []
        for r in range(args.reps):
            logs = tmp / f"logs-{r}"
            pair = [(ours, [sys.executable, "-m", "tuiexp.cli", "--logs", str(logs), "import",
                            "tb", str(tb)]),
                    (theirs, [sys.executable, str(HERE), "accumulate", str(tb)])]
            for into, cmd in pair if r % 2 == 0 else pair[::-1]:
                into.append(wall(cmd))
            shutil.rmtree(logs)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, python "
              f"{sys.version.split()[0]}")
        print(f"import tb of {args.runs} runs × {args.steps} steps × 20 scalars: `tuiexp import "
              f"tb` {a:.2f} s, EventAccumulator alone {b:.2f} s ({a / b:.2f}×; aim ≤ 1.1×; "
              f"both fresh processes, median of {args.reps})")


if __name__ == "__main__":
    main()
