"""A logs directory of built-in trainer runs for the plot tests (and for looking at the
plots by hand: `python -m tests.results.budget_logs DIR`): a param_budget sweep of two
families over three seeds, and a dropout sweep with a fork that changes the schedule."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from tuiexp.config.params import builtin_schema
from tuiexp.store import events, runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec

T0 = 1_700_000_000.0
BUDGETS = [1_000, 5_000, 10_000, 50_000, 100_000, 350_000, 500_000, 1_000_000]
SEEDS = [0, 1, 2]
EPOCHS = 6


def _acc(budget: float, seed: int, epoch: int, family_gap: float) -> float:
    top = 0.35 + 0.09 * math.log10(budget) - family_gap
    wobble = 0.012 * ((seed * 7 + int(budget) % 5) % 3 - 1)
    return round(top * (1 - math.exp(-epoch / 2)) + wobble, 4)


def _run(logs: LogsDir, rid: str, exp: str, params: dict, seed: int, created: float,
         accs: list[float], num_params: int, parent: str | None = None,
         fork_epoch: int | None = None) -> None:
    spec = RunSpec(id=rid, experiment=exp, params={**builtin_schema().defaults(), **params, "seed": seed},
                   seed=seed, created=created, parent=parent, fork_epoch=fork_epoch, metric="val_acc",
                   mode="max")
    paths = runstore.create(logs, spec)
    paths.queue.write_text('{"attempt": 1}')
    # the supervisor's record of the process it started (a pid that cannot be alive)
    (paths.dir / "proc.json").write_text('{"pid": 4194311, "attempt": 1}')
    ev = paths.events
    events.append(ev, "start", created, {"attempt": 1})
    events.append(ev, "meta", created, {"num_params": num_params})
    start = fork_epoch or 0
    for i, acc in enumerate(accs, start + 1):
        events.append(ev, "epoch", created + i, {"epoch": i, "val_acc": acc, "val_loss": round(2.3 * (1 - acc), 4),
                                                 "train_loss": round(2.0 * (1 - acc), 4), "lr": 0.1})
    events.append(ev, "status", created + 100, {"status": "finished", "message": ""})


def build(root: Path) -> LogsDir:
    logs = LogsDir.at(root)
    n = 0
    for exp, family, gap in (("size", "resnet", 0.0), ("size-vgg", "vgg", 0.06)):
        for b, budget in enumerate(BUDGETS, 1):
            for seed in SEEDS:
                n += 1
                accs = [_acc(budget, seed, e, gap) for e in range(1, EPOCHS + 1)]
                count = int(budget * (1 + 0.01 * ((n % 7) - 3)))
                _run(logs, f"{exp}-{budget}-s{seed}", exp, {"model": family, "param_budget": budget,
                     "epochs": EPOCHS, "model_args": {"widths": [b, 2 * b, 4 * b]}}, seed, T0 + n,
                     accs, count)
    for dropout in (0.0, 0.2, 0.4):
        for seed in SEEDS:
            n += 1
            accs = [round(0.5 + 0.05 * e - 0.1 * dropout + 0.01 * seed, 4) for e in range(1, EPOCHS + 1)]
            _run(logs, f"drop-{dropout}-s{seed}", "dropout", {"dropout": dropout, "epochs": EPOCHS},
                 seed, T0 + n, accs, 50_000)
    # a fork of one dropout run from epoch 3 with a new schedule (the trainer sets schedule_start)
    n += 1
    _run(logs, "drop-fork", "dropout", {"dropout": 0.0, "epochs": EPOCHS, "schedule_start": 3,
         "schedule": [{"optimizer": "adam", "lr": 0.001}]}, 0, T0 + n,
         [0.72, 0.75, 0.77], 50_000, parent="drop-0.0-s0", fork_epoch=3)
    return logs


if __name__ == "__main__":
    build(Path(sys.argv[1]))
