"""Search figures (issue 13): a full grid against ASHA and TPE + median pruning, the
same trial budget each, on the built-in `shapes` dataset, through the real queue.

    PYTHONPATH=. nice -n 10 python bench/search_bench.py     # 3 seeds (about 20-45 min on 2 CPUs)
    PYTHONPATH=. python bench/search_bench.py --quick        # a smoke run: 8 trials, 3 epochs, 1 seed
    PYTHONPATH=. python bench/search_bench.py --arms asha,tpe_median --warmup 2 --reduction 3

The default is sized for a 2-core CPU: 640 shapes images of 16 px (a quarter held out
for validation), an 8/16-wide ResNet, 9 epochs of Adam without augmentation, 2 trials
at a time. The grid is lr × dropout × weight_decay, 3 × 3 × 3 = 27 points, run in
full; ASHA (random sampler, `--warmup` = min resource, `--reduction`) and TPE with
the median pruner (`--startup-trials`, `--warmup`) get the same 27 trials.

Per arm and seed it prints the best primary metric (val_acc) reached and the epochs
spent (the sum over trials of the epochs each ran), then the means side by side with
the epochs as a share of the grid's. The goal: the same best accuracy (within noise
over the seeds) with ≤ 40 % of the grid's epochs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuiexp.queue import daemon  # noqa: E402
from tuiexp.search import study as studies  # noqa: E402
from tuiexp.store import query, runstore  # noqa: E402
from tuiexp.store.index import Index  # noqa: E402
from tuiexp.store.paths import LogsDir  # noqa: E402

GRID = {"lr": [0.003, 0.01, 0.03], "dropout": [0.0, 0.2, 0.4], "weight_decay": [0.0, 5e-4, 5e-3]}
QUICK_GRID = {"lr": [0.003, 0.03], "dropout": [0.0, 0.4], "weight_decay": [0.0, 5e-3]}
ARMS = {"grid": ("grid", "none"), "asha": ("random", "asha"), "tpe_median": ("tpe", "median")}


def config(grid: dict[str, list[float]], epochs: int, parallel: int, seed: int, device: str,
           num_train: int, warmup: int = 1, startup: int = 5, reduction: int = 4,
           arms: list[str] | None = None) -> str:
    trials = 1
    for values in grid.values():
        trials *= len(values)
    space = "\n".join(f"{k} = {{ choice = {v} }}" for k, v in grid.items())
    gpus = '"auto"' if device != "cpu" else '"none"'
    out = f"""
[queue]
gpus = {gpus}
cpu_jobs = {parallel}
jobs_per_gpu = {parallel}

[defaults]
dataset = "shapes"
num_train = {num_train}
num_test = 64
val_split = 0.25
image_size = 16
model = "resnet"
model_args = {{ widths = [8, 16], depths = [1, 1] }}
augment = {{ crop_padding = 0, flip = false }}
batch_size = 32
epochs = {epochs}
optimizer = "adam"
threads = 1
device = "{device}"
seed = {seed}
"""
    for arm, (sampler, pruner) in ARMS.items():
        if arms and arm not in arms:
            continue
        out += f"""
[experiments.{arm}]

[experiments.{arm}.search]
sampler = "{sampler}"
pruner = "{pruner}"
trials = {trials}
parallel = {parallel}
seed = {seed}
startup_trials = {startup}
warmup = {warmup}
reduction = {reduction}
{space}
"""
    return out


def run_arm(where: Path, arm: str, timeout: float) -> tuple[float | None, int, int, float]:
    """Run one arm's study to its end: (best val_acc, epochs spent, trials pruned, seconds)."""
    logs = LogsDir.at(where / "logs")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tuiexp.cli", "run", arm], cwd=where, check=True,
                   capture_output=True, text=True)
    names = [n for n in studies.names(logs) if studies.load_definition(logs, n)["experiment"] == arm]
    name = names[-1]
    deadline = time.monotonic() + timeout
    while not (runstore.read_json(studies.definition_path(logs, name)) or {}).get("done"):
        if time.monotonic() > deadline:
            raise SystemExit(f"{arm}: the study did not finish within {timeout:.0f} s")
        time.sleep(1.0)
    seconds = time.perf_counter() - t
    with Index(logs) as index:
        rows = [r for r in query.load_runs(index, experiment=[arm], metrics=["val_acc"])
                if r.spec.get("study") == name]
    best = max((r.best for r in rows if r.best is not None), default=None)
    epochs = sum(r.epoch or 0 for r in rows)
    pruned = sum(r.status == "pruned" for r in rows)
    return best, epochs, pruned, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    ap.add_argument("--num-train", type=int, default=640)
    ap.add_argument("--warmup", type=int, default=1,
                    help="epochs before a trial can be pruned (ASHA's min resource; default 1)")
    ap.add_argument("--startup-trials", type=int, default=5,
                    help="trials before TPE models and the median pruner judges (default 5)")
    ap.add_argument("--reduction", type=int, default=4,
                    help="ASHA's reduction factor: 1 in N trials goes on at each rung (default 4)")
    ap.add_argument("--arms", default=",".join(ARMS),
                    help="the arms to run, comma-separated (default all; the ratio needs grid)")
    ap.add_argument("--quick", action="store_true", help="8 trials of 3 epochs, one seed")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per arm")
    args = ap.parse_args()
    grid = QUICK_GRID if args.quick else GRID
    seeds = 1 if args.quick else args.seeds
    epochs = 3 if args.quick else args.epochs
    print(f"{' '.join(sys.argv)}  ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"{platform.platform()})", flush=True)
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm {unknown[0]!r} (one of {', '.join(ARMS)})")
    results: dict[str, list[tuple[float | None, int, int, float]]] = {arm: [] for arm in arms}
    for seed in range(seeds):
        with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
            where = Path(tmp)
            (where / "experiments.toml").write_text(
                config(grid, epochs, args.parallel, seed, args.device, args.num_train,
                       args.warmup, args.startup_trials, args.reduction, arms))
            try:
                for arm in arms:
                    r = run_arm(where, arm, args.timeout)
                    results[arm].append(r)
                    best = "-" if r[0] is None else f"{r[0]:.4f}"
                    print(f"seed {seed} {arm:<11} best val_acc {best}  epochs {r[1]:>4}  "
                          f"pruned {r[2]:>2}  {r[3]:.0f} s", flush=True)
            finally:
                daemon.stop(LogsDir.at(where / "logs"))
    trials = len(grid["lr"]) * len(grid["dropout"]) * len(grid["weight_decay"])
    print(f"\n{trials} trials per arm, {epochs} epochs each at most, {seeds} seed(s):")
    print(f"{'arm':<11} {'best val_acc (mean ± sd)':>26} {'epochs (mean)':>14} {'vs grid':>8}")
    grid_epochs = statistics.mean(r[1] for r in results["grid"]) if "grid" in results else None
    for arm, rs in results.items():
        bests = [r[0] for r in rs if r[0] is not None]
        mean = statistics.mean(bests) if bests else float("nan")
        sd = statistics.stdev(bests) if len(bests) > 1 else 0.0
        spent = statistics.mean(r[1] for r in rs)
        ratio = f"{spent / grid_epochs:>7.0%}" if grid_epochs else "      -"
        print(f"{arm:<11} {mean:>18.4f} ± {sd:.4f} {spent:>14.1f} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
