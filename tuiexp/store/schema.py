"""The index's tables and the connection that keeps them: opening, migrating (an index of
another schema version is dropped, to be rebuilt from the run directories), write
transactions, the change counter, metric key ids, and a run's row going in or out.
tuiexp/store/ingest.py folds events in; tuiexp/store/index.py is what clients use."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson

from . import health
from .paths import LogsDir
from .spec import RunSpec

#: 4: note and tags (store/notes.py); 5: the clock across attempts, the current LR;
#: 6: when the current epoch began (a countdown ETA), a Slurm job's id, node, pending reason;
#: 7: events a run could not write (`dropped`, from its final record); 8: points in chunks
#: (`series`), the fold of each run's log kept with its row
SCHEMA_VERSION = 8


SCOPE_CODE = {"epoch": 0, "step": 1}


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
    dropped INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    time_before REAL NOT NULL DEFAULT 0,
    attempt_started REAL,
    last_event REAL,
    epoch_secs REAL NOT NULL DEFAULT 0,
    epoch_gaps INTEGER NOT NULL DEFAULT 0,
    lr REAL,
    epoch_at REAL,
    job_id TEXT,
    node TEXT,
    reason TEXT NOT NULL DEFAULT '',
    ingested INTEGER NOT NULL DEFAULT 0,  -- bytes of events.jsonl folded in
    -- the long columns last: a listing that reads none of them skips their pages
    message TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    tags TEXT,
    meta TEXT,
    logged_params TEXT,
    warnings TEXT,
    checkpoints TEXT,
    fold TEXT,  -- the rest of the fold (store/ingest.py:Fold.state): a reader goes on from it
    spec TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, priority, queue_pos);
CREATE INDEX IF NOT EXISTS runs_seq ON runs(seq);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, scope INTEGER NOT NULL, UNIQUE (name, scope));
-- a metric's points in chunks of consecutive x: xs are x0, x0 + dx, ... (dx NULL: the
-- int64 array `xs`), the values a float64 array (store/series.py:Chunk): rows of up to
-- 500 points fill a page each, so a point costs its 8 bytes and little more
CREATE TABLE IF NOT EXISTS series (
    run INTEGER NOT NULL, key INTEGER NOT NULL, x0 INTEGER NOT NULL, x1 INTEGER NOT NULL,
    n INTEGER NOT NULL, dx INTEGER, xs BLOB, vs BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS series_at ON series(run, key, x0);
-- keyed by metric first: a listing's column (one metric, every run) is one range
CREATE TABLE IF NOT EXISTS summaries (
    run INTEGER NOT NULL, key INTEGER NOT NULL, count INTEGER NOT NULL, last REAL,
    last_at INTEGER, min REAL, min_at INTEGER, max REAL, max_at INTEGER, total REAL,
    PRIMARY KEY (key, run)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS summaries_run ON summaries(run);
CREATE TABLE IF NOT EXISTS confusion (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (run, epoch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


TABLES = ("runs", "keys", "series", "summaries", "confusion", "settings")
OLD_TABLES = ("epochs", "steps", "metrics")  # of earlier schemas

D = TypeVar("D", bound="Database")


class Database:
    """A connection to one logs directory's index. Cheap to open; one per thread."""

    def __init__(self, logs: LogsDir, readonly: bool = False):
        self.logs = logs.ensure()
        self.readonly = readonly
        self.problems: list[str] = []  # directories the last `rebuild` left out, and why
        self._open()

    def _open(self) -> None:
        """Connect; a damaged file (SQLite's CORRUPT or NOTADB) is moved aside and a
        fresh one made, which the caller rebuilds (`stale_queue`)."""
        self.logs.ensure()  # (a deleted file is made again with the file-mode policy)
        try:
            self._connect()
        except sqlite3.DatabaseError as e:
            if self.readonly or not health.corrupt(e):
                raise
            if hasattr(self, "db"):
                self.db.close()
            health.quarantine(self.logs, str(e))
            self._connect()

    def _connect(self) -> None:
        self._key_ids: dict[tuple[str, int], int] = {}
        #: the queue order of an index that must be rebuilt from the run directories
        #: (another schema version, dropped at open, or a new file); None: it is current
        self.stale_queue: dict[str, tuple[float, int]] | None = None
        self.db = sqlite3.connect(self.logs.index, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout = 30000")
        if not self.readonly:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._ensure_schema()
        #: the file this connection reads: (device, inode); `replaced` compares
        self.identity = health.identity(self.logs.index)

    def replaced(self) -> bool:
        """Whether `index.sqlite` is no longer the file this connection opened (deleted,
        moved aside, restored from a copy): one stat, cheap enough for every tick."""
        return health.identity(self.logs.index) != self.identity

    def _ensure_schema(self) -> None:
        """Create the tables; an index of another schema version is dropped, keeping its
        queue order in `stale_queue` (it holds nothing the run directories do not), and a
        new file is marked for rebuilding from the run directories too."""
        with self.tx() as db:
            version = None
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'settings'").fetchone():
                row = db.execute("SELECT value FROM settings WHERE key = 'schema'").fetchone()
                version = row[0] if row else None
            fresh = version is None
            stale = version is not None and version != str(SCHEMA_VERSION)
            queue: dict[str, tuple[float, int]] = {}
            if stale:
                queue = {r[0]: (r[1], r[2]) for r in
                         db.execute("SELECT id, queue_pos, priority FROM runs")}
                for table in (*TABLES, *OLD_TABLES):
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute("INSERT OR IGNORE INTO settings VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT OR IGNORE INTO settings SELECT 'seq', COALESCE(MAX(seq), 0) FROM runs")
        if stale or fresh:
            self.stale_queue = queue

    def close(self) -> None:
        self.db.close()

    def __enter__(self: D) -> D:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock at once (no upgrade deadlock);
        inside another, a savepoint (what fails in it is undone, the outer one goes on)."""
        if self.db.in_transaction:
            self.db.execute("SAVEPOINT tx")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK TO tx")
                self.db.execute("RELEASE tx")
                raise
            self.db.execute("RELEASE tx")
            return
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

    def _insert(self, db: sqlite3.Connection, spec: RunSpec, status: str, message: str = "",
                num: int | None = None) -> None:
        db.execute(
            "INSERT OR IGNORE INTO runs (num, id, experiment, parent, fork_epoch, created, priority,"
            " queue_pos, status, message, epochs, metric, mode, spec, tags, seq)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (num, spec.id, spec.experiment, spec.parent, spec.fork_epoch, spec.created, spec.priority,
             spec.created, status, message, total_epochs(spec.params), spec.metric, spec.mode,
             json.dumps(spec.to_json()), dumps(list(spec.tags)), self._next_seq()),
        )

    def _delete(self, db: sqlite3.Connection, run_id: str) -> None:
        row = db.execute("SELECT num FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return
        for table in ("series", "summaries", "confusion"):
            db.execute(f"DELETE FROM {table} WHERE run = ?", (row[0],))
        db.execute("DELETE FROM runs WHERE num = ?", (row[0],))

    def _key_id(self, name: str, scope: str) -> int:
        code = SCOPE_CODE[scope]
        kid = self._key_ids.get((name, code))
        if kid is None:
            self.db.execute("INSERT OR IGNORE INTO keys (name, scope) VALUES (?, ?)", (name, code))
            kid = self.db.execute("SELECT id FROM keys WHERE name = ? AND scope = ?",
                                  (name, code)).fetchone()[0]
            self._key_ids[(name, code)] = kid
        return kid

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


def nan_of(v: float | None) -> float:
    """SQLite stores NaN as NULL: a stored point that is NULL was logged as NaN."""
    return math.nan if v is None else v


def dumps(obj: Any) -> str | None:
    """JSON for a column; NaN and non-JSON values become strings rather than failing ingest."""
    return json.dumps(obj, default=str) if obj else None


def loads(text: str) -> Any:
    """A JSON column back: orjson (a listing of 10,000 runs decodes 20,000 of them), the
    stdlib where the text holds what only it reads (`dumps` writes NaN as json.dumps does)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def total_epochs(params: dict[str, Any]) -> int | None:
    e = params.get("epochs")
    return e if isinstance(e, int) and not isinstance(e, bool) else None
