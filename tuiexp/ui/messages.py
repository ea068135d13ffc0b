"""Messages the dashboard's workers and screens post: past-tense events."""

from __future__ import annotations

from textual.message import Message

from ..store.index import RunRow
from .data import Delta, Detail

#: a metric's epoch-level points: (epoch, value)
Curve = list[tuple[int, float]]


class IndexPolled(Message):
    """The poller read what changed in the index."""

    def __init__(self, delta: Delta) -> None:
        super().__init__()
        self.delta = delta


class ClientSucceeded(Message):
    """A queue command (enqueue, fork, cancel, ...) went through."""

    def __init__(self, text: str, run_id: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.run_id = run_id


class ClientFailed(Message):
    """A queue command was refused; `text` is one plain sentence."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ForkAsked(Message):
    """`f` on the detail screen: fork this run (the app opens the runs screen's form)."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class DetailLoaded(Message):
    """The detail screen's data was read."""

    def __init__(self, detail: Detail | None) -> None:
        super().__init__()
        self.detail = detail


class CompareLoaded(Message):
    """The compare screen's data was read: the metrics to chart, and each run with its
    curves of them (after its lineage's prefix)."""

    def __init__(self, names: list[str], runs: list[tuple[RunRow, dict[str, Curve]]]) -> None:
        super().__init__()
        self.names = names
        self.runs = runs
