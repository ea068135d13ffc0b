"""Folding a run's event log into the index: each metric's points in chunks keyed by
(run, key, first step or epoch), a summary per key, the run's clock, primary metric
and best (the folding itself: store/fold.py). A `Fold` is how far one run's log is
folded; it is kept with the run's row (`ingested`, `fold`), so whoever follows a live
run next — the supervisor, or a reader when none runs — goes on from there (`follow`)
rather than from the start. `reindex_run` and `rebuild` fold run directories from
scratch (the index is rebuildable from them); a rebuild folds them on every core."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from ..errors import UsageError
from . import events, health, runstore
from .fold import Fold, Prepared, fold_events, merged, prepare, prepare_or_problem, settle
from .metrics import KeySummary
from .paths import LogsDir, RunPaths
from .schema import SCOPE_CODE, Database, dumps, nan_of
from .series import CHUNK, LIVE_CHUNK, Chunk, chunks

__all__ = ["Fold", "Indexer", "restore_fold"]

REBUILD_BATCH = 50  # runs per transaction of a rebuild (a commit costs a millisecond)
#: a rebuild asked to use worker processes does so from this many runs
PARALLEL_FROM = 64


class Indexer(Database):
    """The index's connection, able to fold run directories in."""

    def __init__(self, logs: LogsDir, readonly: bool = False):
        super().__init__(logs, readonly)
        self._rebuild_if_stale()

    def _rebuild_if_stale(self) -> None:
        #: how many runs the open rebuilt (a new file or another schema), else None
        self.rebuilt: int | None = None
        if self.stale_queue is not None:  # rebuilt from the directories, queue order kept
            self.rebuilt = self.rebuild(self.stale_queue)
            self.stale_queue = None

    def reopen(self) -> None:
        """Open `index.sqlite` again (it was deleted, replaced or moved aside): whoever
        holds this object keeps working; a new file is rebuilt from the run directories.
        Run numbers (`Fold.num`) of the old file mean nothing in the new one."""
        self.db.close()
        self._open()
        self._rebuild_if_stale()

    def recover(self, e: BaseException) -> bool:
        """After `e` from a statement: if the index is damaged, move it aside and reopen
        (rebuilt); True when that happened (the caller redoes its work), else False."""
        if self.readonly or not health.corrupt(e):
            return False
        target = health.quarantine(self.logs, str(e))
        if target is None and not self.replaced():
            return False  # sound, as far as SQLite can tell: redoing would fail the same way
        self.db.close()
        self._open()
        self._rebuild_if_stale()
        return True

    def ingest(self, run_id: str, paths: RunPaths, fold: Fold, offset: int,
               max_bytes: int | None = 16 << 20) -> tuple[int, int]:
        """Fold the events after `offset` into the index; returns (new offset, events read).

        Points are keyed by (run, metric, step or epoch): reading a log again after a
        crash or a restart doubles nothing, and a resume's repeated epoch replaces the
        earlier one. An event whose step or epoch is not an integer in [0, 2**63) is
        skipped, never fatal."""
        chunk = events.read_from(paths.events, offset, max_bytes)
        if not chunk.events:
            return chunk.offset, 0
        if fold.num is None:
            row = self.db.execute("SELECT num, spec FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise UsageError(f"run {run_id} is not in the index.")
            spec = json.loads(row[1])
            fold.num, fold.spec_metric, fold.spec_mode = row[0], spec.get("metric"), spec.get("mode")
        num = fold.num
        batch, confusions = fold_events(fold, chunk.events)
        had = {k for k in batch if fold.keys[k].count}  # their last chunks are in the table
        repeated = settle(fold, batch)
        kids = {k: self._key_id(*k) for k in batch}
        with self.tx() as db:
            if offset == 0:  # from the start: whatever an earlier fold wrote goes
                for table in ("series", "summaries", "confusion"):
                    db.execute(f"DELETE FROM {table} WHERE run = ?", (num,))
            rows: list[tuple[Any, ...]] = []
            for k, (xs, vs) in batch.items():
                if k in repeated:
                    fold.keys[k] = self._merge(db, num, kids[k], k, xs, vs)
                else:
                    rows += self._appended(db, num, kids[k], xs, vs, k in had)
            db.executemany("INSERT OR REPLACE INTO series VALUES (?,?,?,?,?,?,?,?)", rows)
            self._write_fold(db, num, fold, kids, confusions, chunk.offset)
        return chunk.offset, len(chunk.events)

    def _write_fold(self, db: sqlite3.Connection, num: int, fold: Fold,
                    kids: dict[tuple[str, str], int], confusions: list[tuple[int, str]],
                    offset: int) -> None:
        """The summaries of the keys in `kids`, the confusion matrices, and the run's row
        as the fold has them, folded to `offset`."""
        db.executemany("INSERT OR REPLACE INTO confusion VALUES (?,?,?)",
                       [(num, epoch, data) for epoch, data in confusions])
        db.executemany(
            "INSERT OR REPLACE INTO summaries VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(num, kid, s.count, s.last, s.last_at, s.min, s.min_at, s.max, s.max_at, s.total)
             for k, kid in kids.items() if (s := fold.keys[k])])
        metric, mode, best, best_at = fold.primary()
        db.execute(
            "UPDATE runs SET epoch=?, step=?, metric=?, mode=?, best=?, best_at=?, meta=?,"
            " logged_params=?, warnings=?, checkpoints=?, started=COALESCE(started, ?),"
            " time_before=?, attempt_started=?, last_event=?, epoch_secs=?, epoch_gaps=?,"
            " lr=?, epoch_at=?, ingested=?, fold=?, seq=? WHERE num=?",
            (fold.epoch, fold.step, metric, mode, best, best_at, dumps(fold.meta),
             dumps(fold.logged_params), dumps(fold.warnings), json.dumps(sorted(fold.checkpoints)),
             fold.started, fold.time_before, fold.attempt_started, fold.last_event,
             fold.epoch_secs, fold.epoch_gaps, fold.lr,
             fold.last_epoch[1] if fold.last_epoch else fold.attempt_started, offset, fold.state(),
             self._next_seq(), num),
        )

    @staticmethod
    def _appended(db: sqlite3.Connection, num: int, kid: int, xs: list[int], vs: list[float],
                  had: bool) -> list[tuple[Any, ...]]:
        """The chunk rows that put new points after a key's last: onto its last chunk
        while that is short (a live run's flushes each add a point or a few; the row
        replaces it), else new chunks."""
        if had:
            row = db.execute("SELECT x0, n, dx, xs, vs FROM series WHERE run = ? AND key = ?"
                             " ORDER BY x0 DESC LIMIT 1", (num, kid)).fetchone()
            if row is not None and row[1] < LIVE_CHUNK:
                tail = Chunk.of_row(*row)
                xs, vs = [*tail.xs, *xs], [*tail.vs, *vs]
        return [(num, kid, *c.row()) for c in chunks(xs, vs, CHUNK)]

    @staticmethod
    def _merge(db: sqlite3.Connection, num: int, kid: int, key: tuple[str, str],
               xs: list[int], vs: list[float]) -> KeySummary:
        """Points that repeat or precede stored ones (a resume repeats its epochs): the
        key's points merged, the later value winning, written again; its new summary."""
        points: dict[int, float] = {}
        for row in db.execute("SELECT x0, n, dx, xs, vs FROM series WHERE run = ? AND key = ?"
                              " ORDER BY x0", (num, kid)):
            c = Chunk.of_row(*row)
            points.update(zip(c.xs, c.vs, strict=True))
        mx, mv, ks = merged(points, key, xs, vs)
        db.execute("DELETE FROM series WHERE run = ? AND key = ?", (num, kid))
        db.executemany("INSERT INTO series VALUES (?,?,?,?,?,?,?,?)",
                       [(num, kid, *c.row()) for c in chunks(mx, mv, CHUNK)])
        return ks

    def rebuild(self, queue: dict[str, tuple[float, int]] | None = None,
                workers: int = 1) -> int:
        """Rebuild the whole index from the run directories; returns the run count.
        Directories that cannot be indexed are left out; `problems` says why, a sentence
        each (a copied run, a planted directory, an unreadable run.json). With `workers`
        > 1 (`tuiexp reindex`: one per core), directories are folded in that many worker
        processes while this one writes; they are spawned, so the program asking must
        guard its main code (`if __name__ == "__main__"`), as tuiexp's commands do."""
        try:
            ids = sorted(p.name for p in self.logs.runs.iterdir()
                         if p.is_dir() and not p.name.startswith("."))
        except FileNotFoundError:
            ids = []
        with self.tx() as db:
            if queue is None:
                queue = {r["id"]: (r["queue_pos"], r["priority"]) for r in
                         db.execute("SELECT id, queue_pos, priority FROM runs")}
            for table in ("runs", "series", "summaries", "confusion"):
                db.execute(f"DELETE FROM {table}")
        self.problems = []
        done = 0
        with _folded(str(self.logs.root), ids, workers) as folded:
            for at in range(0, len(ids), REBUILD_BATCH):
                with self.tx():  # a commit per batch of runs, not per run (each a savepoint)
                    for rid in ids[at:at + REBUILD_BATCH]:
                        prepared = next(folded)
                        if isinstance(prepared, str):
                            self.problems.append(prepared)
                            continue
                        self._write_prepared(rid, prepared, queue.get(rid))
                        done += 1
        return done

    def reindex_run(self, run_id: str, queue: tuple[float, int] | None = None) -> str:
        """Index one run directory from scratch (its files read once, in one transaction).
        A directory whose run.json names another run (a copy: `cp -r runs/A
        runs/A-backup`) is refused, never merged into A."""
        return self._write_prepared(run_id, prepare(self.logs.root, run_id), queue)

    def _write_prepared(self, run_id: str, p: Prepared, queue: tuple[float, int] | None) -> str:
        with self.tx() as db:
            old = db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
            self._delete(db, run_id)
            # the same number again: a supervisor's fold of this run keeps pointing at it
            self._insert(db, p.spec, p.status, p.message, num=old[0] if old else None)
            num = db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
            pos, priority = queue or (p.spec.created, p.spec.priority)
            db.execute("UPDATE runs SET queue_pos=?, priority=?, attempt=?, pid=?, gpu=?,"
                       " job_id=?, node=?, note=?, tags=?, ended=?, dropped=? WHERE num=?",
                       (pos, priority, p.proc.get("attempt", 0), p.proc.get("pid"),
                        p.proc.get("gpu"), p.proc.get("job_id"), p.proc.get("node"), p.note,
                        dumps(p.tags), p.ended, p.dropped, num))
            p.fold.num = num
            kids = {k: self._key_id(*k) for k in p.rows}
            db.executemany("INSERT INTO series VALUES (?,?,?,?,?,?,?,?)",
                           [(num, kids[k], *row) for k, rows in p.rows.items() for row in rows])
            self._write_fold(db, num, p.fold, kids, p.confusions, p.offset)
        return p.status

    def resume(self, run_id: str) -> tuple[Fold, int]:
        """The fold kept with a run's row and the offset it reached (a fresh fold from
        the start where the row has none)."""
        row = self.db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(f"run {run_id} is not in the index.")
        return restore_fold(self.db, row[0])

    def follow(self, run_id: str) -> str | None:
        """Fold what a live run logged since the index last looked, from the fold kept
        with its row (what a reader does when no supervisor follows the run), and judge
        its status from its directory; returns the status (None: no such row). In one
        transaction: two readers, or a reader and a supervisor starting, take turns."""
        paths = self.logs.run(run_id)
        with self.tx() as db:
            row = db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            fold, offset = restore_fold(db, row[0])
            while True:
                offset, read = self.ingest(run_id, paths, fold, offset)
                if not read:
                    break
            verdict = runstore.derive_status(paths, fold.status)
            ended = (runstore.read_json(paths.exit) or {}).get("ended")
            if ended is None and verdict.status in events.TERMINAL:
                ended = fold.ended
            now = (verdict.status, verdict.message, ended, verdict.dropped)
            if tuple(db.execute("SELECT status, message, ended, dropped FROM runs WHERE id = ?",
                                (run_id,)).fetchone()) != now:
                db.execute("UPDATE runs SET status=?, message=?, ended=?, dropped=?, seq=?"
                           " WHERE id=?",
                           (*now, self._next_seq(), run_id))
            return verdict.status


def cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def _folded(root: str, ids: list[str], workers: int) -> Iterator[Iterator[Prepared | str]]:
    """The run directories `ids` folded from scratch, in order: by `workers` processes
    when there are many (spawned, not forked: the process asking may run threads)."""
    if len(ids) < PARALLEL_FROM or workers < 2:
        yield map(partial(prepare_or_problem, root), ids)
        return
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        yield iter(pool.map(partial(prepare_or_problem, root), ids, chunksize=16))


def restore_fold(db: sqlite3.Connection, num: int) -> tuple[Fold, int]:
    """The fold a run's row was left with, and the offset of its log it reached."""
    row = db.execute(
        "SELECT spec, epoch, step, started, time_before, attempt_started, last_event,"
        " epoch_secs, epoch_gaps, lr, meta, logged_params, warnings, checkpoints, fold,"
        " ingested FROM runs WHERE num = ?", (num,)).fetchone()
    spec = json.loads(row["spec"])
    state = json.loads(row["fold"]) if row["fold"] else {}
    fold = Fold(num, spec.get("metric"), spec.get("mode"),
                **{c: row[c] for c in ("epoch", "step", "started", "time_before",
                                       "attempt_started", "last_event", "epoch_secs",
                                       "epoch_gaps", "lr")},
                **{c: json.loads(row[c]) if row[c] else empty()
                   for c, empty in (("meta", dict), ("logged_params", dict), ("warnings", list))},
                checkpoints=set(json.loads(row["checkpoints"] or "[]")),
                ended=state.get("ended"), status=state.get("status"),
                skipped=state.get("skipped", 0),
                dropped={(n, sc) for n, sc in state.get("dropped", ())})
    if state.get("last_epoch"):
        epoch, t = state["last_epoch"]
        fold.last_epoch = (epoch, t)
    scopes = {code: scope for scope, code in SCOPE_CODE.items()}
    for name, code, count, last, last_at, lo, lo_at, hi, hi_at, total in db.execute(
            "SELECT k.name, k.scope, s.count, s.last, s.last_at, s.min, s.min_at, s.max,"
            " s.max_at, s.total FROM summaries s JOIN keys k ON k.id = s.key"
            " WHERE s.run = ?", (num,)):
        scope = scopes[code]
        fold.keys[(name, scope)] = KeySummary(
            name, scope, count, nan_of(last) if last_at is not None else None, last_at,
            lo, lo_at, hi, hi_at, total or 0.0)
    return fold, row["ingested"]
