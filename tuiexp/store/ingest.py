"""Folding a run's event log into the index: each metric point keyed by (run, key, step
or epoch), a summary per key, the run's clock, primary metric and best. The supervisor
keeps a `Fold` per watched run and reads only new lines; `reindex_run` and `rebuild`
fold run directories from scratch (the index is rebuildable from them)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from ..errors import UsageError
from . import events, health, notes, runstore
from .events import RESERVED
from .metrics import MAX_NAMES, MAX_STEP, KeySummary, primary, valid_name
from .paths import LogsDir, RunPaths
from .schema import Database, dumps, nan_of


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




MAX_WARNINGS = 50


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
        num, keys, dropped = fold.num, fold.keys, fold.dropped
        # per scope, name -> (xs, values): no tuple built per point on the hot path
        # (the event's own fields start out mapped to None: skipped with one lookup)
        by_scope: dict[str, dict[str, Any]] = {
            "step": dict.fromkeys(RESERVED), "epoch": dict.fromkeys(RESERVED)}
        confusions = []
        for ev in chunk.events:
            kind = ev["kind"]
            if kind == "step" or kind == "epoch":
                x = ev.get(kind)
                if type(x) is not int or not 0 <= x < MAX_STEP:
                    if not fold.skipped:
                        _warn(fold, f"a {kind} event with {kind} = {str(x)[:40]} (not an integer"
                                    " in [0, 2**63)) was skipped, and any later ones")
                    fold.skipped += 1
                    continue
                if kind == "step":
                    fold.step = x
                else:
                    fold.epoch = x
                    _epoch_clock(fold, x, ev.get("t"))
                scope = by_scope[kind]
                for name, v in ev.items():
                    tv = type(v)
                    if tv is not float and tv is not int:
                        continue
                    points = scope.get(name, ())
                    if points is None:
                        continue
                    if points == ():
                        if (name, kind) in dropped or (
                                (name, kind) not in keys and not self._new_key(fold, name, kind)):
                            scope[name] = None
                            continue
                        points = scope[name] = ([], [])
                    points[0].append(x)
                    points[1].append(v)
            elif kind == "confusion" and type(ev.get("epoch")) is int and 0 <= ev["epoch"] < MAX_STEP:
                confusions.append((num, ev["epoch"], json.dumps(ev)))
            else:
                _fold_other(fold, kind, ev)
            fold.last_event = ev.get("t", fold.last_event)
        fold.lr = _last_lr(chunk.events, fold.lr)
        batch = {(name, kind): pts for kind, scope in by_scope.items()
                 for name, pts in scope.items() if pts is not None}
        kids = {k: self._key_id(*k) for k in batch}
        repeated = set()
        for k, (xs, vs) in batch.items():
            ks = keys[k]
            if (ks.last_at is not None and xs[0] <= ks.last_at) or (
                    xs != sorted(xs) or len(set(xs)) != len(xs)):  # C-speed: strictly rising?
                repeated.add(k)  # a resume repeated points: recomputed from the table below
            else:
                ks.extend(xs, vs)
        with self.tx() as db:
            for k, (xs, vs) in batch.items():
                db.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?)",
                               zip(repeat(num), repeat(kids[k]), xs, vs))
            db.executemany("INSERT OR REPLACE INTO confusion VALUES (?,?,?)", confusions)
            for k in repeated:
                keys[k] = self._summarize(db, num, *k)
            db.executemany(
                "INSERT OR REPLACE INTO summaries VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(num, kids[k], s.count, s.last, s.last_at, s.min, s.min_at, s.max,
                  s.max_at, s.total) for k in batch if (s := keys[k])])
            metric, mode, best, best_at = fold.primary()
            db.execute(
                "UPDATE runs SET epoch=?, step=?, metric=?, mode=?, best=?, best_at=?, meta=?,"
                " logged_params=?, warnings=?, checkpoints=?, started=COALESCE(started, ?),"
                " time_before=?, attempt_started=?, last_event=?, epoch_secs=?, epoch_gaps=?,"
                " lr=?, epoch_at=?, seq=? WHERE num=?",
                (fold.epoch, fold.step, metric, mode, best, best_at, dumps(fold.meta),
                 dumps(fold.logged_params), dumps(fold.warnings), json.dumps(sorted(fold.checkpoints)),
                 fold.started, fold.time_before, fold.attempt_started, fold.last_event,
                 fold.epoch_secs, fold.epoch_gaps, fold.lr,
                 fold.last_epoch[1] if fold.last_epoch else fold.attempt_started,
                 self._next_seq(), num),
            )
        return chunk.offset, len(chunk.events)

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

    def _summarize(self, db: sqlite3.Connection, num: int, name: str, scope: str) -> KeySummary:
        """A key's summary recomputed from its stored points."""
        ks = KeySummary(name, scope)
        kid = self._key_id(name, scope)
        for x, v in db.execute("SELECT x, value FROM metrics WHERE run = ? AND key = ?"
                               " ORDER BY x", (num, kid)):
            ks.add(x, nan_of(v))
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
            for table in ("runs", "metrics", "summaries", "confusion"):
                db.execute(f"DELETE FROM {table}")
        self.problems = []
        done = 0
        for rid in ids:
            try:
                self.reindex_run(rid, queue.get(rid))
                done += 1
            except UsageError as e:
                self.problems.append(str(e))
        return done

    def reindex_run(self, run_id: str, queue: tuple[float, int] | None = None) -> str:
        """Index one run directory from scratch. A directory whose run.json names another
        run (a copy: `cp -r runs/A runs/A-backup`) is refused, never merged into A."""
        paths = self.logs.run(run_id)
        if paths.dir.is_dir() and (problem := runstore.check_run_dir(paths)):
            raise UsageError(problem)
        spec = runstore.load_spec(paths)  # a missing run: RunNotFound, with the place
        evs = events.read_all(paths.events)
        verdict = runstore.derive_status(paths, runstore.last_status(evs))
        proc = runstore.read_json(paths.proc) or {}
        with self.tx() as db:
            old = db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
            self._delete(db, run_id)
            # the same number again: a supervisor's fold of this run keeps pointing at it
            self._insert(db, spec, verdict.status, verdict.message, num=old[0] if old else None)
            if queue:
                db.execute("UPDATE runs SET queue_pos=?, priority=? WHERE id=?", (*queue, run_id))
            ann = notes.read(paths)  # a broken file leaves the run unannotated
            db.execute("UPDATE runs SET attempt=?, pid=?, gpu=?, job_id=?, node=?, ended=?, note=?,"
                       " tags=?, dropped=? WHERE id=?",
                       (proc.get("attempt", 0), proc.get("pid"), proc.get("gpu"),
                        proc.get("job_id"), proc.get("node"),
                        (runstore.read_json(paths.exit) or {}).get("ended"), ann.note,
                        dumps(ann.tags_of(spec.tags)), verdict.dropped, run_id))
        self.ingest(run_id, paths, Fold(), 0, max_bytes=None)
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


def _last_lr(evs: list[dict[str, Any]], before: float | None) -> float | None:
    """The LR in effect after these events: the last `lr` of a step or epoch event, None
    when a new attempt started after it (it has not said yet), else `before`."""
    for ev in reversed(evs):
        kind = ev["kind"]
        if kind == "start":
            return None
        if kind in ("step", "epoch") and type(lr := ev.get("lr")) in (int, float):
            return float(lr)
    return before


def _warn(fold: Fold, message: str) -> None:
    if len(fold.warnings) < MAX_WARNINGS and message not in fold.warnings:
        fold.warnings.append(message)
