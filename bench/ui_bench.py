"""Dashboard bench: 200 runs × 20 metrics (20 runs live, 10 events/s each), 5,000
points per step-level series.

    .venv/bin/python bench/ui_bench.py [--seconds 15] [--live-on-screen]

Prints: start-to-first-table vs `import torch` (ratio), refresh tick p95, UI CPU
while watching, event-to-row delay p95, resident memory. Runs in well under 90 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

N_RUNS, N_LIVE, POINTS, RATE = 200, 20, 5000, 10.0
#: 18 epoch-level metrics besides the step-level loss and lr: 20 per run
EPOCH_METRICS = ["val_acc", "val_loss", "train_acc", *(f"val/extra{k:02d}" for k in range(15))]


def epoch_metrics(e: int) -> dict[str, float]:
    return {name: 1 - 0.5 * math.exp(-e / (8 + k)) for k, name in enumerate(EPOCH_METRICS)}


def writer() -> None:
    """A live run: 10 step events a second, each flushed at once; an epoch every 50."""
    from tuiexp import track

    run = track.init()
    track.meta(classes=["a", "b"], num_params=1)
    step, t_end = 0, time.time() + float(run.params.get("seconds", 60))
    while time.time() < t_end:
        step += 1
        # sent_at: the UI measures event-to-row delay from it
        run.log(step=step, train_loss=2 * math.exp(-step / 300) + 0.01, lr=0.1, sent_at=time.time())
        if step % 50 == 0:
            run.log(epoch=step // 50, **epoch_metrics(step // 50))
        run.flush()
        time.sleep(1 / RATE)
    track.finish()


def seed_index(root: Path, seconds: float) -> Path:
    """180 finished runs, their event logs written and indexed for real; 20 live ones queued."""
    from tuiexp.config import loader
    from tuiexp.queue.client import Client
    from tuiexp.store import events, runstore
    from tuiexp.store.index import Index
    from tuiexp.store.paths import LogsDir
    from tuiexp.store.spec import RunSpec

    cfg = root / "experiments.toml"
    cfg.write_text(f'[queue]\ncpu_jobs = {N_LIVE}\n[experiments.live]\n'
                   f'command = "{sys.executable} {HERE} --writer"\nseconds = {seconds}\nseed = 0\n'
                   f'sweep.seed = {list(range(N_LIVE))}\n')
    logs = LogsDir.at(root / "logs").ensure()
    rnd = random.Random(0)
    with Index(logs) as index:
        for i in range(N_RUNS - N_LIVE):
            spec = RunSpec(id=f"old-{i:03d}", experiment=f"sweep{i % 7}", params={
                "epochs": 30, "batch_size": 2 ** (4 + i % 4), "dropout": (i % 5) / 10},
                created=1e9 + i)
            paths = runstore.create(logs, spec)
            # finished as a supervisor leaves a run: its record of the (long gone) process
            paths.proc.write_text('{"pid": 4194311, "attempt": 1}')
            paths.exit.write_text('{"returncode": 0, "attempt": 1}')
            lines = [events.encode("start", 1e9, {})]
            lines += [events.encode("step", 1e9, {"step": s, "lr": 0.1, "train_loss":
                                                  2 * math.exp(-s / 900) + rnd.random() * 0.05})
                      for s in range(1, POINTS + 1)]
            lines += [events.encode("epoch", 1e9, {"epoch": e, **epoch_metrics(e)})
                      for e in range(1, 31)]
            lines.append(events.encode("status", 1e9 + 600, {"status": "finished"}))
            paths.events.write_bytes(b"".join(lines))
            index.reindex_run(spec.id)
    with Client(logs) as client:
        client.enqueue(loader.load(cfg), "live", {})
    return root


def ui(root: Path, out: Path, started: float, seconds: float, live_on_screen: bool = False) -> None:
    """The dashboard, headless, instrumented through its observer hook. The live runs
    are the newest, so at the bottom: off screen unless `live_on_screen` (cursor there)."""
    from tuiexp.store.paths import LogsDir
    from tuiexp.ui.app import make_app

    stats: dict = {"ticks": [], "delays": [], "first": None}
    seen: dict[str, float] = {}
    cpu0: list[float] = []

    def observe(msg, spent: float) -> None:
        now = time.time()
        if stats["first"] is None and msg.delta.changed:
            app.call_after_refresh(lambda: stats.__setitem__("first", time.time() - started))
            if live_on_screen:
                app.call_after_refresh(_to_bottom)
            app.set_timer(3, lambda: cpu0.append(_cpu()))  # watch after the backfill settles
            app.set_timer(3 + seconds, finish)
            return
        stats["ticks"].append(spent)
        for st in msg.delta.changed:
            sent = st.row.summaries.get(("sent_at", "step"))
            t = sent.last if sent else None
            if t and t > seen.get(st.id, 0):
                if st.id in seen:
                    stats["delays"].append(now - t)
                seen[st.id] = t

    def _to_bottom() -> None:
        from tuiexp.ui.widgets.runs_table import RunsTable

        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.row_count - 1, animate=False)

    def finish() -> None:
        stats["cpu"] = (_cpu() - cpu0[0]) / seconds
        stats["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stats["rows"] = len(app.poller.states)
        out.write_text(json.dumps(stats))
        app.exit()

    app = make_app(LogsDir.at(root / "logs"), root / "experiments.toml", observer=observe)
    app.run(headless=True, size=(200, 50))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _stop_writers(root: Path) -> None:
    from tuiexp.queue.client import Client
    from tuiexp.store.paths import LogsDir
    from tuiexp.store.runstore import read_json

    logs = LogsDir.at(root / "logs")
    with Client(logs, autostart=False) as client:
        for row in client.index.runs(status=("running", "starting", "queued")):
            proc = read_json(logs.run(row.id).proc) or {}
            if proc.get("pid"):
                try:
                    os.killpg(proc["pid"], 15)
                except OSError:
                    pass


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--writer", action="store_true")
    ap.add_argument("--ui", nargs=3)
    ap.add_argument("--live-on-screen", action="store_true",
                    help="scroll to the live runs (they are at the bottom, off screen by default)")
    args = ap.parse_args()
    if args.writer:
        return writer()
    if args.ui:
        return ui(Path(args.ui[0]), Path(args.ui[1]), float(args.ui[2]), args.seconds,
                  args.live_on_screen)
    from tuiexp.queue import daemon
    from tuiexp.store.paths import LogsDir

    os.environ.setdefault("TUIEXP_DAEMON_IDLE", "10")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = seed_index(Path(tmp), args.seconds + 25)
        print(f"seeded {N_RUNS} runs x 20 metrics ({POINTS} points per step series) in {time.perf_counter() - t0:.1f} s; "
              f"{N_LIVE} live writers at {RATE:.0f} events/s each")
        time.sleep(3)  # let the writers start
        t = time.time()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        torch_s = time.time() - t
        out = Path(tmp) / "ui.json"
        started = time.time()
        subprocess.run([sys.executable, str(HERE), "--ui", tmp, str(out), str(started),
                        "--seconds", str(args.seconds)]
                       + (["--live-on-screen"] if args.live_on_screen else []), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = json.loads(out.read_text())
        daemon.stop(LogsDir.at(root / "logs"))
        _stop_writers(root)
    tick = pct(s["ticks"], 0.95) * 1000
    delay = pct(s["delays"], 0.95)
    rows = [
        ("start to first table", f"{s['first']:.2f} s", f"import torch {torch_s:.2f} s",
         f"ratio {s['first'] / torch_s:.2f} (aim <= 0.3)"),
        ("refresh tick p95", f"{tick:.1f} ms", f"median {pct(s['ticks'], .5) * 1000:.1f} ms",
         f"{len(s['ticks'])} ticks (aim <= 30 ms)"),
        ("UI CPU while watching", f"{s['cpu'] * 100:.1f} % of a core", "", "(aim <= 10 %)"),
        ("event to row p95", f"{delay:.2f} s", f"median {pct(s['delays'], .5):.2f} s",
         f"{len(s['delays'])} updates (aim <= 1 s)"),
        ("resident memory", f"{s['rss_mb']:.0f} MB", f"{s['rows']} rows", ""),
    ]
    for r in rows:
        print(f"{r[0]:<24}{r[1]:>18}   {r[2]:<24}{r[3]}")


if __name__ == "__main__":
    main()
