"""Folding a run's event log into the index: each metric's points in chunks keyed by
(run, key, first step or epoch), a summary per key, the run's clock, primary metric
and best. A `Fold` is how far one run's log is folded; it is kept with the run's row
(`ingested`, `fold`), so whoever follows a live run next — the supervisor, or a reader
when none runs — goes on from there (`follow`) rather than from the start.
`reindex_run` and `rebuild` fold run directories from scratch (the index is
rebuildable from them)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from itertools import islice
from operator import lt
from typing import Any

import orjson

from ..errors import UsageError
from . import events, notes, runstore
from .events import RESERVED
from .metrics import MAX_NAMES, MAX_STEP, KeySummary, primary, valid_name
from .paths import LogsDir, RunPaths
from .schema import SCOPE_CODE, Database, dumps, nan_of
from .series import CHUNK, LIVE_CHUNK, Chunk, chunks


@dataclass
class Fold:
    """What ingest has folded of one run's event log so far (the supervisor keeps one per
    watched run, so each tick reads only the new lines)."""

    num: int | None = None
    spec_metric: str | None = None
    spec_mode: str | None = None
    epoch: int | None = None
    step: int | None = None
    started: float | None = None
    ended: float | None = None
    status: dict[str, Any] | None = None  # the last status event since the last start
    time_before: float = 0.0  # see RunRow
    attempt_started: float | None = None
    last_event: float | None = None
    last_epoch: tuple[int, float] | None = None  # this attempt's latest epoch and when it began
    epoch_secs: float = 0.0
    epoch_gaps: int = 0
    lr: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    logged_params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    checkpoints: set[int] = field(default_factory=set)
    keys: dict[tuple[str, str], KeySummary] = field(default_factory=dict)
    dropped: set[tuple[str, str]] = field(default_factory=set)  # names refused, with a warning
    skipped: int = 0  # step/epoch events with a step or epoch that is not an int in range

    def primary(self) -> tuple[str | None, str, float | None, int | None]:
        name, mode = primary(self.spec_metric, self.spec_mode, {n for n, _ in self.keys})
        ks = self.keys.get((name, "epoch")) or self.keys.get((name, "step")) if name else None
        best, at = ks.best(mode) if ks else (None, None)
        return name, mode, best, at

    def state(self) -> str:
        """What the row's columns and the summaries do not hold (the `fold` column)."""
        return orjson.dumps({"status": self.status, "ended": self.ended,
                             "last_epoch": self.last_epoch, "skipped": self.skipped,
                             "dropped": sorted(self.dropped)}).decode()

    @classmethod
    def restore(cls, db: sqlite3.Connection, num: int) -> tuple[Fold, int]:
        """The fold a run's row was left with, and the offset it reached."""
        row = db.execute(
            "SELECT spec, epoch, step, started, time_before, attempt_started, last_event,"
            " epoch_secs, epoch_gaps, lr, meta, logged_params, warnings, checkpoints, fold,"
            " ingested FROM runs WHERE num = ?", (num,)).fetchone()
        spec = json.loads(row["spec"])
        state = json.loads(row["fold"]) if row["fold"] else {}
        fold = cls(num, spec.get("metric"), spec.get("mode"),
                   **{c: row[c] for c in ("epoch", "step", "started", "time_before",
                                          "attempt_started", "last_event", "epoch_secs",
                                          "epoch_gaps", "lr")},
                   **{c: json.loads(row[c]) if row[c] else empty()
                      for c, empty in (("meta", dict), ("logged_params", dict),
                                       ("warnings", list))},
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




MAX_WARNINGS = 50
REBUILD_BATCH = 50  # runs per transaction of a rebuild (a commit costs a millisecond)
_NUMBERS = {float, int}  # a metric's value types (bool is neither)


class Indexer(Database):
    """The index's connection, able to fold run directories in."""

    def __init__(self, logs: LogsDir, readonly: bool = False):
        super().__init__(logs, readonly)
        if self.stale_queue is not None:  # another schema version: rebuilt, queue order kept
            self.rebuild(self.stale_queue)

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
        # per scope, name -> (xs, values), in log order (the event's own fields start out
        # mapped to None: never metrics). Consecutive step (or epoch) events with the same
        # fields are folded as a block, column by column in C (zip, map, extend); a
        # block of a few events, point by point.
        by_scope: dict[str, dict[str, Any]] = {
            "step": dict.fromkeys(RESERVED), "epoch": dict.fromkeys(RESERVED)}
        confusions = []
        block: list[tuple[Any, ...]] = []
        shape: tuple[str, ...] = ()
        for ev in chunk.events:
            kind = ev["kind"]
            if kind == "step" or kind == "epoch":
                fields = (kind, *ev)
                if fields != shape:
                    if block:
                        self._fold_block(fold, by_scope, shape, block)
                    block, shape = [], fields
                block.append(tuple(ev.values()))
                continue
            if block:
                self._fold_block(fold, by_scope, shape, block)
                block, shape = [], ()
            if kind == "confusion" and type(ev.get("epoch")) is int and 0 <= ev["epoch"] < MAX_STEP:
                confusions.append((num, ev["epoch"], json.dumps(ev)))
            else:
                _fold_other(fold, kind, ev)
            fold.last_event = ev.get("t", fold.last_event)
        if block:
            self._fold_block(fold, by_scope, shape, block)
        batch = {(name, kind): pts for kind, scope in by_scope.items()
                 for name, pts in scope.items() if pts is not None}
        keys = fold.keys
        kids = {k: self._key_id(*k) for k in batch}
        repeated, had = set(), set()
        for k, (xs, vs) in batch.items():
            ks = keys[k]
            if ks.count:
                had.add(k)  # its last chunk is in the table, and may have room
            if (ks.last_at is not None and xs[0] <= ks.last_at) or not all(
                    map(lt, xs, islice(xs, 1, None))):  # C-speed: strictly rising?
                repeated.add(k)  # a resume repeated points: merged with the table's below
            else:
                ks.extend(xs, vs)
        with self.tx() as db:
            if offset == 0:  # from the start: whatever an earlier fold wrote goes
                for table in ("series", "summaries", "confusion"):
                    db.execute(f"DELETE FROM {table} WHERE run = ?", (num,))
            rows: list[tuple[Any, ...]] = []
            for k, (xs, vs) in batch.items():
                if k in repeated:
                    keys[k] = self._merge(db, num, kids[k], k, xs, vs)
                else:
                    rows += self._appended(db, num, kids[k], xs, vs, k in had)
            db.executemany("INSERT OR REPLACE INTO series VALUES (?,?,?,?,?,?,?,?)", rows)
            db.executemany("INSERT OR REPLACE INTO confusion VALUES (?,?,?)", confusions)
            db.executemany(
                "INSERT OR REPLACE INTO summaries VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(num, kids[k], s.count, s.last, s.last_at, s.min, s.min_at, s.max,
                  s.max_at, s.total) for k in batch if (s := keys[k])])
            metric, mode, best, best_at = fold.primary()
            db.execute(
                "UPDATE runs SET epoch=?, step=?, metric=?, mode=?, best=?, best_at=?, meta=?,"
                " logged_params=?, warnings=?, checkpoints=?, started=COALESCE(started, ?),"
                " time_before=?, attempt_started=?, last_event=?, epoch_secs=?, epoch_gaps=?,"
                " lr=?, ingested=?, fold=?, seq=? WHERE num=?",
                (fold.epoch, fold.step, metric, mode, best, best_at, dumps(fold.meta),
                 dumps(fold.logged_params), dumps(fold.warnings), json.dumps(sorted(fold.checkpoints)),
                 fold.started, fold.time_before, fold.attempt_started, fold.last_event,
                 fold.epoch_secs, fold.epoch_gaps, fold.lr, chunk.offset, fold.state(),
                 self._next_seq(), num),
            )
        return chunk.offset, len(chunk.events)

    def _fold_block(self, fold: Fold, by_scope: dict[str, dict[str, Any]],
                    shape: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Consecutive step or epoch events with the same fields (`shape`: the kind, then
        the field names; `rows`: their values), folded column by column."""
        kind, names = shape[0], shape[1:]
        at = names.index(kind) if kind in names and len(rows) >= 4 else -1
        xs = [row[at] for row in rows] if at >= 0 else []
        if not xs or set(map(type, xs)) != {int} or min(xs) < 0 or max(xs) >= MAX_STEP:
            for row in rows:  # few, or some step or epoch is not an int in range
                self._fold_event(fold, by_scope, kind, dict(zip(names, row, strict=True)))
            return
        t = names.index("t") if "t" in names else -1
        if kind == "step":
            fold.step = xs[-1]
        else:
            fold.epoch = xs[-1]
            for x, row in zip(xs, rows, strict=True):
                _epoch_clock(fold, x, row[t] if t >= 0 else None)
        if t >= 0:
            fold.last_event = rows[-1][t]
        if "lr" in names:
            lr = names.index("lr")
            fold.lr = next((float(row[lr]) for row in reversed(rows)
                            if type(row[lr]) is float or type(row[lr]) is int), fold.lr)
        scope = by_scope[kind]
        for name, column in zip(names, zip(*rows, strict=True), strict=True):
            points = scope.get(name, ())
            if points is None:
                continue
            types = set(map(type, column))
            if not types <= _NUMBERS:  # some values are no numbers: those are left out
                if not types & _NUMBERS:
                    continue
                kept = [(x, v) for x, v in zip(xs, column, strict=True)
                        if type(v) is float or type(v) is int]
                column, col_xs = tuple(v for _, v in kept), [x for x, _ in kept]
            else:
                col_xs = xs
            if points == ():
                if not self._admit_key(fold, name, kind):
                    scope[name] = None
                    continue
                points = scope[name] = ([], [])
            points[0].extend(col_xs)
            points[1].extend(column)

    def _fold_event(self, fold: Fold, by_scope: dict[str, dict[str, Any]], kind: str,
                    ev: dict[str, Any]) -> None:
        """One step or epoch event, point by point."""
        x = ev.get(kind)
        if type(x) is not int or not 0 <= x < MAX_STEP:
            if not fold.skipped:
                _warn(fold, f"a {kind} event with {kind} = {str(x)[:40]} (not an integer"
                            " in [0, 2**63)) was skipped, and any later ones")
            fold.skipped += 1
            return
        if kind == "step":
            fold.step = x
        else:
            fold.epoch = x
            _epoch_clock(fold, x, ev.get("t"))
        if type(lr := ev.get("lr")) is float or type(lr) is int:
            fold.lr = float(lr)  # the LR in effect: the last one logged (a start clears it)
        scope = by_scope[kind]
        for name, v in ev.items():
            tv = type(v)
            if tv is not float and tv is not int:
                continue
            points = scope.get(name, ())
            if points is None:
                continue
            if points == ():
                if not self._admit_key(fold, name, kind):
                    scope[name] = None
                    continue
                points = scope[name] = ([], [])
            points[0].append(x)
            points[1].append(v)
        fold.last_event = ev.get("t", fold.last_event)

    def _admit_key(self, fold: Fold, name: str, kind: str) -> bool:
        """A name met first in this batch: one the run has, or a new one it may have."""
        if (name, kind) in fold.dropped:
            return False
        return (name, kind) in fold.keys or self._new_key(fold, name, kind)

    def _new_key(self, fold: Fold, name: str, scope: str) -> bool:
        """A metric name seen for the first time in this run: checked, capped, summarised."""
        if not valid_name(name):
            fold.dropped.add((name, scope))
            _warn(fold, f"metric name {name[:60]!r} is not allowed (letters, digits, _ . / -;"
                        " at most 128 characters); its values were dropped")
            return False
        if len(fold.keys) >= MAX_NAMES:
            fold.dropped.add((name, scope))
            _warn(fold, f"more than {MAX_NAMES} metric names; later names were dropped")
            return False
        fold.keys[(name, scope)] = KeySummary(name, scope)
        return True

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
        points.update(zip(xs, vs, strict=True))  # in log order: the last event wins
        db.execute("DELETE FROM series WHERE run = ? AND key = ?", (num, kid))
        mx = sorted(points)
        mv = [points[x] for x in mx]
        db.executemany("INSERT INTO series VALUES (?,?,?,?,?,?,?,?)",
                       [(num, kid, *c.row()) for c in chunks(mx, mv, CHUNK)])
        ks = KeySummary(*key)
        ks.extend(mx, mv)
        return ks

    def rebuild(self, queue: dict[str, tuple[float, int]] | None = None) -> int:
        """Rebuild the whole index from the run directories; returns the run count.
        Directories that cannot be indexed are left out; `problems` says why, a sentence
        each (a copied run, a planted directory, an unreadable run.json)."""
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
        for at in range(0, len(ids), REBUILD_BATCH):
            with self.tx():  # a commit per batch of runs, not per run (each its savepoint)
                for rid in ids[at:at + REBUILD_BATCH]:
                    try:
                        self.reindex_run(rid, queue.get(rid))
                        done += 1
                    except UsageError as e:
                        self.problems.append(str(e))
        return done

    def reindex_run(self, run_id: str, queue: tuple[float, int] | None = None) -> str:
        """Index one run directory from scratch (its log read once, in one transaction).
        A directory whose run.json names another run (a copy: `cp -r runs/A
        runs/A-backup`) is refused, never merged into A."""
        paths = self.logs.run(run_id)
        spec = runstore.checked_spec(paths)  # a missing run: RunNotFound, with the place
        proc = runstore.read_json(paths.proc) or {}
        with self.tx() as db:
            old = db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
            self._delete(db, run_id)
            # the same number again: a supervisor's fold of this run keeps pointing at it
            self._insert(db, spec, "running", num=old[0] if old else None)
            if queue:
                db.execute("UPDATE runs SET queue_pos=?, priority=? WHERE id=?", (*queue, run_id))
            ann = notes.read(paths)  # a broken file leaves the run unannotated
            db.execute("UPDATE runs SET attempt=?, pid=?, gpu=?, note=?, tags=? WHERE id=?",
                       (proc.get("attempt", 0), proc.get("pid"), proc.get("gpu"), ann.note,
                        dumps(ann.tags_of(spec.tags)), run_id))
            fold = Fold()
            self.ingest(run_id, paths, fold, 0, max_bytes=None)
            return self._judge(db, run_id, paths, fold)

    def resume(self, run_id: str) -> tuple[Fold, int]:
        """The fold kept with a run's row and the offset it reached (a fresh fold from
        the start where the row has none)."""
        row = self.db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(f"run {run_id} is not in the index.")
        return Fold.restore(self.db, row[0])

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
            fold, offset = Fold.restore(db, row[0])
            while True:
                offset, read = self.ingest(run_id, paths, fold, offset)
                if not read:
                    break
            return self._judge(db, run_id, paths, fold)

    def _judge(self, db: sqlite3.Connection, run_id: str, paths: RunPaths, fold: Fold) -> str:
        """Set a run's status as its directory says, with the fold's last status event."""
        verdict = runstore.derive_status(paths, fold.status)
        ended = (runstore.read_json(paths.exit) or {}).get("ended")
        if ended is None and verdict.status in events.TERMINAL:
            ended = fold.ended
        now = (verdict.status, verdict.message, ended)
        if tuple(db.execute("SELECT status, message, ended FROM runs WHERE id = ?",
                            (run_id,)).fetchone()) != now:
            db.execute("UPDATE runs SET status=?, message=?, ended=?, seq=? WHERE id=?",
                       (*now, self._next_seq(), run_id))
        return verdict.status


def _fold_other(fold: Fold, kind: str, ev: dict[str, Any]) -> None:
    """Events other than metrics and confusion matrices."""
    if kind == "meta":
        fold.meta.update({k: v for k, v in ev.items() if k not in ("v", "t", "kind")})
    elif kind == "params" and isinstance(ev.get("params"), dict):
        fold.logged_params.update(ev["params"])
    elif kind == "warning":
        _warn(fold, str(ev.get("message", "")))
    elif kind == "start":
        fold.started = fold.started or ev.get("t")
        fold.status = None
        fold.ended = None
        fold.lr = None  # a new attempt has not said its LR yet
        _new_attempt(fold, ev.get("t"))
    elif kind == "status":
        fold.status = ev
        if ev.get("status") in events.TERMINAL:
            fold.ended = ev.get("t")
    elif kind == "checkpoint" and type(ev.get("epoch")) is int:
        fold.checkpoints.add(ev["epoch"])
    elif kind == "checkpoint_removed":
        fold.checkpoints.discard(ev.get("epoch"))


def _new_attempt(fold: Fold, t: Any) -> None:
    """A `start` event: the attempt before it ran until its last event (its final status,
    or whatever it wrote last if it was killed); the time between attempts is not run time."""
    if not isinstance(t, (int, float)):
        return
    if fold.attempt_started is not None and fold.last_event is not None:
        fold.time_before += max(0.0, fold.last_event - fold.attempt_started)
    fold.attempt_started, fold.last_epoch = t, None


def _epoch_clock(fold: Fold, epoch: int, t: Any) -> None:
    """Time epochs by when each first shows in this attempt: from epoch 3's first event
    to epoch 4's is one epoch (a script may log an epoch in several events, or log
    every other epoch: the time is shared out over the epochs passed)."""
    if not isinstance(t, (int, float)):
        return
    last = fold.last_epoch
    if last is not None and epoch == last[0]:
        return
    if last is not None and epoch > last[0] and t >= last[1]:
        fold.epoch_secs += t - last[1]
        fold.epoch_gaps += epoch - last[0]
    fold.last_epoch = (epoch, t)


def _warn(fold: Fold, message: str) -> None:
    if len(fold.warnings) < MAX_WARNINGS and message not in fold.warnings:
        fold.warnings.append(message)
