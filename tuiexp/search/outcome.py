"""What a trial's run means to its study: one pure function of the run's index row, used
by the supervisor to tell Optuna (search/study.py) and by every view of the study
(search/view.py), so `study show`, `wait --study` and the dashboard agree with the runs
whether or not Optuna has been told yet."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..store.events import TERMINAL
from ..store.index import RunRow

#: Optuna's trial states, by name (this module does not import Optuna)
COMPLETE, PRUNED, FAIL, RUNNING = "COMPLETE", "PRUNED", "FAIL", "RUNNING"


@dataclass(frozen=True)
class Outcome:
    """A trial's state as its run says it; `value` is the objective for a COMPLETE trial
    (the run's best primary metric), the best so far otherwise; `reason` says why a
    finished run is no complete trial."""

    state: str
    value: float | None = None
    reason: str = ""

    @property
    def ended(self) -> bool:
        return self.state != RUNNING


def outcome(row: RunRow) -> Outcome:
    """The trial's outcome from its run's row (with the primary metric's summaries
    attached): only a finished run whose primary metric was logged at its last epoch
    is a complete trial — one stopped early would feed the sampler a partial value."""
    best = row.best if row.best is not None and math.isfinite(row.best) else None
    if row.status not in TERMINAL:  # (a preempted run is queued again, unless cancelled)
        return Outcome(RUNNING, best)
    if row.status == "pruned":
        return Outcome(PRUNED, best, row.message)
    if row.status != "finished":
        return Outcome(FAIL, best, f"{row.status}: {row.message}" if row.message else row.status)
    metric = row.metric or "the primary metric"
    if best is None:
        return Outcome(FAIL, None, f"finished without a finite value of {metric}")
    per_epoch = row.summaries.get((metric, "epoch"))
    if per_epoch is not None and row.epoch is not None and per_epoch.last_at != row.epoch:
        return Outcome(FAIL, best, f"finished, but its last epoch ({row.epoch}) has no "
                                   f"{metric} (last at epoch {per_epoch.last_at})")
    return Outcome(COMPLETE, best)
