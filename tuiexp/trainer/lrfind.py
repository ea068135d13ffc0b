"""The LR range test (`tuiexp lr-find EXP`): train the experiment's model from its
initial weights while the learning rate rises exponentially from `start` to `end`
over `steps` batches, stop once the smoothed loss diverges (above `diverge` times
its lowest, or not finite), and suggest the LR where the smoothed loss falls
fastest against log(LR) (steepest descent).

`python -m tuiexp.trainer.lrfind --params P.json --out DIR` writes DIR/lr_find.json
(the curve, the suggestion, why it stopped) and DIR/lr_find.png where matplotlib is
installed; the CLI runs it as a subprocess, so the command line never imports torch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import TuiexpError
from . import data as datasets
from . import models
from .augment import prepare
from .config import from_params
from .optim import build_optimizer, set_lr


def range_test(params: dict[str, Any], steps: int = 200, start: float = 1e-7, end: float = 10.0,
               smooth: float = 0.05, diverge: float = 4.0,
               on_step: Callable[[int, float, float], None] | None = None) -> dict[str, Any]:
    """Run the test; returns {lrs, losses (smoothed), raw, suggestion, rule, stopped};
    `on_step(i, lr, smoothed loss)` is called after each batch."""
    cfg = from_params(params)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if cfg.device == "auto" else cfg.device))
    data = datasets.load(cfg, device)
    model = models.build(cfg.model, cfg.model_args, len(data.classes), data.image_shape[0],
                         cfg.dropout).to(device)
    opt = build_optimizer(cfg.phase_at(1), model)
    gen = torch.Generator(device).manual_seed(cfg.seed)
    ratio = (end / start) ** (1 / max(1, steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    raw: list[float] = []
    avg, lowest, stopped = 0.0, math.inf, f"reached lr {end:g}"
    model.train()
    for i, (xb, yb) in zip(range(steps), _forever(data, cfg.batch_size, gen), strict=False):
        lr = start * ratio**i
        set_lr(opt, lr)
        x = prepare(xb, data.mean, data.std, cfg.augment, gen)
        loss = F.cross_entropy(model(x).float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            stopped = f"the loss became {value} at lr {lr:.3g}"
            break
        avg = smooth * value + (1 - smooth) * avg
        smoothed = avg / (1 - (1 - smooth) ** (i + 1))  # the bias of an average started at 0
        lrs.append(lr)
        losses.append(smoothed)
        raw.append(value)
        if on_step is not None:
            on_step(i, lr, smoothed)
        if smoothed > diverge * lowest:
            stopped = f"the loss diverged at lr {lr:.3g} ({smoothed:.3g} > {diverge:g} × {lowest:.3g})"
            break
        lowest = min(lowest, smoothed)
    lr = suggest(lrs, losses)
    return {"lrs": lrs, "losses": losses, "raw": raw, "suggestion": lr,
            "rule": rule(lrs, losses, lr), "stopped": stopped, "steps": len(lrs)}


def _forever(data: Any, batch_size: int, gen: torch.Generator) -> Iterator[Any]:
    while True:
        yield from data.train.batches(batch_size, gen)


def suggest(lrs: list[float], losses: list[float]) -> float | None:
    """The LR of steepest descent of the smoothed loss against log(LR), between the
    noisy first tenth and the lowest loss (a slope over a window of ±n/25 points);
    where the loss falls too briefly to measure, a tenth of the LR of the lowest loss
    (the valley rule). None for too short a curve."""
    n = len(lrs)
    if n < 10:
        return None
    lowest = min(range(n), key=losses.__getitem__)
    k = max(1, n // 25)
    first, last = max(n // 10, k), min(lowest, n - 1 - k)
    if last - first < 3:
        return lrs[lowest] / 10 if lowest > 0 else None
    slopes = {i: (losses[i + k] - losses[i - k]) / (math.log(lrs[i + k]) - math.log(lrs[i - k]))
              for i in range(first, last + 1)}
    return lrs[min(slopes, key=slopes.__getitem__)]


def rule(lrs: list[float], losses: list[float], lr: float | None) -> str | None:
    """Which rule of `suggest` gave `lr`: "steepest" or "valley" (None: no suggestion)."""
    if lr is None:
        return None
    lowest = min(range(len(lrs)), key=losses.__getitem__)
    return "valley" if lr == lrs[lowest] / 10 else "steepest"


def plot_png(result: dict[str, Any], path: Path, title: str) -> bool:
    """Loss against LR (log axis) with the suggestion marked; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result["lrs"], result["losses"], label="loss (smoothed)")
    if result["suggestion"]:
        ax.axvline(result["suggestion"], color="red", linestyle="--",
                   label=f"suggested lr {result['suggestion']:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuiexp.trainer.lrfind")
    ap.add_argument("--params", required=True, help="a JSON file of trainer params")
    ap.add_argument("--out", required=True, help="folder for lr_find.json and lr_find.png")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--start", type=float, default=1e-7)
    ap.add_argument("--end", type=float, default=10.0)
    ap.add_argument("--title", default="LR range test")
    ap.add_argument("--progress", action="store_true",
                    help="print `step steps lr loss` after each batch (the dashboard reads it)")
    args = ap.parse_args(argv)

    def progress(i: int, lr: float, loss: float) -> None:
        print(f"{i + 1} {args.steps} {lr:.6g} {loss:.6g}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = range_test(json.loads(Path(args.params).read_text()), args.steps, args.start,
                            args.end, on_step=progress if args.progress else None)
    except TuiexpError as e:
        print(f"tuiexp lr-find: {e}", file=sys.stderr)
        return 2
    result["png"] = str(out / "lr_find.png") if plot_png(result, out / "lr_find.png", args.title) else None
    (out / "lr_find.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
