"""Spine benchmarks, measured side by side in one run (figures go in the README).

    python bench/spine_bench.py [--quick]

1. track.log: median cost of one call, and the slowdown of a small torch
   training loop that logs every step against the same loop without logging.
2. Index ingest: events (three open-named metrics each) per second the supervisor
   folds into SQLite from 50 run directories, the on-disk cost, and the delay from an event flushed to `tuiexp show`
   seeing it while 50 runs write concurrently.
3. `tuiexp ls` on an index of 10,000 runs × 20 metrics, and importing the headless layers (store, config, queue), against
   a bare `python -c pass` and `import torch`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tuiexp import track
from tuiexp.queue import daemon
from tuiexp.queue.client import Client
from tuiexp.store import events, runstore
from tuiexp.store.index import Index
from tuiexp.store.ingest import Fold
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


def wall(cmd: list[str], repeat: int = 3, **kw) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
        best = min(best, time.perf_counter() - t)
    return best


def bench_log(tmp: Path, quick: bool) -> None:
    logs = LogsDir.at(tmp / "log-bench")
    paths = runstore.create(logs, RunSpec(id="bench-log", experiment="bench", params={}))
    run = track.Run(paths.dir)
    per_call = []
    for _ in range(20 if quick else 100):
        t = time.perf_counter()
        for i in range(1000):
            run.log(step=i, train_loss=0.5, lr=0.1)
        per_call.append((time.perf_counter() - t) / 1000)
    run.flush()
    print(f"track.log: median {statistics.median(per_call) * 1e6:.2f} µs per call "
          f"(aim ≤ 5 µs), p95 {sorted(per_call)[int(len(per_call) * 0.95)] * 1e6:.2f} µs")

    import torch

    torch.set_num_threads(1)
    nn = torch.nn  # the smallest net anyone trains: a 3-layer CNN on a 32 px batch of 32
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))

    def loop(steps: int, log: bool) -> float:
        t = time.perf_counter()
        for step in range(steps):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if log:  # logs a tensor: the flush thread does the .item(), not the loop
                run.log(step=step, train_loss=loss.detach(), lr=0.01)
        return time.perf_counter() - t

    # what the flush thread pays per event, off the loop's thread: it wakes on the
    # first event and flushes as the loop logs, so the whole is timed, less the calls
    pending = 50_000
    t = time.perf_counter()
    for k in range(pending):
        run.log(step=k, train_loss=0.5, lr=0.1)
    run.flush()
    flush_cost = (time.perf_counter() - t) / pending - statistics.median(per_call)
    print(f"flush thread: {flush_cost * 1e6:.2f} µs per event (encode + write, in the background)")

    # A/B pairs of short segments, alternating which goes first: drift in the
    # machine's load hits both sides of a pair alike
    loop(20, True)
    ratios, step_times = [], []
    for pair in range(10 if quick else 30):
        if pair % 2:
            logged, plain = loop(40, True), loop(40, False)
        else:
            plain, logged = loop(40, False), loop(40, True)
        ratios.append(logged / plain)
        step_times.append(plain / 40)
    ratio = statistics.median(ratios)
    step = statistics.median(step_times)
    accounted = (statistics.median(per_call) + flush_cost) / step
    print(f"training loop logging every step (a {step * 1e3:.1f} ms CNN step): measured "
          f"{(ratio - 1) * 100:+.2f} % (median of {len(ratios)} A/B pairs), accounted "
          f"{accounted * 100:+.3f} % (log + flush cost ÷ step time); aim ≤ +1 %")
    run.close()


def write_events(paths: runstore.RunPaths, n: int, start: int = 0) -> None:
    """`n` step events of three open-named metrics, as a user script logs them."""
    with open(paths.events, "ab") as f:
        f.write(b"".join(events.encode("step", time.time(), {
            "step": start + i, "Loss/train": 0.5 + 1e-6 * i, "lr": 0.1, "grad/norm": 1.5})
            for i in range(n)))


def bench_ingest(tmp: Path, quick: bool) -> None:
    logs = LogsDir.at(tmp / "ingest-bench")
    runs = 50
    per_run = 4000 if quick else 20000
    all_paths = []
    with Index(logs) as index:
        for r in range(runs):
            spec = RunSpec(id=f"run-{r:03d}", experiment="bench", params={})
            paths = runstore.create(logs, spec)
            index.add_run(spec, status="running")
            write_events(paths, per_run)
            all_paths.append(paths)
        t = time.perf_counter()
        for paths in all_paths:
            index.ingest(paths.run_id, paths, Fold(), 0, max_bytes=None)
        dt = time.perf_counter() - t
        db_bytes = sum(f.stat().st_size for f in logs.root.glob("index.sqlite*"))
    total = runs * per_run
    raw = sum(p.events.stat().st_size for p in all_paths)
    print(f"index ingest: {total / dt:,.0f} events/s of 3 open-named metrics ({total:,} events "
          f"from {runs} runs in {dt:.2f} s; aim ≥ 100,000/s)")
    print(f"on disk per run of {per_run:,} steps × 3 metrics: events.jsonl {raw / runs / 1e6:.2f} MB,"
          f" index {db_bytes / runs / 1e6:.2f} MB")


def bench_visibility(tmp: Path, quick: bool) -> None:
    """A real supervisor watches 50 running runs while one writer process appends
    200 events/s to each run's log (what 50 flushing runs look like to it); a probe
    event is appended and timed until the index shows it. The runs' processes are
    `sleep`, so the 2-core machine measures the supervisor, not 50 interpreters."""
    logs = LogsDir.at(tmp / "latency-bench")
    ids = [f"w-{r:02d}" for r in range(50)]
    with Index(logs) as index:
        index.put_setting("queue", {"gpus": "none", "jobs_per_gpu": 1, "min_free_memory_mb": 0,
                                    "cpu_jobs": 51})
        for rid in [*ids, "probe"]:
            spec = RunSpec(id=rid, experiment="bench", params={}, command=("sleep", "300"))
            runstore.create(logs, spec)
            index.add_run(spec)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(logs.runs), *ids])
    assert daemon.spawn(logs)
    try:
        delays = []
        with Index(logs) as index:
            while index.counts().get("running", 0) < 51:
                time.sleep(0.05)
            time.sleep(1.0)
            for i in range(20 if quick else 50):
                time.sleep(0.1)
                write_events(logs.run("probe"), 1, start=i + 1)
                flushed = time.perf_counter()
                while (index.run("probe").step or 0) <= i:
                    time.sleep(0.002)
                delays.append(time.perf_counter() - flushed)
            ingested = sum(index.run(rid).step or 0 for rid in ids)
        delays.sort()
        print(f"event flushed → visible to `tuiexp show`: p50 {delays[len(delays) // 2] * 1e3:.0f} ms,"
              f" p95 {delays[int(len(delays) * 0.95)] * 1e3:.0f} ms while 50 runs wrote "
              f"200 events/s each ({ingested:,} of their events ingested meanwhile; aim ≤ 500 ms)")
    finally:
        writer.kill()
        with Client(logs, autostart=False) as client:
            for rid in [*ids, "probe"]:
                client.cancel(rid)
            deadline = time.monotonic() + 20
            while client.index.counts().get("running", 0) and time.monotonic() < deadline:
                time.sleep(0.1)
        daemon.stop(logs)


WRITER = """
import sys, time
from tuiexp.store import events
root, ids = sys.argv[1], sys.argv[2:]
step = 0
while True:
    step += 40
    for rid in ids:  # one flush of 40 events per run every 0.2 s, as track does
        with open(f"{root}/{rid}/events.jsonl", "ab") as f:
            f.write(b"".join(events.encode("step", time.time(), {"step": step - 40 + k,
                    "train_loss": 0.1}) for k in range(40)))
    time.sleep(0.2)
"""


def bench_ls(tmp: Path, quick: bool) -> None:
    logs = LogsDir.at(tmp / "ls-bench")
    n = 10_000
    names = [f"val/m{k:02d}" for k in range(19)] + ["val/acc"]
    line = events.encode("epoch", time.time(), {"epoch": 1, **{m: 0.5 for m in names}})
    with Index(logs) as index:
        for i in range(n):
            spec = RunSpec(id=f"20261122-000000-exp-{i:05d}", experiment="exp", params={"lr": 0.1},
                           metric="val/acc", mode="max")
            paths = runstore.create(logs, spec)
            # finished as a supervisor leaves a run: its record of the (long gone) process
            paths.proc.write_text('{"pid": 4194311, "attempt": 1}')
            paths.exit.write_text('{"returncode": 0, "attempt": 1}')
            paths.events.write_bytes(line)
            index.add_run(spec, status="finished")
            index.ingest(spec.id, paths, Fold(), 0)
    py = [sys.executable]
    bare = wall([*py, "-c", "pass"])
    ls = wall([*py, "-m", "tuiexp.cli", "--logs", str(logs.root), "ls"])
    ls_cols = wall([*py, "-m", "tuiexp.cli", "--logs", str(logs.root), "ls", "--columns",
                    "val/m0*"])
    core = wall([*py, "-c", "import tuiexp.store.index, tuiexp.queue.client, tuiexp.config.loader"])
    torch = wall([*py, "-c", "import torch"], repeat=2)
    leaked = subprocess.run([*py, "-c", "import sys, tuiexp.queue.client, tuiexp.cli;"
                             "print(sorted(m for m in ('torch','textual') if m in sys.modules))"],
                            capture_output=True, text=True).stdout.strip()
    print(f"tuiexp ls on {n:,} runs × 20 metrics: {ls:.3f} s, with 10 metric columns "
          f"{ls_cols:.3f} s (aim ≤ 0.5 s; bare python start {bare:.3f} s)")
    print(f"import the headless layers (store, config, queue): {core:.3f} s = {core / torch:.2f}× `import torch` ({torch:.2f} s); "
          f"torch/textual loaded by them + cli: {leaked}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, {sys.platform}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bench_log(tmp, args.quick)
        bench_ingest(tmp, args.quick)
        bench_ls(tmp, args.quick)
        bench_visibility(tmp, args.quick)


if __name__ == "__main__":
    main()
