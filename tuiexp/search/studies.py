"""Every study and population of a logs directory: the supervisor's producer (it steps
each one from its tick, queueing trials and members), and what `tuiexp study show` and the
dashboard's `S` print."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..store.paths import LogsDir
from . import pbt, study
from .pbt import PbtDriver
from .study import Driver, load_definition, names

STEP_EVERY = 0.2  # seconds between a study's steps in the supervisor's tick (a pruning verdict waits no longer)


class Studies:
    """Every unfinished study of a logs directory, stepped from the supervisor's tick.
    One study's failure is that study's: the others and the queue go on."""

    def __init__(self, logs: LogsDir, index: Any, complain: Callable[[str, str, BaseException], None],
                 clear: Callable[[str], None]):
        self.logs = logs
        self.index = index
        self.drivers: dict[str, Any] = {}  # Driver or pbt.PbtDriver
        self.done: set[str] = set()
        self._complain, self._clear = complain, clear
        self._last = 0.0

    def tick(self) -> None:
        if time.monotonic() - self._last < STEP_EVERY:
            return
        self._last = time.monotonic()
        for name in names(self.logs):
            if name in self.done:
                continue
            try:
                self._step(name)
                self._clear(f"study:{name}")
            except Exception as e:  # noqa: BLE001 - one study's problem is that study's
                self._complain(f"study:{name}", f"study {name} failed a step", e)

    def _step(self, name: str) -> None:
        driver = self.drivers.get(name)
        if driver is None:
            definition = load_definition(self.logs, name)
            if definition.get("done"):
                self.done.add(name)
                return
            if definition.get("kind") == "pbt":
                driver = self.drivers[name] = PbtDriver(self.logs, self.index, definition)
            else:
                driver = self.drivers[name] = Driver(self.logs, self.index, definition)
        driver.step()
        if driver.finished:
            self.done.add(name)
            del self.drivers[name]

    def busy(self) -> bool:
        """A study still has trials to run (the supervisor must not idle out)."""
        return bool(self.drivers)


def summary(logs: LogsDir, name: str) -> str:
    """A study's or a population's state as text."""
    definition = load_definition(logs, name)
    if definition.get("kind") == "pbt":
        return pbt.summary(logs, definition)
    return study.summary(logs, definition)
