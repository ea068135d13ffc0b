"""What a bulk action on the marked runs will do, said before it is done.

Each plan takes the runs the action applies to (the marked ones, else the one under
the cursor) and returns the ids it will act on and the sentence(s) the confirmation
dialog shows: which runs, and for a cancel or a resume whether a checkpoint exists to
resume from. No Textual here: the screens show the text, tests read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..queue.client import RESUMABLE
from ..store.events import TERMINAL
from ..store.index import RunRow
from ..store.query import resume_point

#: run id -> the label the table shows it by (`RunsTable.names`)
Names = Mapping[str, str]

LIVE = ("running", "starting")


@dataclass(frozen=True)
class Plan:
    """The runs an action will touch, and what to ask first (None: ask nothing)."""

    ids: list[str]
    question: str | None


def names(rows: list[RunRow], labels: Names, limit: int = 6) -> str:
    """The runs as the table names them (their labels, else ids), at most `limit` of
    them, then how many more."""
    shown = ", ".join(labels.get(r.id, r.id) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def checkpoint_note(r: RunRow, labels: Names, later: bool) -> str:
    """Where `r` resumes from (`query.resume_point`), as a reader needs to know it:
    `later` (a cancel) by `r`."""
    by, name = "r " if later else "", labels.get(r.id, r.id)
    epoch, _ = resume_point(r)
    if epoch is None:
        return f"{name} (no checkpoint: {by}starts it again from the beginning)"
    where = "checkpoint" if r.checkpoints else "forked"
    return f"{name} ({where} at epoch {epoch}: {by}resumes from there)"


def cancel_plan(rows: list[RunRow], labels: Names) -> Plan:
    """Cancel: a queued run leaves the queue; a running one is stopped (asks first)."""
    if len(rows) == 1 and rows[0].status not in LIVE:
        return Plan([rows[0].id], None)  # queued, or refused by the queue with a sentence
    live = [r for r in rows if r.status in LIVE]
    queued = [r for r in rows if r.status == "queued"]
    ended = [r for r in rows if r.status not in LIVE and r.status != "queued"]
    parts = []
    if live:
        parts.append(f"Stop {plural(len(live), 'running run')}: "
                     + "; ".join(checkpoint_note(r, labels, later=True) for r in live) + ".")
    if queued:
        parts.append(f"Take {plural(len(queued), 'queued run')} off the queue: {names(queued, labels)}.")
    if ended:
        parts.append(f"Leave {plural(len(ended), 'run')} that already ended: {names(ended, labels)}.")
    ids = [r.id for r in queued + live]  # the queue first: a stopped run frees no slot for them
    return Plan(ids, " ".join(parts) if ids else None)


def resume_plan(rows: list[RunRow], labels: Names) -> Plan:
    """Resume: each resumable run is queued again from its last checkpoint."""
    if len(rows) == 1:
        return Plan([rows[0].id], None)  # the queue refuses what cannot resume, in a sentence
    ok = [r for r in rows if r.status in RESUMABLE]
    other = [r for r in rows if r.status not in RESUMABLE]
    parts = []
    if ok:
        parts.append(f"Queue {plural(len(ok), 'run')} again: "
                     + "; ".join(checkpoint_note(r, labels, later=False) for r in ok) + ".")
    if other:
        parts.append(f"Leave {plural(len(other), 'run')} that cannot resume (queued, running or "
                     f"finished): {names(other, labels)}.")
    return Plan([r.id for r in ok], " ".join(parts) if ok else None)


def archive_plan(rows: list[RunRow], labels: Names) -> Plan:
    """Archive: ended runs' directories move to logs/archive and leave the table."""
    done = [r for r in rows if r.status in TERMINAL]
    live = [r for r in rows if r.status not in TERMINAL]
    parts = []
    if done:
        parts.append(f"Archive {plural(len(done), 'run')}: {names(done, labels)}. "
                     "Their directories move to logs/archive/ and they leave the table.")
    if live:
        parts.append(f"Leave {plural(len(live), 'run')} that still run or wait (cancel them "
                     f"first): {names(live, labels)}.")
    return Plan([r.id for r in done], " ".join(parts) if done else None)
