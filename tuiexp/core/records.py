"""What one run amounts to: its spec, true status and metrics, read from its directory.

`Summary` folds events one at a time, so the supervisor can keep it up to date
from incremental reads and `reindex` can rebuild it from the whole log alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import events, runstore
from .paths import LogsDir, RunPaths
from .spec import RunSpec

#: The per-epoch metric names the built-in trainer writes (user scripts may add more).
EPOCH_METRICS = (
    "train_loss", "train_acc", "val_loss", "val_acc", "val_top5",
    "lr", "epoch_time", "images_per_s", "peak_mem_mb",
)


@dataclass
class Summary:
    """The running fold of a run's events (last event per epoch wins: a resume may repeat one)."""

    epoch: int | None = None
    step: int | None = None
    last_step: dict[str, Any] = field(default_factory=dict)
    last_epoch: dict[str, Any] = field(default_factory=dict)
    best_val_acc: float | None = None
    best_epoch: int | None = None
    train_time: float = 0.0
    epoch_times: dict[int, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] | None = None
    started: float | None = None
    ended: float | None = None
    checkpoints: set[int] = field(default_factory=set)
    confusion_epochs: set[int] = field(default_factory=set)

    def add(self, ev: dict[str, Any]) -> None:
        kind = ev.get("kind")
        if kind == "step":
            self.step = ev.get("step", self.step)
            self.last_step = ev
        elif kind == "epoch":
            ep = ev.get("epoch")
            if isinstance(ep, int):
                self.epoch = ep
                self.last_epoch = ev
                if isinstance(ev.get("epoch_time"), (int, float)):
                    self.epoch_times[ep] = float(ev["epoch_time"])
                    self.train_time = sum(self.epoch_times.values())
                acc = ev.get("val_acc")
                if _finite(acc) and (self.best_val_acc is None or acc > self.best_val_acc):
                    self.best_val_acc, self.best_epoch = float(acc), ep
        elif kind == "meta":
            self.meta.update({k: v for k, v in ev.items() if k not in ("v", "t", "kind")})
        elif kind == "start":
            self.started = self.started or ev.get("t")
            self.status = None
            self.ended = None
        elif kind == "status":
            self.status = ev
            if ev.get("status") in events.TERMINAL:
                self.ended = ev.get("t")
        elif kind == "checkpoint" and isinstance(ev.get("epoch"), int):
            self.checkpoints.add(ev["epoch"])
        elif kind == "checkpoint_removed":
            self.checkpoints.discard(ev.get("epoch"))
        elif kind == "confusion" and isinstance(ev.get("epoch"), int):
            self.confusion_epochs.add(ev["epoch"])

    def add_all(self, evs: list[dict[str, Any]]) -> Summary:
        for e in evs:
            self.add(e)
        return self


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class RunRecord:
    """A run as tables, exports and the UI see it."""

    spec: RunSpec
    status: str
    message: str = ""
    summary: Summary = field(default_factory=Summary)
    epochs: list[dict[str, Any]] = field(default_factory=list)  # ascending, one per epoch

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def experiment(self) -> str:
        return self.spec.experiment

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    @property
    def num_params(self) -> int | None:
        return self.summary.meta.get("num_params")

    @property
    def final(self) -> dict[str, Any]:
        return self.epochs[-1] if self.epochs else {}


def epoch_rows(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per epoch, the last event for an epoch winning, ascending."""
    by_epoch: dict[int, dict[str, Any]] = {}
    for e in evs:
        if e.get("kind") == "epoch" and isinstance(e.get("epoch"), int):
            by_epoch[e["epoch"]] = e
    return [by_epoch[k] for k in sorted(by_epoch)]


def load_record(paths: RunPaths) -> RunRecord:
    """Everything about one run, from its directory alone."""
    spec = runstore.load_spec(paths)
    evs = events.read_all(paths.events)
    verdict = runstore.derive_status(paths, runstore.last_status(evs))
    return RunRecord(spec, verdict.status, verdict.message, Summary().add_all(evs), epoch_rows(evs))


def load_records(logs: LogsDir) -> list[RunRecord]:
    return [load_record(logs.run(rid)) for rid in runstore.run_ids(logs)]
