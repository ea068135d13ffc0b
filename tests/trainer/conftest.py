"""Helpers for the trainer tests: tiny runs in temporary logs directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tuiexp.store import events, runstore
from tuiexp.store.paths import LogsDir, RunPaths
from tuiexp.store.spec import RunSpec

#: small enough that an epoch takes a fraction of a second on one CPU core
TINY: dict[str, Any] = {
    "dataset": "shapes",
    "num_train": 288,
    "val_split": 0.125,
    "image_size": 16,
    "model": "resnet",
    "model_args": {"widths": [8, 16], "depths": [1, 1]},
    "batch_size": 32,
    "epochs": 3,
    "optimizer": "adam",
    "lr": 0.01,
    "weight_decay": 0.0,
    "log_every": 4,
    "threads": 1,
    "device": "cpu",  # the same numbers on any machine: resume equivalence is checked exactly
}


def tiny_toml(drop: tuple[str, ...] = (), **overrides: Any) -> str:
    """TINY (less `drop`, with `overrides`) as the lines of an experiments.toml table: the
    other test folders queue the same tiny runs through a config."""
    from tuiexp.results.report import toml_value

    params = {k: v for k, v in {**TINY, **overrides}.items() if k not in drop}
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in params.items())


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)  # tests run beside each other's subprocesses: no oversubscription


def make_run(root: Path, params: dict[str, Any], run_id: str = "run", **spec: Any) -> RunPaths:
    return runstore.create(LogsDir.at(root), RunSpec(id=run_id, experiment="t", params=params, **spec))


def run_trainer(paths: RunPaths, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUIEXP_RUN_DIR": str(paths.dir), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tuiexp.trainer"], env=env, timeout=timeout,
                          capture_output=True, text=True)


def start_trainer(paths: RunPaths) -> subprocess.Popen[str]:
    env = {**os.environ, "TUIEXP_RUN_DIR": str(paths.dir), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tuiexp.trainer"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_events(paths: RunPaths, kind: str | None = None) -> list[dict[str, Any]]:
    evs = events.read_all(paths.events)
    return [e for e in evs if kind is None or e["kind"] == kind]


def final_status(paths: RunPaths) -> dict[str, Any]:
    return read_events(paths, "status")[-1]
