"""The LR range test's plan and reading, shared by `tuiexp lr-find` and the dashboard's
`L`: where its output goes, the command that runs it (the built-in trainer's
`python -m tuiexp.trainer.lrfind`, a subprocess, so neither caller imports torch),
and how its result reads (the suggestion and why).

Never imports torch, textual or tuiexp.trainer: the command names the module only."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.model import Config
from ..errors import ConfigError
from ..store.paths import LogsDir

STEPS, START, END = 200, 1e-7, 10.0  # the ramp's defaults (batches, first and last LR)


@dataclass(frozen=True)
class Plan:
    """One range test: its folder (lr_find.json, lr_find.png, params.json) and command."""

    experiment: str
    out: Path
    argv: list[str]

    @property
    def result_path(self) -> Path:
        return self.out / "lr_find.json"


def plan(logs: LogsDir, cfg: Config, experiment: str, overrides: dict[str, Any],
         steps: int = STEPS, start: float = START, end: float = END,
         progress: bool = False) -> Plan:
    """Check the experiment runs the built-in trainer, write its params into a new folder
    under logs/lr-find, and return the command to run (with `progress`, it prints
    `step steps lr loss` per batch)."""
    exp = cfg.experiment(experiment)
    if not exp.builtin:
        raise ConfigError(f"{cfg.path.name}: lr-find runs the built-in trainer, but experiment "
                          f"'{exp.name}' has a `command`.")
    params = cfg.expand(experiment, overrides)[0]
    out = new_folder(logs.ensure().root / "lr-find", exp.name)
    (out / "params.json").write_text(json.dumps(params))
    argv = [sys.executable, "-m", "tuiexp.trainer.lrfind", "--params", str(out / "params.json"),
            "--out", str(out), "--steps", str(steps), "--start", str(start), "--end", str(end),
            "--title", f"LR range test: {exp.name}"] + (["--progress"] if progress else [])
    return Plan(exp.name, out, argv)


def new_folder(root: Path, name: str) -> Path:
    """`root/NAME-STAMP`, made afresh (`-2`, `-3`... when two tests start in one second)."""
    stamp = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        path = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"could not make a new folder for the LR range test in {root}.")


def read_result(path: Path) -> dict[str, Any]:
    """lr_find.json as the trainer wrote it."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def queued_lr(suggestion: float) -> float:
    """The LR a queued run gets: the suggestion to 3 significant digits (as shown)."""
    return float(f"{suggestion:.3g}")


def why(result: dict[str, Any]) -> str:
    """Why the suggestion is what it is, in one sentence (or why there is none)."""
    lrs, losses, lr = result["lrs"], result["losses"], result.get("suggestion")
    if lr is None or not lrs:
        return (f"No suggestion: the curve has {len(lrs)} points, too few to read "
                f"({result['stopped']}).")
    low = min(range(len(losses)), key=losses.__getitem__)
    at = f"the lowest smoothed loss, {losses[low]:.3g} at lr {lrs[low]:.3g}"
    if result.get("rule") == "valley" or math.isclose(lr, lrs[low] / 10, rel_tol=1e-9):
        return f"A tenth of the LR of {at} (the descent before it was too short to measure)."
    return f"Where the smoothed loss falls fastest against log(lr), before {at}."


def diverged_at_once(result: dict[str, Any], experiment: str) -> str | None:
    """A sentence when the test has no curve to read: it diverged within its first steps."""
    if result.get("suggestion") is not None:
        return None
    return (f"The LR range test of {experiment} diverged at once ({result['stopped']} after "
            f"{result['steps']} steps), so there is no LR to suggest; check the model and data.")
