"""Search figures (issue 20): does ASHA or TPE + median pruning find a configuration as good
as a full grid's for less compute? And what a study costs per trial over a plain Optuna loop.

    PYTHONPATH=. nice -n 10 python bench/search_bench.py            # 3 seeds (30-60 min on 2 CPUs)
    PYTHONPATH=. python bench/search_bench.py --quick               # a smoke run: 1 seed, tiny
    PYTHONPATH=. python bench/search_bench.py --replay bench/search_curves.jsonl \
        --warmup 1,2,3 --reduction 3,4                              # the offline replay, seconds
    PYTHONPATH=. python bench/search_bench.py --overhead            # per-trial overhead, ~2 min

The search bench runs through the real queue (`tuiexp run ARM --wait`) on the built-in
`shapes` dataset at a size where the ranking after 2 epochs predicts the final one (it
prints the rank correlation after every epoch): 5000 training images of 16 px, validation
on the 1000 test images, an 8/16-wide ResNet, 10 epochs of Adam without augmentation, one
thread per trial, 2 trials at a time. The space is the 16-point grid lr {0.001, 0.003,
0.01, 0.03} × dropout {0, 0.4} × weight_decay {0, 0.005}. Arms, per seed (the trainer's and
the sampler's): the full grid; ASHA over the same 16 points (its first rung `--warmup`,
reduction `--reduction`); TPE with median pruning (`--tpe-trials` trials, startup
`--startup-trials`, warmup `--warmup`). The pruning settings are `[search]` settings
(docs/SEARCH.md); the first decision is at epoch 2, where the printed rank correlation
says the ranking has become predictive (0.70-0.71 on every seed, against 0.36-0.75 after
epoch 1).

Per arm and seed: the best val_acc reached, the epochs spent (the sum over trials of the
epochs each ran), the trials pruned, the configuration the study chose (its best complete
trial) and that configuration's "true" value: its final val_acc averaged over the grid's
seeds (the grid trains every configuration at every seed), which removes the luck of one
seed. Then Spearman's rank correlation of each epoch's val_acc with the final one over the
grid's runs, the grid's seed spread (sd of its best over the seeds), and two verdicts at
≤ 40 % of the grid's epochs: the issue's (each arm's mean best within that spread of the
grid's mean best) and a fairer one (the chosen configuration's true value within that
spread of the grid's choice's: the grid's best of 16 fully trained noisy runs is biased up).
`--save-curves PATH` keeps the grid's learning curves (one JSON line per run).

--replay PATH... runs the same arms offline on recorded curves (`--save-curves`' lines,
e.g. bench/search_curves.jsonl, the grid arm of the run in docs/SEARCH.md): real
Optuna samplers and pruners, built by tuiexp's own code from the same `[search]` settings,
in memory; a trial replays the recorded curve of the configuration it asks for, epoch by
epoch, `--parallel` trials in step, and stops where it is pruned. The grid arm replays
exactly; the pruning arms approximately (a real study's trials do not end in step). Each
setting takes a comma-separated list there (every combination is an arm), and each arm
runs with `--replay-seeds` sampler seeds per recorded seed.

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
import json
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

from tuiexp.config.search import SETTINGS  # noqa: E402
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

Config = tuple[float, ...]  # a grid point: its values of KEYS
Curves = dict[Config, list[float]]  # a grid point → its val_acc after each epoch


# -- the arms: one definition for the real run and the replay --------------------------------


def arms(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """Each arm's name and its `[search]` settings (the space, seed and parallel aside);
    every combination of listed values is an arm of its own."""
    out: list[tuple[str, dict[str, Any]]] = []
    for arm in args.arms:
        if arm == "grid":
            out.append((arm, {"sampler": "grid", "pruner": "none"}))
        elif arm == "asha":
            out += [(arm, {"sampler": "grid", "pruner": "asha", "warmup": w, "reduction": r})
                    for w, r in itertools.product(args.warmup, args.reduction)]
        else:
            out += [(arm, {"sampler": "tpe", "pruner": "median", "warmup": w,
                           "startup_trials": s, "trials": n})
                    for w, s, n in itertools.product(args.warmup, args.startup_trials,
                                                     args.tpe_trials)]
    return out


SHORT = {"warmup": "w", "reduction": "r", "startup_trials": "s", "trials": "n"}
LEGEND = ("w: warmup (the first epoch a trial can be pruned at: the median pruner's "
          "n_warmup_steps, ASHA's min_resource), r: reduction, s: startup_trials, n: trials")


def label(arm: str, settings: dict[str, Any]) -> str:
    """`asha w2 r4`: the arm and its pruning settings, as the table prints them."""
    return " ".join([arm] + [f"{a}{settings[k]}" for k, a in SHORT.items() if k in settings])


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
    for arm, settings in arms(args):
        table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
        out += (f"\n[experiments.{arm}]\n\n[experiments.{arm}.search]\n{table}\n"
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


def config_of(row: RunRow) -> Config:
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
    results: dict[str, list[dict[str, Any]]] = {}
    data: dict[int, Curves] = {}
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
            where = Path(tmp)
            (where / "experiments.toml").write_text(config(args, grid, seed))
            try:
                for arm, settings in arms(args):
                    r = {**run_arm(where, arm, args.timeout), "seed": seed}
                    results.setdefault(label(arm, settings), []).append(r)
                    if arm == "grid":  # every configuration trained to its end
                        data[seed] = {c: v for c, v in r["curves"].items() if len(v) == args.epochs}
                    chosen = " ".join(f"{k}={v:g}" for k, v in zip(KEYS, r["chosen"] or (), strict=False))
                    print(f"seed {seed} {label(arm, settings):<20} best val_acc {fmt(r['best'])}  "
                          f"epochs {r['epochs']:>4}  trials {r['trials']:>2}  pruned {r['pruned']:>2}"
                          f"  {r['seconds']:>5.0f} s  chose {chosen or '-'}", flush=True)
            finally:
                daemon.stop(LogsDir.at(where / "logs"))
    if args.save_curves:
        save_curves(Path(args.save_curves), data)
    print(f"\n{len(list(itertools.product(*grid.values())))} grid points, {args.epochs} epochs "
          f"each at most, {args.seeds} seed(s), {args.parallel} trials at a time")
    report(results, data)
    if not args.quick and data:  # how close the replay comes to what was just measured
        print(f"\nthe same arms replayed offline on the grid's curves just recorded "
              f"({args.replay_seeds} sampler seeds per seed, the first the one above):")
        report(replay(args, data), data, preamble=False)
    return 0


def save_curves(path: Path, data: dict[int, Curves]) -> None:
    path.write_text("".join(json.dumps({"seed": seed, **dict(zip(KEYS, c, strict=True)),
                                        "val_acc": v}) + "\n"
                            for seed, curves in sorted(data.items())
                            for c, v in sorted(curves.items())))
    print(f"the grid's learning curves: {path}")


def report(results: dict[str, list[dict[str, Any]]], data: dict[int, Curves],
           preamble: bool = True) -> None:
    """The table both the real run and the replay print: `results` by arm label, each
    run with its `seed`; `data` the grid's curves by seed (every configuration)."""
    seeds = sorted(data)
    grid_rs = results.get("grid")
    if not grid_rs or not seeds:
        return
    common = set.intersection(*(set(data[s]) for s in seeds))
    true = {c: statistics.mean(data[s][c][-1] for s in seeds) for c in common}
    grid_best = {s: max(max(v) for v in data[s].values()) for s in seeds}
    spread = statistics.stdev(grid_best.values()) if len(seeds) > 1 else 0.0
    grid_epochs = statistics.mean(r["epochs"] for r in grid_rs)
    grid_choice = statistics.mean(true[r["chosen"]] for r in grid_rs if r["chosen"] in true)
    if preamble:
        print_preamble(data, common, grid_best, spread)
        print("a configuration's true value: its final val_acc averaged over the seeds; the "
              f"grid's choice's {grid_choice:.4f}, the best configuration's {max(true.values()):.4f}")
    print(f"\n{'arm':<22} {'best val_acc':>16} {'gap':>7} {'≤sd':>5} {'epochs':>6} {'share':>6} "
          f"{'pruned':>6} {'chosen true':>11} {'gap':>7}")
    verdicts: dict[str, list[str]] = {"issue": [], "fair": []}
    for arm, rs in results.items():
        bests = [r["best"] if r["best"] is not None else float("nan") for r in rs]
        gaps = [grid_best[r["seed"]] - b for r, b in zip(rs, bests, strict=True)]
        within = sum(g <= spread for g in gaps)
        spent = statistics.mean(r["epochs"] for r in rs)
        share = spent / grid_epochs
        pruned = statistics.mean(r["pruned"] for r in rs)
        chosen = [true[r["chosen"]] for r in rs if r["chosen"] in true]
        mean_chosen = statistics.mean(chosen) if chosen else float("nan")
        sd = statistics.stdev(bests) if len(bests) > 1 else 0.0
        gap, choice_gap = statistics.mean(gaps), grid_choice - mean_chosen
        print(f"{arm:<22} {statistics.mean(bests):.4f} ± {sd:.4f} {gap:>7.4f} "
              f"{f'{within}/{len(rs)}':>5} {spent:>6.1f} {share:>6.1%} {pruned:>6.1f} "
              f"{mean_chosen:>11.4f} {choice_gap:>7.4f}")
        if arm != "grid":
            for kind, g in (("issue", gap), ("fair", choice_gap)):
                met = g <= spread and share <= GOAL_SHARE
                verdicts[kind].append(f"{arm} {'meets' if met else 'misses'} it (gap {g:.4f}, "
                                      f"{share:.1%} of the epochs)")
    print(f"({LEGEND}; ≤sd: runs whose best is within the grid's seed spread of the grid's)")
    print(f"goal: the best within the grid's seed spread ({spread:.4f}) of the grid's at "
          f"≤ {GOAL_SHARE:.0%} of its epochs: " + "; ".join(verdicts["issue"]))
    print(f"fairer: the chosen configuration's true value within {spread:.4f} of the grid's "
          f"choice's at ≤ {GOAL_SHARE:.0%} of its epochs: " + "; ".join(verdicts["fair"]))


def print_preamble(data: dict[int, Curves], common: set[Config], grid_best: dict[int, float],
                   spread: float) -> None:
    """The rank correlation after each epoch, the grid's best and the seed spreads."""
    epochs = min(len(v) for curves in data.values() for v in curves.values())
    print("rank correlation (Spearman) of val_acc after epoch k with the final val_acc, over "
          "the grid's runs:")
    for seed, curves in sorted(data.items()):
        final = [v[-1] for v in curves.values()]
        rho = [spearman([v[k - 1] for v in curves.values()], final) for k in range(1, epochs)]
        print(f"  seed {seed}: " + "  ".join(f"e{k} {r:+.2f}" for k, r in enumerate(rho, 1)))
    one_run = statistics.median(statistics.stdev(data[s][c][-1] for s in data)
                                for c in common) if len(data) > 1 else 0.0
    print(f"grid best per seed: {', '.join(fmt(b) for _, b in sorted(grid_best.items()))}; the "
          f"grid's seed spread (sd) {spread:.4f}; one configuration's (median sd of its final "
          f"val_acc over the seeds) {one_run:.4f}")


# -- the offline replay -----------------------------------------------------------------------


def load_curves(paths: list[str]) -> dict[int, Curves]:
    """Recorded learning curves, one JSON line per run: the grid's keys, `seed` and
    `val_acc` (one value per epoch), as `--save-curves` writes them."""
    data: dict[int, Curves] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            data.setdefault(int(r["seed"]), {})[tuple(float(r[k]) for k in KEYS)] = r["val_acc"]
    return data


def replay_arm(curves: Curves, settings: dict[str, Any], parallel: int) -> dict[str, Any]:
    """One arm as a study in memory, its sampler and pruner built by tuiexp's own code from
    the `[search]` settings, whose trials replay the recorded curve of the configuration
    they ask for: `parallel` trials train in step, an epoch a round; each epoch's val_acc
    is reported and judged, a pruned trial stops there, and one that trains to its end is
    told its best (as the supervisor does)."""
    optuna = studies.optuna_module()
    epochs = len(next(iter(curves.values())))
    space = {k: {"choice": sorted({c[i] for c in curves})} for i, k in enumerate(KEYS)}
    search = {**SETTINGS, **settings, "space": space}
    if search["sampler"] == "grid":
        search["trials"] = len(curves)
    study = optuna.create_study(direction="maximize",
                                sampler=studies.make_sampler(optuna, search, search["seed"]),
                                pruner=studies.make_pruner(optuna, search, epochs))
    if search["sampler"] == "grid":
        for point in studies.grid_points(search):
            study.enqueue_trial(point)
    dists = studies.distributions(optuna, space)
    running: list[tuple[Any, list[float]]] = []  # (trial, its curve)
    trained: dict[int, int] = {}  # trial number → epochs trained
    best, pruned = 0.0, 0
    while True:
        while len(running) < parallel and len(trained) < search["trials"]:
            trial = study.ask(dists)
            running.append((trial, curves[tuple(trial.params[k] for k in KEYS)]))
            trained[trial.number] = 0
        if not running:
            break
        for trial, curve in list(running):
            e = trained[trial.number] = trained[trial.number] + 1
            best = max(best, curve[e - 1])
            trial.report(curve[e - 1], e)
            if e == epochs:
                study.tell(trial, max(curve))
            elif trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned += 1
            else:
                continue
            running.remove((trial, curve))
    top = study.best_trial
    return {"best": best, "epochs": sum(trained.values()), "trials": len(trained),
            "pruned": pruned, "chosen": tuple(top.params[k] for k in KEYS)}


def replay(args: argparse.Namespace, data: dict[int, Curves]) -> dict[str, list[dict[str, Any]]]:
    """Every arm replayed on every seed's curves, with `--replay-seeds` sampler seeds."""
    results: dict[str, list[dict[str, Any]]] = {}
    for arm, settings in arms(args):
        for seed, k in itertools.product(sorted(data), range(args.replay_seeds)):
            # the first sampler seed is the recorded seed, as in the real run
            r = replay_arm(data[seed], {**settings, "seed": seed + 100 * k}, args.parallel)
            results.setdefault(label(arm, settings), []).append({**r, "seed": seed})
    return results


def replay_bench(args: argparse.Namespace) -> int:
    data = load_curves(args.replay)
    curves = next(iter(data.values()))
    print(f"replay of {', '.join(args.replay)}: {len(data)} seed(s), {len(curves)} grid points, "
          f"{len(next(iter(curves.values())))} epochs, {args.replay_seeds} sampler seed(s) per "
          f"seed, {args.parallel} trials at a time (in step)")
    report(replay(args, data), data)
    return 0


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


def ints(text: str) -> list[int]:
    """`2` or `1,2,3`: one value, or a list for --replay."""
    return [int(v) for v in text.split(",")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    ap.add_argument("--num-train", type=int, default=5000)
    ap.add_argument("--num-test", type=int, default=1000, help="the validation images")
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--warmup", type=ints, default=[2],
                    help="the first epoch a trial can be pruned at: ASHA's first rung (its "
                         "min_resource) and the median pruner's warmup (default 2)")
    ap.add_argument("--reduction", type=ints, default=[4], help="ASHA's reduction factor (default 4)")
    ap.add_argument("--startup-trials", type=ints, default=[3],
                    help="trials before TPE models and the median pruner judges (default 3)")
    ap.add_argument("--tpe-trials", type=ints, default=[8], help="TPE + median's trials (default 8)")
    ap.add_argument("--arms", default="grid,asha,tpe_median",
                    help="arms to run, comma-separated (the comparison needs grid)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1 seed, 4 points, 3 epochs")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per arm")
    ap.add_argument("--overhead", action="store_true", help="the per-trial overhead bench instead")
    ap.add_argument("--trials", type=int, default=30, help="--overhead: trials per arm")
    ap.add_argument("--pruner", default="median", help="--overhead: median or none")
    ap.add_argument("--save-curves", metavar="PATH", help="write the grid's learning curves there")
    ap.add_argument("--replay", nargs="+", metavar="PATH",
                    help="replay the arms offline on these recorded curves instead")
    ap.add_argument("--replay-seeds", type=int, default=5,
                    help="--replay: sampler seeds per recorded seed (default 5)")
    args = ap.parse_args()
    args.arms = [a for a in args.arms.split(",") if a]
    if unknown := [a for a in args.arms if a not in ("grid", "asha", "tpe_median")]:
        raise SystemExit(f"unknown arm {unknown[0]!r} (grid, asha, tpe_median)")
    if args.quick:
        args.seeds, args.epochs, args.num_train, args.num_test = 1, 3, 600, 200
        args.tpe_trials, args.startup_trials = [3], [1]
    if not (args.replay or args.overhead) and len(arms(args)) > len(args.arms):
        raise SystemExit("a list of values per setting is for --replay: a real run takes one")
    print(f"{' '.join(sys.argv)}\n{platform.node()}: {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}, {platform.platform()}, Python {platform.python_version()}, "
          f"torch {importlib.metadata.version('torch')}, optuna {importlib.metadata.version('optuna')}",
          flush=True)
    t = time.perf_counter()
    rc = (overhead_bench(args) if args.overhead else replay_bench(args) if args.replay
          else search_bench(args))
    print(f"({time.perf_counter() - t:.0f} s in all; load at the end {os.getloadavg()[0]:.1f})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
