"""Readers believe the run directories: the rows a command shows are checked against them.

The index is a cache. A supervisor may write another file than the one a reader opens
(the index was deleted or restored from a copy), or may not be able to write at all (a
full disk), or may not run. So `ls`, `show`, `wait` and the dashboard check each row
they show as queued, starting or running against its directory — small JSON files and
/proc, no event log — and derive the row again where the directory says otherwise:
in the index when it can be written, else in memory for this look. With no supervisor,
a reader also follows each live run it shows, as the supervisor would (`Index.follow`:
the new lines of its log, from the fold the index keeps with its row).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from . import events, health, lock, runstore
from .index import ACTIVE, Index, RunRow
from .paths import RunPaths

#: the rows a reader follows itself where no supervisor does
LIVE = ("starting", "running")


def reconcile(index: Index, rows: list[RunRow]) -> list[RunRow]:
    """`rows`, each one its directory contradicts derived again from that directory, and
    with no supervisor, each live one followed to the end of its log."""
    if not any(r.status in ACTIVE for r in rows):
        return rows
    supervised = lock.is_running(index.logs)
    return [_checked(index, row, supervised) if row.status in ACTIVE else row for row in rows]


def _checked(index: Index, row: RunRow, supervised: bool) -> RunRow:
    if not supervised and row.status in LIVE:
        return _followed(index, row)
    return _again(index, row) if stale(index.logs.run(row.id), row, supervised) else row


def reconcile_active(index: Index) -> None:
    """Every queued, starting or running row of the index checked against its directory
    (and indexed again where stale), for a view that reads rows afterwards."""
    reconcile(index, index.runs(status=ACTIVE))


def stale(paths: RunPaths, row: RunRow, supervised: bool) -> bool:
    """Whether the directory contradicts a queued, starting or running row."""
    proc = runstore.read_json(paths.proc) or {}
    attempt = proc.get("attempt", 0)
    if row.status == "queued":  # the supervisor marks a run starting before it claims it
        asked = runstore.asked_attempt(paths)
        return attempt >= asked or paths.claim(asked).exists()
    if attempt > row.attempt:
        return True
    if not proc:  # being started, since its claim: for long, its supervisor died meanwhile
        claimed = runstore.claim_age(paths, runstore.asked_attempt(paths))
        return not supervised or claimed is None or claimed >= runstore.START_GRACE
    if (runstore.read_json(paths.exit) or {}).get("attempt") == attempt:
        return True  # it ended (the supervisor records that first, on a full disk too)
    if supervised or proc.get("executor") == "slurm":
        return False  # the supervisor concludes it within a tick
    return runstore.writer_alive(proc) is False  # (None: on another host, its events tell)


def _followed(index: Index, row: RunRow) -> RunRow:
    """A live row no supervisor follows, brought up to its log and directory."""
    if stale(index.logs.run(row.id), row, supervised=False):
        return _again(index, row)
    return _reread(index, row, index.follow) or _again(index, row)


def _again(index: Index, row: RunRow) -> RunRow:
    """The row derived from its directory: indexed again where the index takes it, else
    changed in memory for this look only."""
    fresh = _reread(index, row, index.reindex_run)
    if fresh is not None:
        return fresh
    paths = index.logs.run(row.id)
    verdict = runstore.derive_status(paths, runstore.last_status(events.read_all(paths.events)))
    row.status, row.message, row.dropped = verdict.status, verdict.message, verdict.dropped
    return row


def _reread(index: Index, row: RunRow, write: Callable[[str], object]) -> RunRow | None:
    """The row after `write` brought it up to date in the index; None where the index
    cannot take the write (a full disk, a read-only or busy file)."""
    try:
        write(row.id)
        fresh = index.run(row.id)
    except (sqlite3.Error, OSError) as e:
        if health.kind(e) not in ("full", "readonly", "io", "busy", "cantopen"):
            raise
        return None
    if fresh is None:
        return None
    return index.attach_summaries([fresh])[0] if row.summaries else fresh
