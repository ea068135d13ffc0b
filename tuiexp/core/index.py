"""The SQLite index (WAL): the queue, and what the UI and CLI query.

Only clients (enqueue, cancel, reorder) and the supervisor (ingest, status)
write it; run processes never open it. Everything in it can be rebuilt from
the run directories (`rebuild`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import events, runstore
from .paths import LogsDir, RunPaths
from .records import Summary
from .spec import RunSpec

SCHEMA_VERSION = 1
ACTIVE = ("queued", "starting", "running")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    parent TEXT,
    fork_epoch INTEGER,
    created REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    queue_pos REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    epoch INTEGER,
    epochs INTEGER,
    step INTEGER,
    best_val_acc REAL,
    best_epoch INTEGER,
    last_epoch TEXT,
    last_step TEXT,
    meta TEXT,
    checkpoints TEXT,
    started REAL,
    ended REAL,
    gpu TEXT,
    pid INTEGER,
    attempt INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, priority, queue_pos);
CREATE INDEX IF NOT EXISTS runs_seq ON runs(seq);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, t REAL, data TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, t REAL, train_loss REAL, lr REAL,
    PRIMARY KEY (run_id, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS confusion (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class RunRow:
    """One row of the runs table, decoded."""

    id: str
    experiment: str
    parent: str | None
    fork_epoch: int | None
    created: float
    priority: int
    queue_pos: float
    status: str
    message: str
    epoch: int | None
    epochs: int | None
    step: int | None
    best_val_acc: float | None
    best_epoch: int | None
    last_epoch: dict[str, Any]
    last_step: dict[str, Any]
    meta: dict[str, Any]
    checkpoints: list[int]
    started: float | None
    ended: float | None
    gpu: str | None
    pid: int | None
    attempt: int
    spec: dict[str, Any]
    seq: int

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.get("params", {})


_COLUMNS = [f for f in RunRow.__dataclass_fields__]
_JSON_COLUMNS = {"last_epoch", "last_step", "meta", "spec", "checkpoints"}


def _decode(row: sqlite3.Row) -> RunRow:
    d = {k: row[k] for k in _COLUMNS}
    for k in _JSON_COLUMNS:
        d[k] = json.loads(d[k]) if d[k] else ({} if k != "checkpoints" else [])
    return RunRow(**d)


class Index:
    """A connection to one logs directory's index. Cheap to open; one per thread."""

    def __init__(self, logs: LogsDir, readonly: bool = False):
        self.logs = logs.ensure()
        self.db = sqlite3.connect(logs.index, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            with self.tx():
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute("INSERT OR IGNORE INTO settings VALUES ('schema', ?)",
                                (str(SCHEMA_VERSION),))
                self.db.execute("INSERT OR IGNORE INTO settings SELECT 'seq', COALESCE(MAX(seq), 0)"
                                " FROM runs")

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
            self._insert(db, spec, status, replace=False)

    def _insert(self, db: sqlite3.Connection, spec: RunSpec, status: str, message: str = "",
                replace: bool = True) -> None:
        db.execute(
            f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO runs (id, experiment, parent, fork_epoch, created, priority,"
            " queue_pos, status, message, epochs, spec, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (spec.id, spec.experiment, spec.parent, spec.fork_epoch, spec.created, spec.priority,
             spec.created, status, message, _total_epochs(spec.params),
             json.dumps(spec.to_json()), self._next_seq()),
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

    def delete(self, run_id: str) -> None:
        with self.tx() as db:
            for table in ("epochs", "steps", "confusion"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def put_setting(self, key: str, value: Any) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def setting(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- ingest (the supervisor) -------------------------------------------------
    def ingest(self, run_id: str, paths: RunPaths, summary: Summary, offset: int,
               max_bytes: int | None = 16 << 20) -> tuple[int, int]:
        """Fold the events after `offset` into the index; returns (new offset, events read).

        Rows are keyed by (run, step) and (run, epoch): reading a log again after a
        crash or a restart (the supervisor keeps offsets in memory) doubles nothing."""
        chunk = events.read_from(paths.events, offset, max_bytes)
        if not chunk.events:
            return chunk.offset, 0
        steps, epochs, confusions = [], [], []
        for ev in chunk.events:
            summary.add(ev)
            kind = ev.get("kind")
            if kind == "step":
                if type(step := ev.get("step")) is int:
                    steps.append((run_id, step, ev.get("t"), _num(ev.get("train_loss")),
                                  _num(ev.get("lr"))))
            elif kind == "epoch" and isinstance(ev.get("epoch"), int):
                epochs.append((run_id, ev["epoch"], ev.get("t"), json.dumps(ev)))
            elif kind == "confusion" and isinstance(ev.get("epoch"), int):
                confusions.append((run_id, ev["epoch"], json.dumps(ev)))
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?)", steps)
            db.executemany("INSERT OR REPLACE INTO epochs VALUES (?,?,?,?)", epochs)
            db.executemany("INSERT OR REPLACE INTO confusion VALUES (?,?,?)", confusions)
            db.execute(
                "UPDATE runs SET epoch=?, step=?, best_val_acc=?, best_epoch=?, last_epoch=?,"
                " last_step=?, meta=?, checkpoints=?, started=COALESCE(started, ?),"
                " seq=? WHERE id=?",
                (summary.epoch, summary.step, summary.best_val_acc, summary.best_epoch,
                 json.dumps(summary.last_epoch), json.dumps(summary.last_step),
                 json.dumps(summary.meta), json.dumps(sorted(summary.checkpoints)),
                 summary.started, self._next_seq(), run_id),
            )
        return chunk.offset, len(chunk.events)

    def rebuild(self) -> int:
        """Rebuild the whole index from the run directories; returns the run count."""
        ids = runstore.run_ids(self.logs)
        with self.tx() as db:
            queue = {r["id"]: (r["queue_pos"], r["priority"]) for r in
                     db.execute("SELECT id, queue_pos, priority FROM runs")}
            for table in ("runs", "epochs", "steps", "confusion"):
                db.execute(f"DELETE FROM {table}")
        for rid in ids:
            self.reindex_run(rid, queue.get(rid))
        return len(ids)

    def reindex_run(self, run_id: str, queue: tuple[float, int] | None = None) -> str:
        paths = self.logs.run(run_id)
        spec = runstore.load_spec(paths)
        evs = events.read_all(paths.events)
        verdict = runstore.derive_status(paths, runstore.last_status(evs))
        proc = runstore.read_json(paths.proc) or {}
        with self.tx() as db:
            db.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM confusion WHERE run_id = ?", (run_id,))
            self._insert(db, spec, verdict.status, verdict.message)
            if queue:
                db.execute("UPDATE runs SET queue_pos=?, priority=? WHERE id=?", (*queue, run_id))
            db.execute("UPDATE runs SET attempt=?, pid=?, gpu=?, ended=? WHERE id=?",
                       (proc.get("attempt", 0), proc.get("pid"), proc.get("gpu"),
                        (runstore.read_json(paths.exit) or {}).get("ended"), run_id))
        self.ingest(run_id, paths, Summary(), 0, max_bytes=None)
        return verdict.status

    # -- reads ---------------------------------------------------------------
    def runs(self, status: Iterable[str] | None = None, since_seq: int = 0,
             experiment: Iterable[str] | None = None) -> list[RunRow]:
        sql, args = "SELECT * FROM runs WHERE seq > ?", [since_seq]
        for column, values in (("status", status), ("experiment", experiment)):
            if values:
                values = list(values)
                sql += f" AND {column} IN ({','.join('?' * len(values))})"
                args += values
        sql += " ORDER BY created, id"
        return [_decode(r) for r in self.db.execute(sql, args)]

    def listing(self, status: Iterable[str] | None = None,
                experiment: Iterable[str] | None = None) -> list[tuple[Any, ...]]:
        """What `tuiexp ls` prints, without decoding every run's JSON in Python:
        (id, status, epoch, epochs, val_acc, best_val_acc, parent, fork_epoch)."""
        # json_valid: a diverged run's NaN is valid to Python's json, not to SQLite's
        sql = ("SELECT id, status, epoch, epochs, CASE WHEN json_valid(last_epoch) THEN"
               " json_extract(last_epoch, '$.val_acc') END,"
               " best_val_acc, parent, fork_epoch FROM runs WHERE 1")
        args: list[Any] = []
        for column, values in (("status", status), ("experiment", experiment)):
            if values:
                values = list(values)
                sql += f" AND {column} IN ({','.join('?' * len(values))})"
                args += values
        return self.db.execute(sql + " ORDER BY created, id", args).fetchall()

    def run(self, run_id: str) -> RunRow | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _decode(row) if row else None

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
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM runs").fetchone()[0]

    def epochs(self, run_id: str, after: int = -1) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.db.execute(
            "SELECT data FROM epochs WHERE run_id = ? AND epoch > ? ORDER BY epoch",
            (run_id, after))]

    def steps(self, run_id: str, after: int = -1, limit: int = 1_000_000) -> list[tuple[int, float | None, float | None]]:
        return [tuple(r) for r in self.db.execute(
            "SELECT step, train_loss, lr FROM steps WHERE run_id = ? AND step > ?"
            " ORDER BY step LIMIT ?", (run_id, after, limit))]

    def confusion(self, run_id: str, epoch: int | None = None) -> dict[str, Any] | None:
        if epoch is None:
            row = self.db.execute("SELECT data FROM confusion WHERE run_id = ?"
                                  " ORDER BY epoch DESC LIMIT 1", (run_id,)).fetchone()
        else:
            row = self.db.execute("SELECT data FROM confusion WHERE run_id = ? AND epoch = ?",
                                  (run_id, epoch)).fetchone()
        return json.loads(row[0]) if row else None

    def confusion_epochs(self, run_id: str) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT epoch FROM confusion WHERE run_id = ? ORDER BY epoch", (run_id,))]

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT status, COUNT(*) FROM runs GROUP BY status")}


def _num(x: Any) -> float | None:
    return x if type(x) is float else float(x) if type(x) is int else None


def _total_epochs(params: dict[str, Any]) -> int | None:
    e = params.get("epochs")
    return e if isinstance(e, int) else None
