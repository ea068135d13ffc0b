"""tuiexp against its peers, side by side in one run (issue 21; figures go in the README).

    bash bench/peers/setup.sh                          # once: the peers' own environment
    nice bench/peers/.venv/bin/python bench/peers_bench.py [--quick] [--only log,latency,...]

Peers: trackio, tensorboardX (+ TensorBoard's reader), wandb (offline), mlflow (its
sqlite store) and aim, each in its default local mode, each measured in a fresh process;
repetitions are interleaved (every peer once per round, the order rotated each round)
and the figures are medians over rounds. Every peer logs the same data: 20 metrics
named `val/m00`..`val/m19` with random float values (`val/m00` carries the step in the
latency test, so every reader can tell which step it sees).

1. log: one log call with 3 and with 20 scalars (tensorboardX: one add_scalar each).
2. latency: log → visible with 20 runs writing 20 metrics at 10 Hz, each its own
   process; tuiexp's runs are queued and followed by a supervisor, seen through its
   index; trackio's and mlflow's through their own storage readers. tuiexp also gives
   flushed (the line in events.jsonl) → visible.
3. ingest: `tuiexp reindex` of 1,000 runs × 200 steps × 20 metrics written by
   tuiexp.track (points/s).
4. ls: `tuiexp ls --columns 'best:val/*'` against plain `tuiexp ls` on 10,000 runs.
5. import tb: `tuiexp import tb` against TensorBoard's EventAccumulator alone reading
   every scalar of the same event files (both as fresh processes).
6. disk: bytes per logged step of 20 metrics in each tool's store (tuiexp: events.jsonl
   and the index, after `tuiexp reindex`).

The workers are this same file (`peers_bench.py worker TASK ...`); they print one JSON
line. Sizes: `--quick` (a couple of minutes) or the defaults of issue 21.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
PEERS = ("tuiexp", "trackio", "tensorboardX", "wandb", "mlflow", "aim")
NAMES = [f"val/m{k:02d}" for k in range(20)]
#: peers whose own reader can say what a live run has logged (the others: why not)
READERS = {"tuiexp": "its index (supervised runs)", "trackio": "SQLiteStorage",
           "mlflow": "MlflowClient.search_runs"}
NO_READER = {
    "tensorboardX": "n/a: SummaryWriter flushes every 120 s by default (flush_secs) and "
                    "TensorBoard reloads every 5 s",
    "wandb": "n/a: offline mode has no local reader (the .wandb log is read by `wandb sync`)",
    "aim": "n/a: not measured (its live reader needs the aim server/UI process)",
}


def values(n: int, rng: random.Random) -> dict[str, float]:
    return {name: rng.random() for name in NAMES[:n]}


# -- each peer's writer, behind one small interface -----------------------------------


class Peer:
    """Open a run under `root`, log dicts of scalars at steps, close it."""

    def __init__(self, root: Path):
        self.root = root

    def open(self, name: str) -> None: ...
    def key(self, name: str) -> str:
        """How the peer's reader names the run opened last."""
        return name

    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def close(self) -> None: ...


class Tuiexp(Peer):
    def open(self, name: str) -> None:
        from tuiexp import track

        if os.environ.get("TUIEXP_RUN_DIR"):
            self.run = track.init()  # queued: the supervisor made the directory
        else:
            self.run = track.start(experiment="bench", params={"name": name}, logs=self.root)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()
        self.run.close()


class Trackio(Peer):
    def __init__(self, root: Path):
        super().__init__(root)
        os.environ["TRACKIO_DIR"] = str(root)  # read when trackio is imported
        import trackio

        self.trackio = trackio

    def open(self, name: str) -> None:
        self.run = self.trackio.init(project="bench", name=name, embed=False)

    def key(self, name: str) -> str:
        return str(self.run.id)  # its reader keys runs by id

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.trackio.log(metrics, step=step)

    def close(self) -> None:
        self.trackio.finish()


class TensorboardX(Peer):
    def open(self, name: str) -> None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(self.root / name))

    def log(self, metrics: dict[str, float], step: int) -> None:
        add = self.writer.add_scalar
        for name, value in metrics.items():
            add(name, value, step)

    def close(self) -> None:
        self.writer.close()


class Wandb(Peer):
    def __init__(self, root: Path):
        super().__init__(root)
        os.environ.update(WANDB_MODE="offline", WANDB_DIR=str(root), WANDB_SILENT="true")
        import wandb

        self.wandb = wandb

    def open(self, name: str) -> None:
        self.run = self.wandb.init(project="bench", name=name, dir=str(self.root), mode="offline")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


class Mlflow(Peer):
    def __init__(self, root: Path):
        super().__init__(root)
        os.chdir(root)  # its artifact root (./mlruns) goes with the store
        import logging

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
        mlflow.set_experiment("bench")

    def open(self, name: str) -> None:
        self.mlflow.start_run(run_name=name)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(metrics, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


class Aim(Peer):
    def open(self, name: str) -> None:
        from aim import Run

        self.run = Run(repo=str(self.root), experiment="bench")
        self.run.name = name

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.track(metrics, step=step)

    def close(self) -> None:
        self.run.close()


CLASSES = {"tuiexp": Tuiexp, "trackio": Trackio, "tensorboardX": TensorboardX,
           "wandb": Wandb, "mlflow": Mlflow, "aim": Aim}


# -- workers (each in its own process) ---------------------------------------------------


def worker_log(peer: str, root: Path, seconds: float) -> dict[str, Any]:
    """Median cost of one log call with 3 and with 20 scalars: batches of calls, each
    batch timed as a whole, `seconds` of calls per size."""
    rng = random.Random(0)
    p = CLASSES[peer](root)
    out = {}
    for n in (3, 20):
        p.open(f"log-{n}")
        data = [values(n, rng) for _ in range(256)]
        step = 0
        for step in range(50):  # warm: first-call setup (threads, tables) is not a call's cost
            p.log(data[step % 256], step)
        per_call = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(per_call) < 5:
            batch = 10 if per_call and per_call[-1] > 1e-4 else 500
            t = time.perf_counter()
            for _ in range(batch):
                step += 1
                p.log(data[step % 256], step)
            per_call.append((time.perf_counter() - t) / batch)
        t = time.perf_counter()
        p.close()
        out[f"log{n}"] = statistics.median(per_call)
        out[f"close{n}"] = time.perf_counter() - t
        out[f"calls{n}"] = step
    if peer == "tuiexp":  # issue 21.3: what closing a run of 20,000 fast steps costs
        p.open("close")
        for step in range(20_000):
            p.log(data[step % 256], step)
        t, cpu = time.perf_counter(), time.process_time()
        p.close()
        out["close20k"] = time.perf_counter() - t
        out["close20k_cpu"] = time.process_time() - cpu  # the flush thread's share included
    return out


def worker_write(peer: str, root: Path, runs: int, steps: int) -> dict[str, Any]:
    """Log `runs` runs of `steps` steps of 20 metrics (the disk and ingest data)."""
    rng = random.Random(1)
    p = CLASSES[peer](root)
    t = time.perf_counter()
    for r in range(runs):
        p.open(f"run-{r:04d}")
        for s in range(steps):
            p.log(values(20, rng), s)
        p.close()
    return {"seconds": time.perf_counter() - t}


def worker_clone(logs: Path, runs: int, steps: int) -> dict[str, Any]:
    """`runs` finished runs of `steps` steps of 20 metrics, fast: one run made by
    tuiexp.track is the template for the others' files, whose events.jsonl are written
    line by line as track writes them (docs/EVENTS.md), without an fsync per run."""
    from tuiexp import track

    rng = random.Random(2)
    template = track.start(experiment="bench", params={"name": "template"}, logs=logs)
    template.log(values(20, rng), step=0)
    template.finish()
    template.close()
    src = template.dir
    spec = json.loads((src / "run.json").read_text())
    start, _, status = (src / "events.jsonl").read_bytes().splitlines(keepends=True)
    t0 = time.time()
    for k in range(runs):
        rid = f"20261206-000000-bench-{k:05d}"
        d = src.parent / rid
        d.mkdir()
        (d / "run.json").write_text(json.dumps({**spec, "id": rid, "params": {"k": k}}, indent=2))
        for name in ("proc.json", "queue.json"):
            shutil.copyfile(src / name, d / name)
        lines = [start]
        for step in range(steps):
            lines.append((json.dumps({"v": 1, "t": round(t0 + step * 0.01, 6), "kind": "step",
                                      **values(20, rng), "step": step}) + "\n").encode())
        lines.append(status)
        (d / "events.jsonl").write_bytes(b"".join(lines))
    shutil.rmtree(src)
    return {"runs": runs}


def worker_writer(peer: str, root: Path, name: str, gate: Path, rate: float,
                  seconds: float, times: Path) -> dict[str, Any]:
    """One of the latency test's runs: open, say ready, wait for the gate, then log 20
    metrics at `rate` Hz for `seconds` (val/m00 = the step), recording when each step
    was logged."""
    rng = random.Random(hash(name) & 0xFFFF)
    p = CLASSES[peer](root)
    p.open(name)
    (gate.parent / f"ready-{name}").touch()
    while not gate.exists():
        time.sleep(0.01)
    start = float(gate.read_text() or time.time())
    logged = []
    step = 0
    while True:
        due = start + step / rate
        if due - start > seconds:
            break
        time.sleep(max(0.0, due - time.time()))
        data = values(20, rng)
        data["val/m00"] = float(step)
        logged.append((step, time.time()))
        p.log(data, step)
        step += 1
    p.close()
    times.write_text(json.dumps({"key": p.key(name), "logged": logged}))
    return {"steps": step}


def reader(peer: str, root: Path):
    """A function returning {run name: the newest step its reader sees}."""
    if peer == "tuiexp":
        from tuiexp.store.index import Index
        from tuiexp.store.paths import LogsDir

        index = Index(LogsDir.at(root / "logs"), readonly=True)

        def steps() -> dict[str, int]:
            return {r.id: r.step for r in index.runs(slim=True) if r.step is not None}
        return steps
    if peer == "trackio":
        os.environ["TRACKIO_DIR"] = str(root)
        from trackio.sqlite_storage import SQLiteStorage

        def steps() -> dict[str, int]:
            return {k: int(v) for k, v in SQLiteStorage.get_max_steps_for_runs("bench").items()
                    if v is not None}
        return steps
    if peer == "mlflow":
        import logging

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
        client = MlflowClient()
        exp = None

        def steps() -> dict[str, int]:
            nonlocal exp
            exp = exp or client.get_experiment_by_name("bench")
            if exp is None:
                return {}
            return {r.info.run_name: int(r.data.metrics["val/m00"])
                    for r in client.search_runs([exp.experiment_id], max_results=1000)
                    if "val/m00" in r.data.metrics}
        return steps
    raise ValueError(peer)


def worker_latency(peer: str, root: Path, runs: int, rate: float, seconds: float,
                   warm: int) -> dict[str, Any]:
    """Start `runs` writers (tuiexp: queued under a supervisor), open the gate once all
    are ready, and poll the peer's reader every 5 ms: for each step, the time from its
    log call (and for tuiexp from its line reaching events.jsonl) to being visible."""
    gate = root / "gate"
    names = [f"w{k:02d}" for k in range(runs)]
    procs: list[subprocess.Popen[bytes]] = []
    if peer == "tuiexp":
        (root / "experiments.toml").write_text(
            f'[queue]\ngpus = "none"\ncpu_jobs = {runs}\n\n[experiments.w]\n'
            f'command = "python {HERE} worker writer tuiexp {root} RUN {gate} {rate} {seconds} TIMES"\n'
            f'seeds = {list(range(runs))}\n')
        subprocess.run([sys.executable, "-m", "tuiexp.cli", "--logs", str(root / "logs"),
                        "--config", str(root / "experiments.toml"), "run", "w"],
                       check=True, stdout=subprocess.DEVNULL)
    else:
        if peer == "mlflow":  # its schema and experiment, made once (writers racing to
            CLASSES[peer](root)  # create the tables fail)
        for name in names:
            with open(root / f"writer-{name}.err", "wb") as err:
                procs.append(subprocess.Popen(
                    [sys.executable, str(HERE), "worker", "writer", peer, str(root), name,
                     str(gate), str(rate), str(seconds), str(root / f"times-{name}.json")],
                    cwd=root, stdout=subprocess.DEVNULL, stderr=err))
    deadline = time.monotonic() + 300
    while len(list(root.glob("ready-*"))) < runs:
        if time.monotonic() > deadline or any(p.poll() for p in procs):
            errs = [f.read_text()[-1500:] for f in root.glob("writer-*.err") if f.stat().st_size]
            raise RuntimeError(f"{peer}: writers not ready\n" + "\n".join(errs[:1]))
        time.sleep(0.05)
    steps = reader(peer, root)
    seen: dict[tuple[str, int], float] = {}
    appeared: dict[tuple[str, int], float] = {}
    offsets: dict[str, int] = {}
    last: dict[str, int] = {}
    total = int(seconds * rate) + 1
    gate.write_text(repr(time.time() + 0.5))
    hard_end = time.monotonic() + 10 * seconds + 120  # a writer that falls behind still ends
    all_done: float | None = None  # when the last writer wrote its times file (it exits)
    polls = 0
    while time.monotonic() < hard_end:
        t0 = time.monotonic()
        now = time.time()
        if peer == "tuiexp":
            for run_dir in (root / "logs" / "runs").iterdir():
                appeared_now(run_dir, offsets, appeared, now)
        for run, newest in steps().items():
            for s in range(last.get(run, -1) + 1, newest + 1):
                seen[(run, s)] = now
            last[run] = max(last.get(run, -1), newest)
        if len(last) == runs and all(v >= total - 1 for v in last.values()):
            break
        polls += 1
        if all_done is None and polls % 20 == 0 and len(list(root.glob("times-*.json"))) >= runs:
            all_done = time.monotonic()
        if all_done is not None and time.monotonic() - all_done > 10:
            break  # every writer ended 10 s ago: what is not visible now counts as missing
        time.sleep(max(0.0, 0.005 - (time.monotonic() - t0)))
    for proc in procs:
        proc.wait(timeout=60)
    logged: dict[tuple[str, int], float] = {}
    rates = []
    for f in root.glob("times-*.json"):
        rec = json.loads(f.read_text())
        for s, t in rec["logged"]:
            logged[(rec["key"], s)] = t
        ts = [t for _, t in rec["logged"]]
        if len(ts) > 1:
            rates.append((len(ts) - 1) / (ts[-1] - ts[0]))
    lat = sorted(seen[k] - t for k, t in logged.items() if k[1] >= warm and k in seen)
    flushed = sorted(seen[k] - appeared[k] for k in appeared if k[1] >= warm and k in seen)
    missing = sum(1 for k in logged if k not in seen)
    out = {"p50": pct(lat, 50), "p95": pct(lat, 95), "n": len(lat), "missing": missing,
           "logged": len(logged), "rate": statistics.median(rates) if rates else None}
    if flushed:
        out |= {"flushed_p50": pct(flushed, 50), "flushed_p95": pct(flushed, 95)}
    if peer == "tuiexp":
        subprocess.run([sys.executable, "-m", "tuiexp.cli", "--logs", str(root / "logs"),
                        "daemon", "stop"], stdout=subprocess.DEVNULL)
    return out


def appeared_now(run_dir: Path, offsets: dict[str, int], appeared: dict[tuple[str, int], float],
                 now: float) -> None:
    """Note the steps whose lines reached this run's events.jsonl since the last look."""
    run = run_dir.name
    try:
        with open(run_dir / "events.jsonl", "rb") as f:
            f.seek(offsets.get(run, 0))
            data = f.read()
    except FileNotFoundError:
        return
    end = data.rfind(b"\n") + 1
    offsets[run] = offsets.get(run, 0) + end
    for line in data[:end].splitlines():
        if b'"step"' in line:
            appeared.setdefault((run, json.loads(line)["step"]), now)


def worker_floor(logs: Path) -> dict[str, Any]:
    """What ingest cannot go below on this machine, in CPU seconds: decoding every
    events.jsonl under `logs` (orjson, as events.read_from does) and writing the same
    points as 500-point float64 blobs into a fresh SQLite table (WAL, one transaction
    per 50 runs, as a rebuild writes them)."""
    import sqlite3
    from array import array

    import orjson

    files = sorted(logs.glob("runs/*/events.jsonl"))
    c = time.process_time()
    points = 0
    for f in files:
        data = f.read_bytes()
        evs = orjson.loads(b"[%b]" % data[:data.rfind(b"\n")].replace(b"\n", b","))
        points += sum(len(ev) - 4 for ev in evs if ev.get("kind") == "step")
    decode = time.process_time() - c
    db = sqlite3.connect(logs.parent / "floor.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE series (run INTEGER, key INTEGER, x0 INTEGER, x1 INTEGER,"
               " n INTEGER, dx INTEGER, xs BLOB, vs BLOB)")
    db.execute("CREATE UNIQUE INDEX series_at ON series(run, key, x0)")
    per_run = points // max(1, len(files))
    blobs = [array("d", [0.5] * min(500, per_run // 20 - i)).tobytes()
             for i in range(0, per_run // 20, 500)]
    c = time.process_time()
    for r in range(len(files)):
        if r % 50 == 0:
            db.execute("BEGIN")
        db.executemany("INSERT INTO series VALUES (?,?,?,?,?,?,?,?)",
                       [(r, k, i * 500, i * 500 + len(b) // 8 - 1, len(b) // 8, 1, None, b)
                        for k in range(20) for i, b in enumerate(blobs)])
        if r % 50 == 49 or r == len(files) - 1:
            db.execute("COMMIT")
    db.close()
    return {"decode": decode, "sqlite": time.process_time() - c, "points": points}


def worker_accumulate(logdir: Path) -> dict[str, Any]:
    """TensorBoard's EventAccumulator alone (tb_import_bench's reader, beside this file)."""
    from tb_import_bench import accumulate

    return {"scalars": accumulate(logdir)}


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(len(xs) * q / 100))]


WORKERS = {"log": lambda a: worker_log(a[0], Path(a[1]), float(a[2])),
           "write": lambda a: worker_write(a[0], Path(a[1]), int(a[2]), int(a[3])),
           "clone": lambda a: worker_clone(Path(a[0]), int(a[1]), int(a[2])),
           "latency": lambda a: worker_latency(a[0], Path(a[1]), int(a[2]), float(a[3]),
                                               float(a[4]), int(a[5])),
           "accumulate": lambda a: worker_accumulate(Path(a[0])),
           "floor": lambda a: worker_floor(Path(a[0]))}


def worker_main(argv: list[str]) -> None:
    task, args = argv[0], argv[1:]
    if task == "writer":
        peer, root, name, gate, rate, seconds, times = args
        if name == "RUN":  # queued by tuiexp: the run directory names it
            name = Path(os.environ["TUIEXP_RUN_DIR"]).name
            times = str(Path(root) / f"times-{name}.json")
        worker_writer(peer, Path(root), name, Path(gate), float(rate), float(seconds), Path(times))
        return
    print(json.dumps(WORKERS[task](args)))


# -- the driver --------------------------------------------------------------------------


def run_worker(*args: str, cwd: Path | None = None, timeout: float = 900) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE), "worker", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wall(cmd: list[str], **kw: Any) -> float:
    return timed(cmd, **kw)[0]


def timed(cmd: list[str], **kw: Any) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of a command. On a shared machine the
    CPU time is the part that does not depend on what else runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def rounds(peers: list[str], reps: int):
    """(round, peer) for every peer once per round, the order rotated each round."""
    for r in range(reps):
        k = r % len(peers)
        for peer in peers[k:] + peers[:k]:
            yield r, peer


def tree_bytes(root: Path, exclude: tuple[str, ...] = ()) -> int:
    return sum(f.stat().st_size for f in root.rglob("*")
               if f.is_file() and not f.name.startswith(exclude))


def med(xs: list[Any]) -> Any:
    """The median of what was measured (None where a round saw nothing)."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def us(x: float) -> str:
    return f"{x * 1e6:,.1f} µs"


def tuiexp_cli(logs: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tuiexp.cli", "--logs", str(logs), *args]


def bench_log(tmp: Path, peers: list[str], reps: int, seconds: float) -> None:
    got: dict[str, list[dict[str, Any]]] = {p: [] for p in peers}
    for r, peer in rounds(peers, reps):
        root = tmp / f"log-{peer}-{r}"
        root.mkdir()
        got[peer].append(run_worker("log", peer, str(root), str(seconds), cwd=root))
        shutil.rmtree(root, ignore_errors=True)
    base = {n: med([g[f"log{n}"] for g in got["tuiexp"]]) for n in (3, 20)}
    print(f"\n1. one log call (median of {reps} rounds; × = peer / tuiexp)")
    print(f"   {'':14}{'3 scalars':>22}{'20 scalars':>24}   close after the calls (20)")
    for peer in peers:
        row = {n: med([g[f"log{n}"] for g in got[peer]]) for n in (3, 20)}
        close = med([g["close20"] for g in got[peer]])
        calls = med([g["calls20"] for g in got[peer]])
        print(f"   {peer:14}{us(row[3]):>13} ({row[3] / base[3]:6.1f}×){us(row[20]):>14} "
              f"({row[20] / base[20]:6.1f}×)   {close:.3f} s ({calls:,.0f} steps)")
    if "tuiexp" in got:
        print(f"   tuiexp: closing a run right after 20,000 steps of 20 metrics "
              f"{med([g['close20k'] for g in got['tuiexp']]):.3f} s, CPU "
              f"{med([g['close20k_cpu'] for g in got['tuiexp']]):.3f} s (aim ≤ 0.05 s; "
              f"load {os.getloadavg()[0]:.1f})")


def bench_latency(tmp: Path, peers: list[str], reps: int, runs: int, seconds: float) -> None:
    measured = [p for p in peers if p in READERS]
    got: dict[str, list[dict[str, Any]]] = {p: [] for p in measured}
    for r, peer in rounds(measured, reps):
        root = tmp / f"lat-{peer}-{r}"
        root.mkdir()
        got[peer].append(run_worker("latency", peer, str(root), str(runs), "10", str(seconds),
                                    "10", cwd=root))
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n2. log → visible, {runs} runs × 20 metrics at 10 Hz for {seconds:.0f} s "
          f"(each run its own process; median over {reps} rounds of each round's p50/p95)")
    base = med([g["p50"] for g in got["tuiexp"]]) if "tuiexp" in got else None
    for peer in peers:
        if peer not in measured:
            print(f"   {peer:14}{NO_READER[peer]}")
            continue
        g = got[peer]
        p50, p95 = med([x["p50"] for x in g]), med([x["p95"] for x in g])
        extra = ""
        if peer == "tuiexp":
            extra = (f"; flushed → visible p50 {med([x['flushed_p50'] for x in g]) * 1e3:.0f} ms,"
                     f" p95 {med([x['flushed_p95'] for x in g]) * 1e3:.0f} ms")
        if p50 is None:
            print(f"   {peer:14}nothing seen through {READERS[peer]}")
            continue
        ratio = f" ({p50 / base:.2f}× tuiexp's p50)" if base and peer != "tuiexp" else ""
        lost, logged = sum(x["missing"] for x in g), sum(x["logged"] for x in g)
        rate = med([x["rate"] for x in g])
        slow = f"; the writers logged at {rate:.1f} Hz, not 10" if rate and rate < 9.5 else ""
        print(f"   {peer:14}p50 {p50 * 1e3:5.0f} ms, p95 {p95 * 1e3:5.0f} ms{ratio} via "
              f"{READERS[peer]}{extra}{slow}" +
              (f"; {lost:,} of {logged:,} steps not visible 10 s after the writers ended"
               if lost else ""))


def bench_ingest(tmp: Path, reps: int, runs: int, steps: int) -> None:
    logs = tmp / "ingest" / "logs"
    logs.parent.mkdir()
    run_worker("clone", str(logs), str(runs), str(steps))
    times = [timed(tuiexp_cli(logs, "reindex")) for _ in range(reps)]
    points = runs * steps * 20
    db = sum(f.stat().st_size for f in logs.glob("index.sqlite*"))
    t, cpu = med([w for w, _ in times]), med([c for _, c in times])
    floor = run_worker("floor", str(logs))
    print(f"\n3. ingest: `tuiexp reindex` of {runs:,} runs × {steps} steps × 20 metrics: "
          f"{t:.2f} s = {points / t:,.0f} points/s (median of {reps}; aim ≥ 1.5 M/s); "
          f"CPU {cpu:.2f} s = {points / cpu:,.0f} points/s of CPU (all its processes); "
          f"index {db / 1e6:.0f} MB (load {os.getloadavg()[0]:.1f})\n"
          f"   the floor on this machine, CPU: decoding the logs (orjson) {floor['decode']:.2f} s"
          f", writing the points as blobs into SQLite {floor['sqlite']:.2f} s")
    shutil.rmtree(logs.parent, ignore_errors=True)


def bench_ls(tmp: Path, reps: int, runs: int) -> None:
    logs = tmp / "ls" / "logs"
    logs.parent.mkdir()
    run_worker("clone", str(logs), str(runs), "10")
    subprocess.run(tuiexp_cli(logs, "reindex"), check=True, stdout=subprocess.DEVNULL)
    plain: list[tuple[float, float]] = []
    cols: list[tuple[float, float]] = []
    for r in range(reps):
        pair = [(plain, ["ls"]), (cols, ["ls", "--columns", "best:val/*"])]
        for into, args in pair if r % 2 == 0 else pair[::-1]:
            into.append(timed(tuiexp_cli(logs, *args)))
    bare = min(wall([sys.executable, "-c", "pass"]) for _ in range(3))
    c, p = med([w for w, _ in cols]), med([w for w, _ in plain])
    print(f"\n4. ls on {runs:,} runs × 20 metrics: `ls --columns 'best:val/*'` {c:.3f} s "
          f"(CPU {med([x for _, x in cols]):.3f} s), plain `ls` {p:.3f} s (CPU "
          f"{med([x for _, x in plain]):.3f} s) ({c / p:.2f}×; aim ≤ 0.5 s; bare python "
          f"start {bare:.3f} s; load {os.getloadavg()[0]:.1f})")
    shutil.rmtree(logs.parent, ignore_errors=True)


def bench_import_tb(tmp: Path, reps: int, runs: int, steps: int) -> None:
    tb = tmp / "tb" / "tblogs"
    tb.mkdir(parents=True)
    run_worker("write", "tensorboardX", str(tb), str(runs), str(steps))
    ours, theirs = [], []
    for r in range(reps):
        logs = tmp / "tb" / f"logs-{r}"

        pair = [(ours, tuiexp_cli(logs, "import", "tb", str(tb))),
                (theirs, [sys.executable, str(HERE), "worker", "accumulate", str(tb)])]
        for into, cmd in pair if r % 2 == 0 else pair[::-1]:
            into.append(wall(cmd))
    print(f"\n5. import tb of {runs} runs × {steps} steps × 20 scalars: `tuiexp import tb` "
          f"{med(ours):.2f} s, EventAccumulator alone {med(theirs):.2f} s "
          f"({med(ours) / med(theirs):.2f}×; aim ≤ 1.1×; both fresh processes, median of {reps})")
    shutil.rmtree(tb.parent, ignore_errors=True)


def bench_disk(tmp: Path, peers: list[str], runs: int, steps: int) -> None:
    print(f"\n6. disk per logged step of 20 metrics ({runs} runs × {steps:,} steps, each "
          "tool's whole store after its runs closed)")
    sizes = {}
    for peer in peers:
        root = tmp / f"disk-{peer}"
        root.mkdir()
        store = root / "logs" if peer == "tuiexp" else root
        run_worker("write", peer, str(store), str(runs), str(steps), cwd=root)
        n = runs * steps
        if peer == "tuiexp":
            subprocess.run(tuiexp_cli(store, "reindex"), check=True, stdout=subprocess.DEVNULL)
            ev = sum(f.stat().st_size for f in store.rglob("events.jsonl"))
            idx = sum(f.stat().st_size for f in store.glob("index.sqlite*"))
            total = tree_bytes(store)
            detail = (f" (events.jsonl {ev / n:.0f}, index {idx / n:.0f}, "
                      f"other {(total - ev - idx) / n:.0f})")
        else:
            total, detail = tree_bytes(root), ""
        sizes[peer] = total / n
        print(f"   {peer:14}{total / n:7.0f} B/step{detail}")
        shutil.rmtree(root, ignore_errors=True)
    others = [v for k, v in sizes.items() if k != "tuiexp"]
    if "tuiexp" in sizes and others:
        print(f"   tuiexp / smallest peer: {sizes['tuiexp'] / min(others):.2f} (aim ≤ 0.9)")


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        worker_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a couple of minutes")
    ap.add_argument("--only", default="log,latency,ingest,ls,tb,disk",
                    help="comma list of: log, latency, ingest, ls, tb, disk")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--reps", type=int, help="interleaved rounds (default 3, quick 1)")
    args = ap.parse_args()
    quick = args.quick
    reps = args.reps or (1 if quick else 3)
    peers = [p for p in args.peers.split(",") if p]
    if "tuiexp" not in peers:
        peers.insert(0, "tuiexp")
    import importlib.metadata as md

    versions = ", ".join(f"{p} {md.version(p)}" for p in (*PEERS, "tensorboard"))
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load "
          f"{os.getloadavg()[0]:.1f}; {versions}")
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="peers-bench-") as d:
        tmp = Path(d)
        if "log" in only:
            bench_log(tmp, peers, reps, 0.5 if quick else 2.0)
        if "latency" in only:
            bench_latency(tmp, peers, reps, 8 if quick else 20, 5 if quick else 15)
        if "ingest" in only:
            bench_ingest(tmp, reps, *((100, 200) if quick else (1000, 200)))
        if "ls" in only:
            bench_ls(tmp, reps, 1000 if quick else 10_000)
        if "tb" in only:
            bench_import_tb(tmp, reps, *((5, 500) if quick else (20, 2000)))
        if "disk" in only:
            bench_disk(tmp, peers, *((2, 300) if quick else (4, 1000)))


if __name__ == "__main__":
    main()
