"""The SQLite index (WAL): the queue, and what the UI and CLI query.

Only clients (enqueue, cancel, reorder) and the supervisor (ingest, status)
write it; run processes never open it. Everything in it can be rebuilt from
the run directories (`rebuild`).
"""

from __future__ import annotations

import gc
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from ..errors import UsageError
from . import events, notes, runstore
from .events import RESERVED
from .metrics import MAX_STEP, KeySummary, primary, valid_name
from .paths import LogsDir, RunPaths
from .series import Buckets, width_for
from .spec import RunSpec

SCHEMA_VERSION = 5  # 4: note and tags (store/notes.py); 5: the clock across attempts, the current LR
ACTIVE = ("queued", "starting", "running")
SCOPE_CODE = {"epoch": 0, "step": 1}
_FINITE = "value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    experiment TEXT NOT NULL,
    parent TEXT,
    fork_epoch INTEGER,
    created REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    queue_pos REAL NOT NULL,
    status TEXT NOT NULL,
    epoch INTEGER,
    epochs INTEGER,
    step INTEGER,
    metric TEXT,
    mode TEXT,
    best REAL,
    best_at INTEGER,
    started REAL,
    ended REAL,
    gpu TEXT,
    pid INTEGER,
    attempt INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    time_before REAL NOT NULL DEFAULT 0,
    attempt_started REAL,
    last_event REAL,
    epoch_secs REAL NOT NULL DEFAULT 0,
    epoch_gaps INTEGER NOT NULL DEFAULT 0,
    lr REAL,
    -- the long columns last: a listing that reads none of them skips their pages
    message TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    tags TEXT,
    meta TEXT,
    logged_params TEXT,
    warnings TEXT,
    checkpoints TEXT,
    spec TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, priority, queue_pos);
CREATE INDEX IF NOT EXISTS runs_seq ON runs(seq);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, scope INTEGER NOT NULL, UNIQUE (name, scope));
CREATE TABLE IF NOT EXISTS metrics (
    run INTEGER NOT NULL, key INTEGER NOT NULL, x INTEGER NOT NULL, value REAL,
    PRIMARY KEY (run, key, x)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS summaries (
    run INTEGER NOT NULL, key INTEGER NOT NULL, count INTEGER NOT NULL, last REAL,
    last_at INTEGER, min REAL, min_at INTEGER, max REAL, max_at INTEGER, total REAL,
    PRIMARY KEY (run, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS confusion (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (run, epoch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_TABLES = ("runs", "keys", "metrics", "summaries", "confusion", "settings")


@dataclass(slots=True)
class RunRow:
    """One run as every view sees it: queue state, status, progress, the primary
    metric's best, and (when asked for) its metric summaries."""

    id: str
    experiment: str
    status: str
    num: int = 0
    parent: str | None = None
    fork_epoch: int | None = None
    created: float = 0.0
    priority: int = 0
    queue_pos: float = 0.0
    message: str = ""
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    metric: str | None = None  # the primary metric (resolved: the spec's, or the default rule)
    mode: str | None = None
    best: float | None = None  # its best finite value, and the epoch (or step) of it
    best_at: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: what the script reported it used (`params` events)
    logged_params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    gpu: str | None = None
    pid: int | None = None
    attempt: int = 0
    spec: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    #: the user's note and tags (annotations.json, else the spec's tags)
    note: str = ""
    tags: list[str] = field(default_factory=list)
    #: the clock across attempts (a resume is a new attempt; the time between is no run
    #: time): seconds run by earlier attempts, when this one started, the last event's time
    time_before: float = 0.0
    attempt_started: float | None = None
    last_event: float | None = None
    #: wall seconds between consecutive `epoch` events of one attempt, and how many such
    #: gaps: a whole epoch (training, evaluation, checkpoint), without start-up
    epoch_secs: float = 0.0
    epoch_gaps: int = 0
    #: the last `lr` logged (step or epoch), in log order; None once a new attempt starts,
    #: until it logs one
    lr: float | None = None
    #: (name, scope) -> summary; filled by `Index.attach_summaries`
    summaries: dict[tuple[str, str], KeySummary] = field(default_factory=dict)
    #: name -> epoch-level points; filled by `query.attach_curves` for plots
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        """The spec's params, with what the script reported on top."""
        spec_params = self.spec.get("params", {})
        return {**spec_params, **self.logged_params} if self.logged_params else spec_params

    @property
    def best_epoch(self) -> int | None:
        """The epoch of the primary metric's best value (None where it is logged per step)."""
        return self.best_at if self.metric and (self.metric, "epoch") in self.summaries else None

    @property
    def seed(self) -> int | None:
        return self.spec.get("seed")

    @property
    def num_params(self) -> int | None:
        return self.meta.get("num_params")

    def summary(self, name: str) -> KeySummary | None:
        """A metric's summary, epoch scope first."""
        return self.summaries.get((name, "epoch")) or self.summaries.get((name, "step"))

    def metric_names(self) -> list[str]:
        return sorted({n for n, _ in self.summaries})


_COLUMNS = [f for f in RunRow.__dataclass_fields__ if f not in ("summaries", "curves")]
_JSON_COLUMNS = {"meta": dict, "logged_params": dict, "warnings": list, "spec": dict,
                 "checkpoints": list, "tags": list}
#: the long JSON columns: a slim listing reads none of them (tags are short and shown)
_LONG_COLUMNS = set(_JSON_COLUMNS) - {"tags"}


_SELECT = ", ".join(_COLUMNS)  # in RunRow's field order: a row is RunRow(*values)
#: the same with the long columns left out, for a listing that shows none of them
_SELECT_SLIM = ", ".join("NULL" if c in _LONG_COLUMNS else c for c in _COLUMNS)


def _decode(values: tuple[Any, ...]) -> RunRow:
    row = RunRow(*values)
    for c, empty in _JSON_COLUMNS.items():
        raw = getattr(row, c)
        setattr(row, c, json.loads(raw) if raw else empty())
    return row


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


MAX_NAMES = 10_000  # distinct metric names per run; later names are dropped with a warning
MAX_WARNINGS = 50


class Index:
    """A connection to one logs directory's index. Cheap to open; one per thread."""

    def __init__(self, logs: LogsDir, readonly: bool = False):
        self.logs = logs.ensure()
        self.db = sqlite3.connect(logs.index, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout = 30000")
        self._key_ids: dict[tuple[str, int], int] = {}
        self.problems: list[str] = []  # directories the last `rebuild` left out, and why
        if not readonly:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        """Create the tables; an index of another schema version is rebuilt from the run
        directories (it holds nothing they do not), keeping the queue order."""
        with self.tx() as db:
            version = None
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'settings'").fetchone():
                row = db.execute("SELECT value FROM settings WHERE key = 'schema'").fetchone()
                version = row[0] if row else None
            stale = version is not None and version != str(SCHEMA_VERSION)
            queue: dict[str, tuple[float, int]] = {}
            if stale:
                queue = {r[0]: (r[1], r[2]) for r in
                         db.execute("SELECT id, queue_pos, priority FROM runs")}
                for table in (*_TABLES, "epochs", "steps"):
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute("INSERT OR IGNORE INTO settings VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT OR IGNORE INTO settings SELECT 'seq', COALESCE(MAX(seq), 0) FROM runs")
        if stale:
            self.rebuild(queue)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock at once (no upgrade deadlock)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _next_seq(self) -> int:
        """The next change number (inside a write transaction). A counter that only goes
        up: MAX(seq) + 1 would hand a deleted run's number out again, and a reader
        polling `runs(since_seq=...)` would miss the change."""
        self.db.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")
        return int(self.db.execute("SELECT value FROM settings WHERE key = 'seq'").fetchone()[0])

    # -- writes by clients ------------------------------------------------------
    def add_run(self, spec: RunSpec, status: str = "queued") -> None:
        """Index a new run; a row already there (the supervisor found it first) stays."""
        with self.tx() as db:
            self._insert(db, spec, status)

    def _insert(self, db: sqlite3.Connection, spec: RunSpec, status: str, message: str = "",
                num: int | None = None) -> None:
        db.execute(
            "INSERT OR IGNORE INTO runs (num, id, experiment, parent, fork_epoch, created, priority,"
            " queue_pos, status, message, epochs, metric, mode, spec, tags, seq)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (num, spec.id, spec.experiment, spec.parent, spec.fork_epoch, spec.created, spec.priority,
             spec.created, status, message, _total_epochs(spec.params), spec.metric, spec.mode,
             json.dumps(spec.to_json()), _dumps(list(spec.tags)), self._next_seq()),
        )

    def set_status(self, run_id: str, status: str, message: str = "",
                   expect: Iterable[str] | None = None, **cols: Any) -> bool:
        """Set a run's status (and columns); with `expect`, only if its status is one of
        those (a compare-and-set between clients and the supervisor). True if it was set."""
        sets = "".join(f", {k} = ?" for k in cols)
        sql = f"UPDATE runs SET status = ?, message = ?, seq = ?{sets} WHERE id = ?"
        args: list[Any] = [status, message, 0, *cols.values(), run_id]
        if expect is not None:
            expect = list(expect)
            sql += f" AND status IN ({','.join('?' * len(expect))})"
            args += expect
        with self.tx() as db:
            args[2] = self._next_seq()
            return db.execute(sql, args).rowcount == 1

    def move(self, run_id: str, direction: int) -> bool:
        """Swap a queued run with its neighbour in dispatch order (-1 up, +1 down)."""
        with self.tx() as db:
            queue = [(r["id"], r["queue_pos"]) for r in db.execute(
                "SELECT id, queue_pos FROM runs WHERE status = 'queued'"
                " ORDER BY priority DESC, queue_pos, id")]
            ids = [q[0] for q in queue]
            if run_id not in ids:
                return False
            i = ids.index(run_id)
            j = i + direction
            if not 0 <= j < len(ids):
                return False
            (a, pa), (b, pb) = queue[i], queue[j]
            if pa == pb:
                pb = pa + direction * 1e-3
            db.execute("UPDATE runs SET queue_pos = ?, seq = ? WHERE id = ?", (pb, self._next_seq(), a))
            db.execute("UPDATE runs SET queue_pos = ?, seq = ? WHERE id = ?", (pa, self._next_seq(), b))
            return True

    def annotate(self, run_id: str, change: Callable[[], tuple[str, list[str]]]) -> bool:
        """Run `change` (it writes the run directory's annotations file and returns the
        note and tags it now holds) under the index's write lock, and mirror the result
        in the run's row: two clients editing one run's tags take turns here. True if
        the row was there to update."""
        with self.tx() as db:
            note, tags = change()
            return db.execute("UPDATE runs SET note = ?, tags = ?, seq = ? WHERE id = ?",
                              (note, _dumps(tags), self._next_seq(), run_id)).rowcount == 1

    def delete(self, run_id: str) -> None:
        with self.tx() as db:
            self._delete(db, run_id)

    def _delete(self, db: sqlite3.Connection, run_id: str) -> None:
        row = db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return
        for table in ("metrics", "summaries", "confusion"):
            db.execute(f"DELETE FROM {table} WHERE run = ?", (row[0],))
        db.execute("DELETE FROM runs WHERE num = ?", (row[0],))

    def put_setting(self, key: str, value: Any) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def setting(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- ingest (the supervisor) -------------------------------------------------
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
                " lr=?, seq=? WHERE num=?",
                (fold.epoch, fold.step, metric, mode, best, best_at, _dumps(fold.meta),
                 _dumps(fold.logged_params), _dumps(fold.warnings), json.dumps(sorted(fold.checkpoints)),
                 fold.started, fold.time_before, fold.attempt_started, fold.last_event,
                 fold.epoch_secs, fold.epoch_gaps, fold.lr, self._next_seq(), num),
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

    def _key_id(self, name: str, scope: str) -> int:
        code = SCOPE_CODE[scope]
        kid = self._key_ids.get((name, code))
        if kid is None:
            self.db.execute("INSERT OR IGNORE INTO keys (name, scope) VALUES (?, ?)", (name, code))
            kid = self.db.execute("SELECT id FROM keys WHERE name = ? AND scope = ?",
                                  (name, code)).fetchone()[0]
            self._key_ids[(name, code)] = kid
        return kid

    def _summarize(self, db: sqlite3.Connection, num: int, name: str, scope: str) -> KeySummary:
        """A key's summary recomputed from its stored points."""
        ks = KeySummary(name, scope)
        kid = self._key_id(name, scope)
        for x, v in db.execute("SELECT x, value FROM metrics WHERE run = ? AND key = ?"
                               " ORDER BY x", (num, kid)):
            ks.add(x, _nan(v))
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
            db.execute("UPDATE runs SET attempt=?, pid=?, gpu=?, ended=?, note=?, tags=? WHERE id=?",
                       (proc.get("attempt", 0), proc.get("pid"), proc.get("gpu"),
                        (runstore.read_json(paths.exit) or {}).get("ended"), ann.note,
                        _dumps(ann.tags_of(spec.tags)), run_id))
        self.ingest(run_id, paths, Fold(), 0, max_bytes=None)
        return verdict.status

    # -- reads ---------------------------------------------------------------
    def runs(self, status: Iterable[str] | None = None, since_seq: int = 0,
             experiment: Iterable[str] | None = None, slim: bool = False) -> list[RunRow]:
        """Runs oldest first; `slim` leaves spec, meta, params, warnings, checkpoints empty."""
        sql = f"SELECT {_SELECT_SLIM if slim else _SELECT} FROM runs WHERE seq > ?"
        args: list[Any] = [since_seq]
        for column, values in (("status", status), ("experiment", experiment)):
            if values:
                values = list(values)
                sql += f" AND {column} IN ({','.join('?' * len(values))})"
                args += values
        sql += " ORDER BY created, id"
        cur = self.db.cursor()
        cur.row_factory = None  # plain tuples: RunRow(*values)
        with _bulk():
            return [_decode(values) for values in cur.execute(sql, args)]

    def run(self, run_id: str) -> RunRow | None:
        cur = self.db.cursor()
        cur.row_factory = None
        values = cur.execute(f"SELECT {_SELECT} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _decode(values) if values else None

    def ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM runs")}

    def attach_summaries(self, rows: list[RunRow], names: Iterable[str] | None = None) -> list[RunRow]:
        """Fill each row's `summaries` (only `names`, when given) in one query."""
        by_num = {r.num: r for r in rows}
        if not by_num:
            return rows
        sql = ("SELECT s.run, k.name, k.scope, s.count, s.last, s.last_at, s.min, s.min_at,"
               " s.max, s.max_at, s.total FROM summaries s JOIN keys k ON k.id = s.key WHERE 1")
        args: list[Any] = []
        if len(by_num) <= 500:  # else scanning every summary beats a huge IN list
            sql += f" AND s.run IN ({','.join('?' * len(by_num))})"
            args += list(by_num)
        if names is not None:
            names = list(names)
            sql += f" AND k.name IN ({','.join('?' * len(names))})"
            args += names
        scopes = {code: scope for scope, code in SCOPE_CODE.items()}
        with _bulk():
            self._fill_summaries(by_num, scopes, self.db.execute(sql, args))
        return rows

    @staticmethod
    def _fill_summaries(by_num: dict[int, RunRow], scopes: dict[int, str],
                        rows: Iterable[tuple[Any, ...]]) -> None:
        for num, name, code, count, last, last_at, lo, lo_at, hi, hi_at, total in rows:
            row = by_num.get(num)
            if row is not None:
                scope = scopes[code]
                row.summaries[(name, scope)] = KeySummary(
                    name, scope, count, _nan(last) if last_at is not None else None, last_at,
                    lo, lo_at, hi, hi_at, total or 0.0)

    def metric_names(self, scope: str | None = None) -> list[str]:
        """Every metric name any run has logged (at `scope`, when given)."""
        sql = "SELECT DISTINCT name FROM keys WHERE id IN (SELECT DISTINCT key FROM summaries)"
        args: tuple[Any, ...] = ()
        if scope:
            sql += " AND scope = ?"
            args = (SCOPE_CODE[scope],)
        return sorted(r[0] for r in self.db.execute(sql + " ORDER BY name", args))

    def points(self, num: int, name: str, scope: str, after: int = -1,
               limit: int = 1_000_000) -> list[tuple[int, float]]:
        """(x, value) of one metric after x = `after`, ascending; NaN where NaN was logged."""
        kid = self._known_key(name, scope)
        if kid is None:
            return []
        return [(x, _nan(v)) for x, v in self.db.execute(
            "SELECT x, value FROM metrics WHERE run = ? AND key = ? AND x > ? ORDER BY x LIMIT ?",
            (num, kid, after, limit))]

    def curves(self, nums: list[int], names: list[str], scope: str = "epoch"
               ) -> dict[int, dict[str, list[tuple[int, float]]]]:
        """Every point of `names` at `scope` for the runs `nums`: {run: {name: [(x, v)]}}."""
        out: dict[int, dict[str, list[tuple[int, float]]]] = {n: {} for n in nums}
        kids = {k: name for name in names if (k := self._known_key(name, scope)) is not None}
        if not kids or not nums:
            return out
        sql = (f"SELECT run, key, x, value FROM metrics WHERE key IN ({','.join('?' * len(kids))})"
               " ORDER BY run, key, x")
        for run, key, x, v in self.db.execute(sql, list(kids)):
            if run in out:
                out[run].setdefault(kids[key], []).append((x, _nan(v)))
        return out

    def buckets(self, num: int, name: str, scope: str, size: int) -> Buckets:
        """One metric as at most `size` min/max buckets, aggregated by SQLite (one range
        scan), the same buckets a live `Buckets` fed point by point would hold."""
        kid = self._known_key(name, scope)
        if kid is None:
            return Buckets(size)
        lo, hi = self.db.execute(f"SELECT MIN(x), MAX(x) FROM metrics WHERE run = ? AND key = ?"
                                 f" AND {_FINITE}", (num, kid)).fetchone()
        if lo is None:
            return Buckets(size)
        width = width_for(lo, hi, size)
        rows = self.db.execute(
            f"WITH g AS (SELECT x / ? AS b, MAX(x) AS xm, MIN(value) AS lo, MAX(value) AS hi"
            f" FROM metrics WHERE run = ? AND key = ? AND {_FINITE} GROUP BY b)"
            " SELECT g.xm, g.lo, g.hi, m.value FROM g JOIN metrics m"
            " ON m.run = ? AND m.key = ? AND m.x = g.xm ORDER BY g.xm",
            (width, num, kid, num, kid)).fetchall()
        return Buckets.of(rows, size, width)

    def _known_key(self, name: str, scope: str) -> int | None:
        code = SCOPE_CODE[scope]
        kid = self._key_ids.get((name, code))
        if kid is None:
            row = self.db.execute("SELECT id FROM keys WHERE name = ? AND scope = ?",
                                  (name, code)).fetchone()
            if row is None:
                return None
            kid = self._key_ids[(name, code)] = row[0]
        return kid

    def find(self, prefix: str) -> list[str]:
        """Run ids equal to, or starting with, or ending with `prefix`."""
        exact = self.db.execute("SELECT id FROM runs WHERE id = ?", (prefix,)).fetchall()
        if exact:
            return [prefix]
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.execute(
            "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' ORDER BY id",
            (like + "%", "%" + like)).fetchall()
        return [r[0] for r in rows]

    def children(self, run_id: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM runs WHERE parent = ? ORDER BY created", (run_id,))]

    def queued_ids(self) -> list[tuple[str, int]]:
        """(id, attempt) of queued runs in dispatch order, without decoding their specs."""
        return self.db.execute("SELECT id, attempt FROM runs WHERE status = 'queued'"
                               " ORDER BY priority DESC, queue_pos, id").fetchall()

    def max_seq(self) -> int:
        seq: int = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM runs").fetchone()[0]
        return seq

    def confusion(self, run_id: str, epoch: int | None = None) -> dict[str, Any] | None:
        base = "SELECT c.data FROM confusion c JOIN runs r ON r.num = c.run WHERE r.id = ?"
        if epoch is None:
            row = self.db.execute(base + " ORDER BY c.epoch DESC LIMIT 1", (run_id,)).fetchone()
        else:
            row = self.db.execute(base + " AND c.epoch = ?", (run_id, epoch)).fetchone()
        return json.loads(row[0]) if row else None

    def confusion_epochs(self, run_id: str) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT c.epoch FROM confusion c JOIN runs r ON r.num = c.run WHERE r.id = ?"
            " ORDER BY c.epoch", (run_id,))]

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT status, COUNT(*) FROM runs GROUP BY status")}


@contextmanager
def _bulk() -> Iterator[None]:
    """No cyclic GC while thousands of acyclic rows are built: its passes, triggered by
    the allocations alone, cost more than building the rows (4x on 10,000 runs)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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


def _nan(v: float | None) -> float:
    """SQLite stores NaN as NULL: a stored point that is NULL was logged as NaN."""
    return math.nan if v is None else v


def _dumps(obj: Any) -> str | None:
    """JSON for a column; NaN and non-JSON values become strings rather than failing ingest."""
    return json.dumps(obj, default=str) if obj else None


def _total_epochs(params: dict[str, Any]) -> int | None:
    e = params.get("epochs")
    return e if isinstance(e, int) and not isinstance(e, bool) else None
