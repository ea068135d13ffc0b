"""Fault figures (issue 10), measured with real processes in one run.

    PYTHONPATH=. python bench/faults_bench.py [--seed N] [--kills N]

1. Runs killed with SIGKILL at seeded random points (some aimed at checkpoint
   writes): kills survived (crashed, resumed, finished bit-exact), corrupt
   checkpoints and event lines, events lost or doubled in the index.
2. The supervisor killed with SIGKILL while two runs are active and two queued:
   runs finished once each, events lost or doubled, queue order.
3. Configs `tuiexp check` must reject: how many are rejected with the file and
   a line number, in one sentence.

Issue 19, each step from outside (the CLI, run processes, run directories):

4. The index deleted, restored from an older copy, or corrupted, at seeded moments
   while runs run and wait, with supervisor kills between: runs started twice, events
   lost or doubled in the final index, rows left disagreeing with their directories.
5. A full disk: a small tmpfs filled at seeded moments while runs log (root only):
   runs that ended silently short, events lost and not counted, dead runs shown running.
6. Slurm controller outages of seeded 10-20 s while runs are queued and running (root
   and the one-node Slurm of scripts/slurm-up.sh only): runs failed by an outage, jobs
   submitted twice.
7. A PBT population whose supervisor dies at each step of a decision (TUIEXP_FAULT):
   late decisions, a population done before its last run, slots judged twice.
8. TensorBoard event files damaged in seeded ways: imports silently partial.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import write_config  # noqa: E402
from tests.faults import outside as out  # noqa: E402
from tests.faults.harness import compare_index, kill_runs, kill_supervisor  # noqa: E402
from tests.faults.test_cases import CHECK_CASES  # noqa: E402
from tuiexp.queue import daemon  # noqa: E402
from tuiexp.store import events, lock, runstore  # noqa: E402
from tuiexp.store.index import Index  # noqa: E402
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


# -- issue 19 ---------------------------------------------------------------------------
INDEX_CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 3

[experiments.long]
command = "python GATED"
gate = "GATE"
min_epochs = 10

[experiments.quick]
command = "python FAKE_RUN"
epochs = 3
steps_per_epoch = 10
sleep = 0.02
"""


def bench_index_faults(tmp: Path, seed: int, faults: int = 9, kills: int = 2) -> None:
    """Runs run and wait while the index is deleted, restored from an older copy (with
    the supervisor stopped, as a restore is done) or corrupted, and the supervisor is
    killed; a user runs `ls` after each fault, and queues more runs."""
    from tests.faults.test_index_lost import corrupt

    gate = tmp / "release"
    write_config(tmp, INDEX_CONFIG.replace("GATED", str(out.script(tmp, "gated.py", out.GATED)))
                 .replace("GATE", str(gate)))
    logs = tmp / "logs"
    rng = random.Random(seed)
    ids = [out.queue(tmp, "long") for _ in range(3)] + [out.queue(tmp, "quick") for _ in range(3)]
    out.until(lambda: out.row(tmp, ids[0]).get("epoch"), "a long run logging")
    out.stop_supervisor(tmp)  # a copy of a consistent index, as a backup would hold
    copy = tmp / "copy"
    copy.mkdir()
    for f in logs.glob("index.sqlite*"):
        shutil.copy2(f, copy / f.name)
    out.ok(tmp, "daemon", "start")
    plan = ["delete", "restore", "corrupt"] * (faults // 3) + ["kill"] * kills
    rng.shuffle(plan)
    said, restarts, t = {k: 0 for k in ("delete", "restore", "corrupt")}, 0, time.perf_counter()
    for kind in plan:
        time.sleep(rng.uniform(0.3, 2.0))
        if out.supervisor_pid(logs) is None and lock.info(LogsDir.at(logs)) is None:
            restarts += 1  # it died by itself: a user would have to start it again
            out.ok(tmp, "daemon", "start")
        if kind == "kill":
            os.kill(out.until(lambda: out.supervisor_pid(logs), "the supervisor"), signal.SIGKILL)
            out.until(lambda: not lock.is_running(LogsDir.at(logs)), "the supervisor gone")
            out.ok(tmp, "daemon", "start")
            continue
        said[kind] += 1
        if kind == "delete":
            for f in logs.glob("index.sqlite*"):
                f.unlink(missing_ok=True)
        elif kind == "restore":
            out.stop_supervisor(tmp)
            for f in logs.glob("index.sqlite*"):
                f.unlink()
            for f in copy.iterdir():
                shutil.copy2(f, logs / f.name)
            out.ok(tmp, "daemon", "start")
        else:
            try:
                corrupt(logs / "index.sqlite")
            except (AssertionError, TypeError):
                said["corrupt"] -= 1  # the index was being rebuilt: nothing to corrupt yet
        out.cli(tmp, "ls")  # the user looks
        if rng.random() < 0.5:
            ids.append(out.queue(tmp, "quick"))
    gate.touch()
    for rid in ids:
        out.wait_status(tmp, rid, out.TERMINAL, timeout=180)
    twice = lost = doubled = stale = finished = 0
    shown = out.listing(tmp)
    with Index(LogsDir.at(logs)) as index:
        for rid in ids:
            paths = LogsDir.at(logs).run(rid)
            evs = events.read_all(paths.events)
            attempt = (runstore.read_json(paths.proc) or {}).get("attempt", 0)
            twice += max(0, sum(e["kind"] == "start" for e in evs) - attempt)
            a, b = compare_index(LogsDir.at(logs), index, rid)
            lost, doubled = lost + a, doubled + b
            truth = runstore.derive_status(paths, runstore.last_status(evs)).status
            stale += shown.get(rid, {}).get("status") != truth
            finished += truth == "finished"
    _stop(tmp)
    print(f"index faults: {sum(said.values())} ({said['delete']} deletions, {said['restore']} "
          f"restored copies, {said['corrupt']} corruptions) and {kills} supervisor kills with "
          f"{len(ids)} runs in {time.perf_counter() - t:.0f} s")
    print(f"  runs finished: {finished}/{len(ids)}; started twice: {twice}; events lost: {lost}; "
          f"events doubled: {doubled}; rows left stale: {stale}; supervisor restarts "
          f"needed: {restarts}")


WRITER = """
import time
from tuiexp import track

run = track.init()
n = 0
for epoch in range(1, run.params["epochs"] + 1):
    for _ in range(run.params["steps"]):
        n += 1
        track.log(step=n, loss=1.0 / n)
    n += 1
    track.log(epoch=epoch, val_acc=epoch / 100)
    time.sleep(run.params["pause"])
track.finish()
track.current().close()
open(run.params["side"] + "/" + run.id, "w").write(str(n))
"""

DISK_CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 4

[experiments.writer]
command = "python WRITER"
epochs = 30
steps = 1000
pause = 0.5
side = "SIDE"

[experiments.quick]
command = "python FAKE_RUN"
epochs = 1
"""


def bench_disk_full(tmp: Path, seed: int, fills: int = 6, runs: int = 4) -> None:
    """A 16 MB tmpfs filled (all but 64 KiB) at seeded moments for 0.5-3 s while runs
    log (about 15 s each, 1.4 MB of events: they fit when the ballast is gone); every
    0.2 s a look at `ls`; at the end each run's logged events against those on disk and
    those it reported lost."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        print("disk full: skipped (mounting a tmpfs needs root)")
        return
    mnt = tmp / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)]).returncode:
        print("disk full: skipped (no tmpfs could be mounted)")
        return
    side = tmp / "side"
    side.mkdir()
    logs = mnt / "logs"
    try:
        write_config(tmp, DISK_CONFIG.replace("WRITER", str(out.script(tmp, "w.py", WRITER)))
                     .replace("SIDE", str(side)))
        out.ok(tmp, "run", "quick", "--wait", logs=logs)
        ids = [out.queue(tmp, "writer", logs=logs) for _ in range(runs)]
        rng = random.Random(seed)
        due = sorted(rng.uniform(0.5, 15.0) for _ in range(fills))
        t0 = time.perf_counter()
        ballast = mnt / "ballast"
        dead_since: dict[str, float] = {}
        shown_dead = set()
        filled, free_at = 0, None
        while time.perf_counter() - t0 < 300:
            now = time.perf_counter() - t0
            if free_at is None and due and now >= due[0]:
                due.pop(0)
                try:
                    ballast.write_bytes(b"\0" * max(0, shutil.disk_usage(mnt).free - (64 << 10)))
                except OSError:
                    pass  # the disk filled first
                filled += 1
                free_at = now + rng.uniform(0.5, 3.0)
            elif free_at is not None and now >= free_at:
                ballast.unlink(missing_ok=True)
                free_at = None
            rows = out.listing(tmp, logs=logs)
            for rid in ids:
                proc = out.read_json(out.run_dir(logs, rid) / "proc.json") or {}
                if rows.get(rid, {}).get("status") == "running" and proc.get("pid") and \
                        not out.alive(proc["pid"]):
                    dead_since.setdefault(rid, now)
                    if now - dead_since[rid] > 1.0:  # (a tick's conclusion is not a delay)
                        shown_dead.add(rid)
                else:
                    dead_since.pop(rid, None)
            if not due and free_at is None and all(
                    rows.get(r, {}).get("status") in out.TERMINAL for r in ids):
                break
            time.sleep(0.2)
        ballast.unlink(missing_ok=True)
        short = uncounted = lost_total = 0
        rows = out.listing(tmp, logs=logs)
        for rid in ids:
            out.wait_status(tmp, rid, out.TERMINAL, logs=logs, timeout=120)
            logged_file = side / rid
            logged = int(logged_file.read_text()) if logged_file.exists() else None
            on_disk = sum(1 for e in out.events(out.run_dir(logs, rid) / "events.jsonl")
                          if e.get("kind") in ("step", "epoch"))
            shown = json.loads(out.ok(tmp, "show", rid, "--json", logs=logs))
            dropped = shown.get("dropped") or 0
            if logged is None:  # the side file itself was refused: count from the log
                logged = on_disk + dropped
            lost_total += logged - on_disk
            uncounted += abs(logged - on_disk - dropped)
            short += logged > on_disk and not dropped
        print(f"disk full: {filled} fills of a 16 MB tmpfs while {runs} runs logged "
              f"{runs * 30 * 1001:,} events; events refused by the disk: {lost_total:,}")
        print(f"  runs ended silently short: {short}; events lost uncounted: {uncounted}; "
              f"dead runs shown running: {len(shown_dead)}")
    finally:
        logs_dir = LogsDir.at(logs)
        if lock.is_running(logs_dir):
            daemon.stop(logs_dir)
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


SLURM_CONFIG = """
[queue]
executor = "slurm"
[queue.slurm]
cpus_per_task = 1

[experiments.quick]
command = "python FAKE_RUN"
epochs = 3
steps_per_epoch = 10
sleep = 0.05
"""


def bench_slurm_outages(tmp: Path, seed: int, outages: int = 3) -> None:
    """The controller stopped for seeded 10-20 s while runs are queued, pending and
    running; more runs queued during each outage."""
    from tests.faults import test_slurm_outage as so

    if so._reason() is not None:
        print(f"slurm outages: skipped ({so._reason()})")
        return
    os.environ["TUIEXP_SLURM_ACCOUNTING"] = "off"  # scontrol is down as well
    write_config(tmp, SLURM_CONFIG)
    rng = random.Random(seed)
    ids: list[str] = []
    t = time.perf_counter()
    try:
        for _ in range(outages):
            ids += [out.queue(tmp, "quick") for _ in range(2)]
            time.sleep(rng.uniform(0.5, 3.0))
            with so.controller_down():
                ids += [out.queue(tmp, "quick") for _ in range(2)]
                time.sleep(rng.uniform(10, 20))
        for rid in ids:
            out.wait_status(tmp, rid, out.TERMINAL, timeout=180)
        rows = out.listing(tmp)
        failed = [r for r in ids if rows[r]["status"] != "finished"]
        names = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True,
                               text=True, timeout=60).stdout.split()
        twice = sum(names.count(f"tuiexp-{r}-a{rows[r]['attempt']}") > 1 for r in ids)
    finally:
        _stop(tmp)
        jobs = [str(p["job_id"]) for f in (tmp / "logs" / "runs").glob("*/proc.json")
                if (p := json.loads(f.read_text())).get("job_id")]
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True, timeout=60)
    print(f"slurm outages: {outages} of 10-20 s with {len(ids)} runs queued or running, "
          f"in {time.perf_counter() - t:.0f} s")
    print(f"  runs failed by an outage: {len(failed)}; jobs submitted twice: {twice}")


def bench_pbt(tmp: Path) -> None:
    """A population of 4 (interval 2, 6 epochs) per fault point of a decision: the
    supervisor dies there (TUIEXP_FAULT) and is started again."""
    from tests.faults import test_pbt_restart as pb

    t = time.perf_counter()
    found = {k: 0 for k in ("late", "done early", "judged twice", "started twice")}
    for point in pb.FAULT_POINTS:
        where = tmp / point
        where.mkdir()
        gate = pb.setup(where)
        gate.touch()
        logs = where / "logs"
        os.environ["TUIEXP_FAULT"] = point
        try:
            out.cli(where, "run", "pop")  # (its supervisor may die before `run` saw it)
        finally:
            del os.environ["TUIEXP_FAULT"]
        pid = out.until(lambda lg=logs: (out.read_json(lg / "daemon.json") or {}).get("pid"),
                        "the supervisor's pid")
        out.until(lambda p=pid: not out.alive(p), f"the supervisor dead at {point}", timeout=120)
        out.ok(where, "daemon", "start")
        out.until(lambda lg=logs: (out.read_json(lg / "studies" / "pop.json") or {}).get("done"),
                  "the population done", timeout=180)
        for k, v in pb.judge(logs).items():
            if k in found:
                found[k] += len(v)
        _stop(where)
    print(f"pbt: {len(pb.FAULT_POINTS)} populations of 4, the supervisor killed at one step "
          f"of a decision in each ({', '.join(pb.FAULT_POINTS)}), in "
          f"{time.perf_counter() - t:.0f} s")
    print(f"  late decisions: {found['late']}; done before its last run: "
          f"{found['done early']}; slots judged twice: {found['judged twice']}; runs started "
          f"twice: {found['started twice']}")


def bench_tensorboard(tmp: Path, seed: int) -> None:
    """Copies of a real event file (400 scalars) truncated at seeded offsets, with
    seeded byte ranges flipped, replaced by garbage, or emptied; each imported alone."""
    from tests.faults.test_short_runs import TB_WRITER

    src = tmp / "src"
    src.mkdir()
    subprocess.run([sys.executable, str(out.script(tmp, "w.py", TB_WRITER)), str(src)],
                   check=True, timeout=120)
    (original,) = src.glob("events.out.tfevents.*")
    data = original.read_bytes()
    rng = random.Random(seed)
    damages = ([("truncated", rng.randrange(40, len(data) - 1)) for _ in range(5)]
               + [("flipped", rng.randrange(40, len(data) - 200)) for _ in range(4)]
               + [("garbage", 0), ("garbage", 1), ("empty", 0)])
    silent = partial = 0
    for i, (how, at) in enumerate(damages):
        where = tmp / f"tb{i}"
        (where / "tb" / "run").mkdir(parents=True)
        bad = bytearray(data)
        if how == "truncated":
            bad = bad[:at]
        elif how == "flipped":
            for k in range(at, at + 200):
                bad[k] ^= 0xFF
        elif how == "garbage":
            bad = bytearray(random.Random(seed + at).randbytes(len(data)))
        else:
            bad = bytearray()
        path = where / "tb" / "run" / original.name
        path.write_bytes(bytes(bad))
        got = out.cli(where, "import", "tb", "tb")
        m = re.search(r"\((\d+) scalars\)", got.stdout)
        scalars = int(m[1]) if m else 0
        if scalars < 400:
            partial += 1
            said = got.stdout + got.stderr
            rid = next((w for w in got.stdout.split() if w.startswith("20")), None)
            if rid is not None:
                said += out.ok(where, "show", rid, "--json")
            silent += path.name not in said
    print(f"tensorboard: {len(damages)} damaged event files (5 truncated, 4 with 200 bytes "
          f"flipped, 2 garbage, 1 empty), {partial} imported partly or not at all")
    print(f"  imports silently partial: {silent}")


def _stop(where: Path) -> None:
    logs = LogsDir.at(where / "logs")
    if lock.is_running(logs):
        daemon.stop(logs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--only", default="runs,supervisor,configs,index,disk,slurm,pbt,tb",
                    help="comma list of: runs, supervisor, configs, index, disk, slurm, pbt, tb")
    args = ap.parse_args()
    steps = {"runs": lambda d: bench_run_kills(d, args.kills, args.seed),
             "supervisor": lambda d: bench_supervisor_kills(d, args.seed),
             "configs": bench_configs,
             "index": lambda d: bench_index_faults(d, args.seed),
             "disk": lambda d: bench_disk_full(d, args.seed),
             "slurm": lambda d: bench_slurm_outages(d, args.seed),
             "pbt": bench_pbt,
             "tb": lambda d: bench_tensorboard(d, args.seed)}
    print(f"seed {args.seed}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"{time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            where = Path(tmp) / name
            where.mkdir()
            steps[name](where)


if __name__ == "__main__":
    main()
