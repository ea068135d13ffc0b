"""What the study tests share: a small TPE study of one script."""

from __future__ import annotations

import sys
from pathlib import Path

from ..conftest import write_config


def study_config(where: Path, script: Path, *, trials: int, parallel: int = 1,
                 sleep: float = 0.0, epochs: int = 4, extra: str = "",
                 pruner: str = "median") -> Path:
    """experiments.toml with one study, `tiny`: `script` trained on x and width (TPE, two
    startup trials), its trials `parallel` at once."""
    body = f"""
[queue]
gpus = "none"
cpu_jobs = {parallel}

[experiments.tiny]
command = ["{sys.executable}", "{script}"]
metric = "val/score"
x = 0.5
width = 1
epochs = {epochs}
sleep = {sleep}
{extra}

[experiments.tiny.search]
sampler = "tpe"
pruner = "{pruner}"
trials = {trials}
parallel = {parallel}
startup_trials = 2
x = {{ uniform = [0.0, 1.0] }}
width = {{ int_uniform = [1, 4] }}
"""
    return write_config(where, body)
