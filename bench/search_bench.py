"""Search figures (issue 20): does ASHA or TPE + median pruning find a configuration as good
as a full grid's for less compute? And what a study costs per trial over a plain Optuna loop.

    PYTHONPATH=. nice -n 10 python bench/search_bench.py            # 3 seeds (30-60 min on 2 CPUs)
    PYTHONPATH=. python bench/search_bench.py --quick               # a smoke run: 1 seed, tiny
    PYTHONPATH=. python bench/search_bench.py --overhead            # per-trial overhead, ~2 min

The search bench runs through the real queue (`tuiexp run ARM --wait`) on the built-in
`shapes` dataset at a size where the ranking after 2 epochs predicts the final one (it
prints that rank correlation): 5000 training images of 16 px, validation on the 1000
test images, an 8/16-wide ResNet, 10 epochs of Adam without augmentation, one thread per
trial, 2 trials at a time. The space is the 16-point grid lr {0.001, 0.003, 0.01, 0.03} ×
dropout {0, 0.4} × weight_decay {0, 0.005}. Arms, per seed (the trainer's and the
sampler's): the full grid; ASHA over the same 16 points (min resource `--warmup`,
reduction `--reduction`); TPE with median pruning (`--tpe-trials` trials, startup
`--startup-trials`, warmup `--warmup`).

Per arm and seed: the best val_acc reached, the epochs spent (the sum over trials of the
epochs each ran), the trials pruned, the configuration the study chose (its best complete
trial) and that configuration's "true" value: its final val_acc averaged over the grid's
seeds (the grid trains every configuration at every seed), which removes the luck of one
seed. Then Spearman's rank correlation of epoch-1 and epoch-2 val_acc with the final one
over the grid's runs, the grid's seed spread (sd of its best over the seeds), and whether
the goal holds: each arm's mean best within that spread of the grid's at ≤ 40 % of its
epochs.

--overhead runs one script (3 epochs of 0.03 s through tuiexp.track, should_prune() after
each) N times both ways, side by side: a plain in-memory Optuna loop (ask, the script as
a subprocess, tell) and a study (a real supervisor), and takes the study's trials apart
from their files' timestamps: a trial's end (its status event) to the next trial's first
event, and how much longer a trial's run spans than its script.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuiexp.queue import daemon  # noqa: E402
from tuiexp.search import study as studies  # noqa: E402
from tuiexp.search import view  # noqa: E402
from tuiexp.store import events, runstore  # noqa: E402
from tuiexp.store.index import Index, RunRow  # noqa: E402
from tuiexp.store.paths import LogsDir  # noqa: E402

GRID = {"lr": [0.001, 0.003, 0.01, 0.03], "dropout": [0.0, 0.4], "weight_decay": [0.0, 0.005]}
QUICK_GRID = {"lr": [0.003, 0.03], "dropout": [0.0, 0.4], "weight_decay": [0.0]}
KEYS = tuple(GRID)
GOAL_SHARE = 0.40


# -- the search bench ----------------------------------------------------------------------


def config(args: argparse.Namespace, grid: dict[str, list[float]], seed: int) -> str:
    space = "\n".join(f"{k} = {{ choice = {v} }}" for k, v in grid.items())
    gpus = '"none"' if args.device == "cpu" else '"auto"'
    out = f"""
[queue]
gpus = {gpus}
cpu_jobs = {args.parallel}
jobs_per_gpu = {args.parallel}

[defaults]
dataset = "shapes"
num_train = {args.num_train}
num_test = {args.num_test}
val_split = "test"
image_size = {args.image_size}
model = "resnet"
model_args = {{ widths = [8, 16], depths = [1, 1] }}
augment = {{ crop_padding = 0, flip = false }}
batch_size = 32
epochs = {args.epochs}
optimizer = "adam"
threads = 1
device = "{args.device}"
data_seed = 0
seed = {seed}
"""
    arms = {
        "grid": 'sampler = "grid"\npruner = "none"',
        "asha": f'sampler = "grid"\npruner = "asha"\nwarmup = {args.warmup}\n'
                f'reduction = {args.reduction}',
        "tpe_median": f'sampler = "tpe"\npruner = "median"\ntrials = {args.tpe_trials}\n'
                      f'startup_trials = {args.startup_trials}\nwarmup = {args.warmup}',
    }
    for arm in args.arms:
        out += (f"\n[experiments.{arm}]\n\n[experiments.{arm}.search]\n{arms[arm]}\n"
                f"parallel = {args.parallel}\nseed = {seed}\n{space}\n")
    return out


def run_arm(where: Path, arm: str, timeout: float) -> dict[str, Any]:
    """One arm's study, followed to its end as a user would (`tuiexp run ARM --wait`)."""
    logs = LogsDir.at(where / "logs")
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tuiexp.cli", "run", arm, "--wait"], cwd=where,
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise SystemExit(f"{arm}: `tuiexp run {arm} --wait` failed ({done.returncode}):\n"
                         f"{done.stdout}\n{done.stderr}")
    name = [n for n in studies.names(logs)
            if studies.load_definition(logs, n)["experiment"] == arm][-1]
    definition = studies.load_definition(logs, name)
    with Index(logs) as index:
        study_view = view.read(logs, definition, index)
        rows = [r for r in index.runs(experiment=[arm]) if r.spec.get("study") == name]
        curves = {config_of(r): [v for _, v in index.points(r.num, "val_acc", "epoch")]
                  for r in rows}
    best = study_view.best
    return {"best": max((r.best for r in rows if r.best is not None), default=None),
            "epochs": sum(r.epoch or 0 for r in rows), "trials": len(rows),
            "pruned": sum(r.status == "pruned" for r in rows), "seconds": seconds,
            "chosen": tuple(best.params[k] for k in KEYS) if best else None, "curves": curves}


def config_of(row: RunRow) -> tuple[float, ...]:
    return tuple(float(row.params[k]) for k in KEYS)


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (ties share their mean rank)."""
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else float("nan")


def search_bench(args: argparse.Namespace) -> int:
    grid = QUICK_GRID if args.quick else GRID
    results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in args.arms}
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
            where = Path(tmp)
            (where / "experiments.toml").write_text(config(args, grid, seed))
            try:
                for arm in args.arms:
                    r = run_arm(where, arm, args.timeout)
                    results[arm].append(r)
                    chosen = " ".join(f"{k}={v:g}" for k, v in zip(KEYS, r["chosen"] or (), strict=False))
                    print(f"seed {seed} {arm:<10} best val_acc {fmt(r['best'])}  epochs {r['epochs']:>4}"
                          f"  trials {r['trials']:>2}  pruned {r['pruned']:>2}  {r['seconds']:>5.0f} s"
                          f"  chose {chosen or '-'}", flush=True)
            finally:
                daemon.stop(LogsDir.at(where / "logs"))
    report(args, grid, results)
    return 0


def report(args: argparse.Namespace, grid: dict[str, list[float]],
           results: dict[str, list[dict[str, Any]]]) -> None:
    points = len(list(itertools.product(*grid.values())))
    print(f"\n{points} grid points, {args.epochs} epochs each at most, {args.seeds} seed(s)")
    grids = results.get("grid")
    if not grids:
        return
    finals: dict[tuple[float, ...], list[float]] = {}
    print("rank correlation (Spearman) of val_acc after epoch k with the final val_acc, over "
          "the grid's runs:")
    for seed, r in enumerate(grids):
        curves = {c: v for c, v in r["curves"].items() if len(v) == args.epochs}
        final = [v[-1] for v in curves.values()]
        rho = [spearman([v[k - 1] for v in curves.values()], final) for k in (1, 2)]
        print(f"  seed {seed}: rho(epoch 1) {rho[0]:+.2f}   rho(epoch 2) {rho[1]:+.2f}")
        for c, v in curves.items():
            finals.setdefault(c, []).append(v[-1])
    true = {c: statistics.mean(v) for c, v in finals.items()}
    grid_best = [r["best"] for r in grids]
    spread = statistics.stdev(grid_best) if len(grid_best) > 1 else 0.0
    grid_epochs = statistics.mean(r["epochs"] for r in grids)
    print(f"grid best per seed: {', '.join(fmt(b) for b in grid_best)}; the grid's seed spread "
          f"(sd) {spread:.4f}; the best configuration's true value {fmt(max(true.values()))}")
    print(f"\n{'arm':<10} {'best val_acc (mean ± sd)':>24} {'gap to grid':>11} {'epochs':>7} "
          f"{'share':>6} {'chosen true':>11}")
    verdicts = []
    for arm, rs in results.items():
        bests = [r["best"] for r in rs if r["best"] is not None]
        mean = statistics.mean(bests) if bests else float("nan")
        sd = statistics.stdev(bests) if len(bests) > 1 else 0.0
        gap = statistics.mean(grid_best) - mean
        spent = statistics.mean(r["epochs"] for r in rs)
        chosen = [true[c] for r in rs if (c := r["chosen"]) in true]
        print(f"{arm:<10} {mean:>15.4f} ± {sd:.4f} {gap:>11.4f} {spent:>7.1f} "
              f"{spent / grid_epochs:>6.0%} {fmt(statistics.mean(chosen) if chosen else None):>11}")
        if arm != "grid":
            met = gap <= spread and spent <= GOAL_SHARE * grid_epochs
            verdicts.append(f"{arm} {'meets' if met else 'misses'} it (gap {gap:.4f} vs spread "
                            f"{spread:.4f}, {spent / grid_epochs:.0%} of the epochs)")
    print(f"goal: best within the grid's seed spread at ≤ {GOAL_SHARE:.0%} of its epochs: "
          + "; ".join(verdicts))


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


# -- the overhead bench ----------------------------------------------------------------------

QUICK_TRIAL = '''"""A 0.09 s trial: 3 epochs of 0.03 s, logs val/score, stops on should_prune()."""
import time
t0 = time.time()
from tuiexp import track
run = track.init()
x = float(run.params["x"])
score = 0.0
for epoch in range(1, 4):
    time.sleep(0.03)
    score = (1 - abs(x - 0.3)) * epoch / 3
    track.log({"val/score": score}, epoch=epoch)
    if track.should_prune():
        break
track.finish()
print(f"value {score} t0 {t0} end {time.time()}", flush=True)
'''


def loop_arm(where: Path, script: Path, trials: int, pruner: str) -> tuple[float, float]:
    """A plain Optuna loop calling the same script: (seconds per trial, script's median)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        if pruner == "median" else optuna.pruners.NopPruner())
    env = {**os.environ, "TUIEXP_LOGS": str(where / "loop-logs")}
    env.pop("TUIEXP_RUN_DIR", None)
    scripts = []
    t = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        out = subprocess.run(  # the script reads its params from track.init(): given by hand
            [sys.executable, "-c", "import runpy; from tuiexp import track; "
             f"track.init(params={{'x': {x}}}, experiment='loop'); "
             f"runpy.run_path({str(script)!r}, run_name='__main__')"],
            env=env, capture_output=True, text=True, check=True).stdout
        value, t0, end = (float(v) for v in re.search(r"value (\S+) t0 (\S+) end (\S+)", out).groups())
        scripts.append(end - t0)
        study.tell(trial, value)
    return (time.perf_counter() - t) / trials, statistics.median(scripts)


def study_arm(where: Path, script: Path, trials: int, pruner: str) -> float:
    """The same trials as a study through a real supervisor: seconds per trial."""
    (where / "experiments.toml").write_text(f"""
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.quick]
command = ["{sys.executable}", "{script}"]
metric = "val/score"

[experiments.quick.search]
sampler = "tpe"
pruner = "{pruner}"
trials = {trials}
startup_trials = 5
x = {{ uniform = [0.0, 1.0] }}
""")
    logs = LogsDir.at(where / "logs")
    daemon.spawn(logs)  # started before the clock, as the loop's interpreter is
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tuiexp.cli", "run", "quick"], cwd=where, check=True,
                   capture_output=True)
    while not (runstore.read_json(studies.definition_path(logs, "quick")) or {}).get("done"):
        time.sleep(0.02)
    per_trial = (time.perf_counter() - t) / trials
    daemon.stop(logs)
    return per_trial


def breakdown(logs: LogsDir) -> dict[str, list[float]]:
    """From the study's run directories: each trial's end (its status event) to the next
    trial's first event, taken apart (the supervisor notices the exit: exit.json; asks for
    and queues the next trial: queue.json; starts it: proc.json; the interpreter starts and
    imports tuiexp.track: the first event), and how much longer a trial's run spans
    (proc.json started → exit.json ended) than its script (its first line to its last)."""
    trials = []
    for rid in runstore.run_ids(logs):
        paths = logs.run(rid)
        evs = events.read_all(paths.events)
        m = re.search(r"t0 (\S+) end (\S+)", paths.stdout.read_text())
        status = runstore.derive_status(paths, runstore.last_status(evs)).status
        trials.append({"trial": runstore.load_spec(paths).trial, "first": evs[0]["t"],
                       "end": next(e["t"] for e in evs if e["kind"] == "status"),
                       "queued": (runstore.read_json(paths.queue) or {})["queued"],
                       "started": (runstore.read_json(paths.proc) or {})["started"],
                       "ended": (runstore.read_json(paths.exit) or {})["ended"],
                       "script": float(m.group(2)) - float(m.group(1)) if m else None,
                       "pruned": status == "pruned"})
    trials.sort(key=lambda d: d["trial"])
    pairs = list(zip(trials, trials[1:], strict=False))
    return {
        "end → next trial's first event": [b["first"] - a["end"] for a, b in pairs],
        "  end → exit noticed": [a["ended"] - a["end"] for a, _ in pairs],
        "  exit noticed → next queued": [b["queued"] - a["ended"] for a, b in pairs],
        "  queued → started": [b["started"] - b["queued"] for _, b in pairs],
        "  started → first event": [b["first"] - b["started"] for _, b in pairs],
        "run span over its script": [d["ended"] - d["started"] - d["script"] for d in trials
                                     if d["script"]],
        "pruned": [float(d["pruned"]) for d in trials],
    }


def overhead_bench(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="search-overhead-") as tmp:
        where = Path(tmp)
        script = where / "quick_trial.py"
        script.write_text(QUICK_TRIAL)
        loop, script_s = loop_arm(where, script, args.trials, args.pruner)
        per_trial = study_arm(where, script, args.trials, args.pruner)
        parts = breakdown(LogsDir.at(where / "logs"))
    print(f"{args.trials} trials of a {script_s:.3f} s script (median), {args.pruner} pruner:")
    print(f"  plain Optuna loop  {loop:.3f} s per trial")
    print(f"  study              {per_trial:.3f} s per trial  ({per_trial / loop:.2f}× the loop, "
          f"{per_trial - loop:+.3f} s per trial)")
    for what, xs in parts.items():
        if what == "pruned":
            print(f"  pruned trials      {int(sum(xs))} of {len(xs)}")
            continue
        xs = sorted(xs)
        print(f"  {what:<31} median {statistics.median(xs):.3f} s, p90 "
              f"{xs[int(0.9 * (len(xs) - 1))]:.3f} s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    ap.add_argument("--num-train", type=int, default=5000)
    ap.add_argument("--num-test", type=int, default=1000, help="the validation images")
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=1,
                    help="epochs before a trial can be pruned (ASHA's min resource; default 1)")
    ap.add_argument("--reduction", type=int, default=4, help="ASHA's reduction factor (default 4)")
    ap.add_argument("--startup-trials", type=int, default=3,
                    help="trials before TPE models and the median pruner judges (default 3)")
    ap.add_argument("--tpe-trials", type=int, default=8, help="TPE + median's trials (default 8)")
    ap.add_argument("--arms", default="grid,asha,tpe_median",
                    help="arms to run, comma-separated (the comparison needs grid)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1 seed, 4 points, 3 epochs")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per arm")
    ap.add_argument("--overhead", action="store_true", help="the per-trial overhead bench instead")
    ap.add_argument("--trials", type=int, default=30, help="--overhead: trials per arm")
    ap.add_argument("--pruner", default="median", help="--overhead: median or none")
    args = ap.parse_args()
    args.arms = [a for a in args.arms.split(",") if a]
    if unknown := [a for a in args.arms if a not in ("grid", "asha", "tpe_median")]:
        raise SystemExit(f"unknown arm {unknown[0]!r} (grid, asha, tpe_median)")
    if args.quick:
        args.seeds, args.epochs, args.num_train, args.num_test = 1, 3, 600, 200
        args.tpe_trials, args.startup_trials = 3, 1
    print(f"{' '.join(sys.argv)}\n{platform.node()}: {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}, {platform.platform()}, Python {platform.python_version()}, "
          f"torch {importlib.metadata.version('torch')}, optuna {importlib.metadata.version('optuna')}",
          flush=True)
    t = time.perf_counter()
    rc = overhead_bench(args) if args.overhead else search_bench(args)
    print(f"({time.perf_counter() - t:.0f} s in all; load at the end {os.getloadavg()[0]:.1f})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
