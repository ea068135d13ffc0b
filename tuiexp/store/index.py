"""The SQLite index (WAL): the queue, and what the UI and CLI query.

Only clients (enqueue, cancel, reorder) and the supervisor (ingest, status)
write it; run processes never open it. Everything in it can be rebuilt from
the run directories (`rebuild`). The tables: tuiexp/store/schema.py; folding
events in: tuiexp/store/ingest.py.
"""

from __future__ import annotations

import gc
import json
import math
import sqlite3
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .ingest import Indexer
from .metrics import KeySummary
from .schema import SCOPE_CODE, dumps, loads, nan_of
from .series import Buckets, Chunk, bucketize
from .spec import RunSpec

ACTIVE = ("queued", "starting", "running")


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
    #: events the run could not write (a full disk): its message says so too
    dropped: int = 0
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
    #: when this attempt's current epoch began (its previous epoch's first event, else the
    #: attempt's start): the ETA counts down from it
    epoch_at: float | None = None
    #: a Slurm job's id, the node it runs on, why it pends (squeue's reason; '' when none)
    job_id: str | None = None
    node: str | None = None
    reason: str = ""
    #: (name, scope) -> summary; filled by `Index.attach_summaries`
    summaries: dict[tuple[str, str], KeySummary] = field(default_factory=dict)
    #: name -> points (per epoch, or per step for a metric logged only per step); filled
    #: by `query.attach_curves` for plots
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
    def best_step(self) -> int | None:
        """The step of the primary metric's best value, where it is logged per step only
        (ingest's rule: an epoch-level series, when there is one, decides `best_at`)."""
        if not self.metric or (self.metric, "epoch") in self.summaries:
            return None
        return self.best_at if (self.metric, "step") in self.summaries else None

    @property
    def seed(self) -> int | None:
        """The spec's seed, else an integer `seed` param (a script run by hand names its
        seed only among its params)."""
        seed = self.spec.get("seed")
        if seed is None:
            seed = self.spec.get("params", {}).get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

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


#: the long JSON columns: a slim listing reads none of them (tags and warnings are short,
#: at most a few sentences, and shown)
_LONG_COLUMNS = set(_JSON_COLUMNS) - {"tags", "warnings"}


_SELECT = ", ".join(_COLUMNS)  # in RunRow's field order: a row is RunRow(*values)


#: the same with the long columns left out, for a listing that shows none of them
_SELECT_SLIM = ", ".join("NULL" if c in _LONG_COLUMNS else c for c in _COLUMNS)


def _decode(values: tuple[Any, ...]) -> RunRow:
    row = RunRow(*values)
    for c, empty in _JSON_COLUMNS.items():
        raw = getattr(row, c)
        setattr(row, c, loads(raw) if raw else empty())
    return row


class Index(Indexer):
    """The index as clients and the supervisor use it: the queue's writes, and reads."""

    def add_run(self, spec: RunSpec, status: str = "queued") -> None:
        """Index a new run; a row already there (the supervisor found it first) stays."""
        with self.tx() as db:
            self._insert(db, spec, status)

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
                              (note, dumps(tags), self._next_seq(), run_id)).rowcount == 1

    def delete(self, run_id: str) -> None:
        with self.tx() as db:
            self._delete(db, run_id)

    def put_setting(self, key: str, value: Any) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def setting(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def runs(self, status: Iterable[str] | None = None, since_seq: int = 0,
             experiment: Iterable[str] | None = None, slim: bool = False) -> list[RunRow]:
        """Runs oldest first; `slim` leaves spec, meta, params, checkpoints empty."""
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

    def _tuples(self) -> sqlite3.Cursor:
        """A cursor giving plain tuples (sqlite3.Row costs 3x as much on big results)."""
        cur = self.db.cursor()
        cur.row_factory = None
        return cur

    def run(self, run_id: str) -> RunRow | None:
        cur = self.db.cursor()
        cur.row_factory = None
        values = cur.execute(f"SELECT {_SELECT} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _decode(values) if values else None

    def ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM runs")}

    def live_ids(self) -> list[tuple[str, int]]:
        """(id, attempt) of the runs starting or running, without decoding their rows."""
        return self.db.execute("SELECT id, attempt FROM runs"
                               " WHERE status IN ('starting', 'running')").fetchall()

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
            self._fill_summaries(by_num, scopes, self._tuples().execute(sql, args))
        return rows

    @staticmethod
    def _fill_summaries(by_num: dict[int, RunRow], scopes: dict[int, str],
                        rows: Iterable[tuple[Any, ...]]) -> None:
        for num, name, code, count, last, last_at, lo, lo_at, hi, hi_at, total in rows:
            row = by_num.get(num)
            if row is not None:
                scope = scopes[code]
                row.summaries[(name, scope)] = KeySummary(
                    name, scope, count, nan_of(last) if last_at is not None else None, last_at,
                    lo, lo_at, hi, hi_at, total or 0.0)

    def summary_column(self, name: str, field: str) -> dict[int, Any]:
        """{run number: a field of `name`'s summary} (last, min or max) for every run that
        logged it, epoch level first as `RunRow.summary` has it: a listing's metric column
        for thousands of runs, without building summaries (dicts made in C)."""
        assert field in ("last", "min", "max")
        value = "IIF(last IS NULL, 'NaN', last)" if field == "last" else field  # NaN is NULL
        out: dict[int, Any] = {}
        cur = self._tuples()
        for scope in ("step", "epoch"):  # the epoch level overwrites
            kid = self._known_key(name, scope)
            if kid is not None:
                out.update(cur.execute(f"SELECT run, {value} FROM summaries WHERE key = ?"
                                       " AND count > 0", (kid,)))
        if field == "last" and "NaN" in out.values():
            out = {k: math.nan if v == "NaN" else v for k, v in out.items()}
        return out

    def metric_names(self, scope: str | None = None) -> list[str]:
        """Every metric name any run has logged (at `scope`, when given)."""
        # (a key's summaries are one range of their primary key: a lookup per key, no scan)
        sql = ("SELECT DISTINCT name FROM keys k WHERE EXISTS"
               " (SELECT 1 FROM summaries s WHERE s.key = k.id)")
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
        out: list[tuple[int, float]] = []
        for row in self._tuples().execute("SELECT x0, n, dx, xs, vs FROM series WHERE run = ?"
                                   " AND key = ? AND x1 > ? ORDER BY x0", (num, kid, after)):
            c = Chunk.of_row(*row)
            start = bisect_right(c.xs, after)
            out += zip(c.xs[start:], c.vs[start:], strict=True)
            if len(out) >= limit:
                return out[:limit]
        return out

    def curves(self, nums: list[int], names: list[str], scope: str = "epoch", width: int = 1
               ) -> dict[int, dict[str, list[tuple[int, float]]]]:
        """Every point of `names` at `scope` for the runs `nums`: {run: {name: [(x, v)]}};
        with `width` > 1, one point per window [i·width, (i+1)·width): its first x and the
        mean of its finite values."""
        out: dict[int, dict[str, list[tuple[int, float]]]] = {n: {} for n in nums}
        kids = {k: name for name in names if (k := self._known_key(name, scope)) is not None}
        if not kids or not nums:
            return out
        sql = (f"SELECT run, key, x0, n, dx, xs, vs FROM series WHERE key IN"
               f" ({','.join('?' * len(kids))})")
        args: list[Any] = list(kids)
        if len(nums) <= 500:  # else scanning the keys' chunks beats a huge IN list
            sql += f" AND run IN ({','.join('?' * len(nums))})"
            args += nums
        for run, key, *row in self._tuples().execute(sql + " ORDER BY run, key, x0", args):
            if run in out:
                c = Chunk.of_row(*row)
                out[run].setdefault(kids[key], []).extend(zip(c.xs, c.vs, strict=True))
        if width > 1:
            for series in out.values():
                for name, points in series.items():
                    series[name] = windowed(points, width)
        return out

    def buckets(self, num: int, name: str, scope: str, size: int) -> Buckets:
        """One metric as at most `size` min/max buckets, the same buckets a live
        `Buckets` fed point by point would hold (series.bucketize over its chunks)."""
        kid = self._known_key(name, scope)
        if kid is None:
            return Buckets(size)
        xs: list[int] = []
        vs: list[float] = []
        for row in self._tuples().execute("SELECT x0, n, dx, xs, vs FROM series WHERE run = ?"
                                          " AND key = ? ORDER BY x0", (num, kid)):
            c = Chunk.of_row(*row)
            xs += c.xs
            vs += c.vs
        return bucketize(xs, vs, size)

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


def windowed(points: list[tuple[int, float]], width: int) -> list[tuple[int, float]]:
    """One point per window [i·width, (i+1)·width) of sorted points: its start and the
    mean of its finite values (a window of none is left out)."""
    out: list[tuple[int, float]] = []
    window, total, count = -1, 0.0, 0
    for x, v in points:
        if x // width != window:
            if count:
                out.append((window * width, total / count))
            window, total, count = x // width, 0.0, 0
        if math.isfinite(v):
            total, count = total + v, count + 1
    if count:
        out.append((window * width, total / count))
    return out
