"""`tuiexp lr-find EXP`: the built-in trainer's LR range test (tuiexp/trainer/lrfind.py)
as a terminal chart, a PNG and a suggested LR, with an offer to queue EXP with it."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys

from ..config import loader, values
from ..errors import UsageError
from ..search import lrfind
from ..store.paths import LogsDir


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser | None = None
                ) -> None:
    """Register `lr-find` on an argparse subparsers object."""
    parents = [common] if common is not None else []
    p = sub.add_parser("lr-find", parents=parents, help="LR range test: loss against a rising LR",
                       description="Train EXP's model with the learning rate rising exponentially "
                       "until the loss diverges; show loss against LR and suggest an LR.")
    p.add_argument("experiment", metavar="EXP", help="an experiment of the built-in trainer")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param for the test (and the queued runs)")
    p.add_argument("--steps", type=int, default=200, help="batches in the ramp (default 200)")
    p.add_argument("--start", type=float, default=1e-7, help="first LR (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last LR (default 10)")
    p.add_argument("--queue", action=argparse.BooleanOptionalAction, default=None,
                   help="queue EXP with the suggested lr (default: ask on a terminal)")
    p.set_defaults(func=cmd_lr_find)


def cmd_lr_find(args: argparse.Namespace) -> int:
    cfg = loader.load(args.config)
    exp = cfg.experiment(args.experiment)
    if exp.builtin and (args.steps < 10 or not 0 < args.start < args.end):
        raise UsageError("lr-find needs --steps of at least 10 and 0 < --start < --end.")
    overrides = values.parse_overrides(args.set)
    logs = LogsDir.at(args.logs).ensure()
    job = lrfind.plan(logs, cfg, exp.name, overrides, args.steps, args.start, args.end)
    proc = subprocess.run(job.argv)
    if proc.returncode != 0:
        return proc.returncode
    result = lrfind.read_result(job.result_path)
    print(chart(result["lrs"], result["losses"], result["suggestion"]))
    print(f"{result['steps']} steps; stopped: {result['stopped']}")
    if result.get("png"):
        print(f"plot: {result['png']}")
    lr = result["suggestion"]
    if lr is None:
        print("no suggestion: the curve is too short (raise --steps or lower --start).")
        return 1
    print(f"suggested lr: {lr:.3g}. {lrfind.why(result)}")
    if _wants_queue(args.queue, exp.name, lr):
        from ..queue.client import Client
        from ..search.launch import launch

        with Client(logs) as client:
            done = launch(client, cfg, exp.name,
                          values.deep_merge(overrides, {"lr": lrfind.queued_lr(lr)}))
        print("\n".join(done.ids) if done.ids else done.text)
    return 0


def _wants_queue(flag: bool | None, name: str, lr: float) -> bool:
    if flag is not None:
        return flag
    if not sys.stdin.isatty():
        return False
    answer = input(f"queue {name} with lr = {lr:.3g}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def chart(xs: list[float], ys: list[float], mark: float | None, width: int = 64,
          height: int = 14) -> str:
    """Loss against LR (log x) as text; `|` marks the suggested LR."""
    if len(xs) < 2:
        return "(too few points to draw)"
    lx = [math.log10(x) for x in xs]
    # the divergence at the end would flatten the rest: clip the top a little above the start
    lo_y = min(ys)
    hi_y = min(max(ys), ys[0] + 0.5 * (ys[0] - lo_y) if ys[0] > lo_y else max(ys))
    ys = [min(y, hi_y) for y in ys]
    span_x, span_y = (lx[-1] - lx[0]) or 1.0, (hi_y - lo_y) or 1.0
    grid = [[" "] * width for _ in range(height)]
    for x, y in zip(lx, ys, strict=True):
        col = round((x - lx[0]) / span_x * (width - 1))
        row = height - 1 - round((y - lo_y) / span_y * (height - 1))
        grid[row][col] = "•"
    if mark is not None:
        col = round((math.log10(mark) - lx[0]) / span_x * (width - 1))
        for cells in grid:
            if cells[col] == " ":
                cells[col] = "|"
    lines = [f"{hi_y:>8.3g} ┤" + "".join(grid[0])]
    lines += ["         │" + "".join(r) for r in grid[1:-1]]
    lines.append(f"{lo_y:>8.3g} ┤" + "".join(grid[-1]))
    lines.append("          " + f"{xs[0]:<.2g}".ljust(width - 8) + f"{xs[-1]:.2g}")
    lines.append("          " + "learning rate (log)".center(width))
    return "\n".join(lines)
