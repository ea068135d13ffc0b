"""Every study and population of a logs directory: the supervisor's producer (it steps
each one from its tick, queueing trials and members), and what `tuiexp study show` and the
dashboard's `S` print."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..queue import daemon
from ..queue.client import Client
from ..store import lock, runstore
from ..store.paths import LogsDir
from ..store.reconcile import reconcile_active
from . import pbt, view
from .pbt import PbtDriver
from .study import Driver, definition_path, load_definition, names

#: seconds between looks at every study when none of their runs changed (a new study, a
#: restart); a study whose run changed is stepped in the same tick
STEP_EVERY = 1.0


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
        self._seq = 0  # the index's change counter when the studies were last stepped

    def tick(self) -> None:
        """Step each study one of whose runs changed (a new epoch, an end) since the last
        tick, at once: a verdict or the next trial waits for no timer; every study now
        and then."""
        seq = self.index.max_seq()
        if time.monotonic() - self._last >= STEP_EVERY:
            self._last = time.monotonic()
            due = [n for n in names(self.logs) if n not in self.done]
        elif seq != self._seq:
            changed = [r.id for r in self.index.runs(since_seq=self._seq, slim=True)]
            due = [n for n, d in self.drivers.items()
                   if any(rid.startswith(f"{d.definition['prefix']}-") for rid in changed)]
        else:
            return
        for name in due:
            try:
                self._step(name)
                self._clear(f"study:{name}")
            except Exception as e:  # noqa: BLE001 - one study's problem is that study's
                self._complain(f"study:{name}", f"study {name} failed a step", e)
        self._seq = self.index.max_seq()  # (its own queueing is no change to step on)

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
    """A study's or a population's state as text, from the runs as they are (a stale row
    of a run that ended while no supervisor watched is derived again from its directory);
    a study left unfinished by a supervisor that died gets a new one."""
    definition = load_definition(logs, name)
    with Client(logs, autostart=False, reading=True) as client:
        reconcile_active(client.index)
        if definition.get("kind") == "pbt":
            text = pbt.summary(logs, definition)
        else:
            text = view.summary(view.read(logs, definition, client.index))
    wake(logs)
    return text


def unfinished(logs: LogsDir) -> list[str]:
    """The studies and populations that still have trials to run or follow."""
    found = [(n, runstore.read_json(definition_path(logs, n))) for n in names(logs)]
    return [n for n, d in found if d is not None and not d.get("done")]


def wake(logs: LogsDir) -> None:
    """Start a supervisor where an unfinished study has none: between two trials nothing
    is queued, so the queue alone would not ask for one. Does not wait for it."""
    try:
        if not lock.is_running(logs) and unfinished(logs):
            daemon.spawn(logs, wait=0)
    except OSError:
        pass  # someone else's read-only logs: reading must still work
