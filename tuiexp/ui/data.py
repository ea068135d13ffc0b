"""The dashboard's data layer: incremental reads of the index into bounded series.

Nothing here imports Textual; the `Poller` runs in a worker thread (it owns its
own `Index` connection) and returns `Delta`s the UI applies.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core import daemon, gpu
from ..core.index import ACTIVE, Index, RunRow
from ..core.paths import LogsDir

SPARK = "▁▂▃▄▅▆▇█"


class Buckets:
    """A bounded, downsampled series: at most `size` (x, min, max, last) buckets.

    When full, neighbouring buckets merge pairwise and each later bucket spans
    twice as many points, so memory is O(size) whatever the run length."""

    def __init__(self, size: int = 64):
        self.size = size
        self.span = 1  # points per bucket
        self.items: list[list[float]] = []  # [x, lo, hi, last, n]

    def add(self, x: float, y: float | None) -> None:
        if y is None or not math.isfinite(y):
            return
        if self.items and self.items[-1][4] < self.span:
            b = self.items[-1]
            b[0], b[1], b[2], b[3], b[4] = x, min(b[1], y), max(b[2], y), y, b[4] + 1
            return
        if len(self.items) >= self.size:
            self._halve()
            return self.add(x, y)
        self.items.append([x, y, y, y, 1])

    def extend(self, points: Iterable[tuple[float, float | None]]) -> None:
        for x, y in points:
            self.add(x, y)

    def _halve(self) -> None:
        merged = []
        for a, b in zip(self.items[::2], self.items[1::2], strict=False):
            merged.append([b[0], min(a[1], b[1]), max(a[2], b[2]), b[3], a[4] + b[4]])
        if len(self.items) % 2:
            merged.append(self.items[-1])
        self.items, self.span = merged, self.span * 2

    def values(self) -> list[float]:
        return [b[3] for b in self.items]


def sparkline(values: list[float], width: int = 12) -> str:
    """Unicode block sparkline of the last values, resampled to `width` cells."""
    if not values:
        return " " * width
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int((i + 1) * step) - 1)] for i in range(width)]
    lo, hi = min(values), max(values)
    scale = (len(SPARK) - 1) / (hi - lo) if hi > lo else 0
    return "".join(SPARK[round((v - lo) * scale)] for v in values).ljust(width)


def bar(done: float, width: int = 8) -> str:
    done = max(0.0, min(1.0, done))
    full = int(done * width)
    return "█" * full + "░" * (width - full)


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or not math.isfinite(seconds):
        return ""
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}h{s % 3600 // 60:02d}"


def fmt_num(v: Any, spec: str = ".3g") -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v).lower()
    if isinstance(v, (int, float)):
        return format(v, spec)
    return str(v)


# -- one run's state ---------------------------------------------------------------


@dataclass
class RunState:
    """A run's row plus its bounded series, kept by the poller."""

    row: RunRow
    loss: Buckets = field(default_factory=lambda: Buckets(48))
    acc: Buckets = field(default_factory=lambda: Buckets(48))
    last_step: int = -1
    last_epoch: int = -1
    backfilled: bool = False

    @property
    def id(self) -> str:
        return self.row.id


def elapsed(row: RunRow, now: float) -> float | None:
    if not row.started:
        return None
    return (row.ended or now) - row.started


def eta(row: RunRow, now: float) -> float | None:
    if row.status != "running" or not row.epochs or not row.epoch:
        return None
    base = row.fork_epoch or 0
    done, total = row.epoch - base, row.epochs - base
    spent = elapsed(row, now)
    if done <= 0 or spent is None:
        return None
    return spent / done * (total - done)


def lr_of(row: RunRow) -> Any:
    return row.last_step.get("lr", row.last_epoch.get("lr"))


def epochs_done(row: RunRow) -> int:
    """Epochs behind the run: a fork that has not logged yet starts from its fork epoch."""
    return row.epoch if row.epoch is not None else row.fork_epoch or 0


def progress(row: RunRow) -> float:
    return epochs_done(row) / row.epochs if row.epochs else 0.0


# -- the table model ---------------------------------------------------------------

SORTS: dict[str, Callable[[RunRow], Any]] = {
    "created": lambda r: r.created,
    "id": lambda r: r.id,
    "experiment": lambda r: (r.experiment, r.created),
    "status": lambda r: (r.status, r.created),
    "best": lambda r: -(r.best_val_acc if r.best_val_acc is not None else -1),
    "epoch": lambda r: -progress(r),
}


def visible_order(rows: dict[str, RunRow], text: str = "", sort: str = "created",
                  tree: bool = True) -> list[tuple[str, int]]:
    """(run id, depth) in display order: filtered, sorted, forks under their parent."""
    needle = text.lower().strip()
    shown = {rid: r for rid, r in rows.items()
             if not needle or needle in f"{r.id} {r.experiment} {r.status}".lower()}
    key = SORTS.get(sort, SORTS["created"])
    if not tree:
        return [(r.id, 0) for r in sorted(shown.values(), key=key)]
    kids: dict[str, list[RunRow]] = {}
    roots = []
    for r in shown.values():
        if r.parent and r.parent in shown:
            kids.setdefault(r.parent, []).append(r)
        else:
            roots.append(r)
    out: list[tuple[str, int]] = []

    def walk(r: RunRow, depth: int) -> None:
        out.append((r.id, depth))
        for child in sorted(kids.get(r.id, ()), key=lambda c: (c.created, c.id)):
            if len(out) < len(shown):
                walk(child, depth + 1)

    for r in sorted(roots, key=key):
        walk(r, 0)
    return out


# -- the strip at the top ----------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    gpus: tuple[tuple[str, int, int, int, tuple[str, ...]], ...]  # name, util, used, total, runs
    cpu: float
    mem_used: int
    mem_total: int
    queued: int
    running: int
    daemon: bool


@dataclass
class Delta:
    """What changed since the previous poll."""

    changed: list[RunState]
    removed: list[str]
    resources: Resources | None = None
    first: bool = False
    polled_at: float = 0.0
    seconds: float = 0.0


class Poller:
    """Incremental reader of one logs directory's index. Use from one thread only.

    `poll` is the tick: only `runs(since_seq=...)` and the new steps and epochs of the
    runs that changed, so its SQL is O(changed). Everything else (history backfill,
    archived-run check, GPU/CPU/RAM and counts) is done by `chores`, which the worker
    calls between polls; its results ride along with the next delta."""

    def __init__(self, logs: LogsDir, clock: Callable[[], float] = time.time,
                 resources_every: float = 2.0, backfill_batch: int = 40):
        self.logs = logs
        self.clock = clock
        self.index: Index | None = None
        self.states: dict[str, RunState] = {}
        self.seq = 0
        self.resources_every = resources_every
        self.backfill_batch = backfill_batch
        self._resources_at = -math.inf
        self._ids_checked_at = -math.inf
        self._filled: dict[str, RunState] = {}  # backfilled since the last delta
        self._gone: list[str] = []  # archived since the last delta
        self._resources: Resources | None = None  # read since the last delta

    def _open(self) -> Index:
        if self.index is None:
            self.index = Index(self.logs)
        return self.index

    def poll(self) -> Delta:
        """What changed since the last poll, plus what `chores` found meanwhile."""
        started = time.perf_counter()
        self._open()
        first = self.seq == 0 and not self.states
        if self.seq and self.index.max_seq() < self.seq:
            self.seq = 0  # the newest run was deleted and its seq will be reused: read all
        rows = self.index.runs(since_seq=self.seq)
        if rows:
            self.seq = max(self.seq, max(r.seq for r in rows))
        changed = [self._update(r) for r in rows]
        seen = {st.id for st in changed}
        changed += [self.states[rid] for rid in self._filled
                    if rid not in seen and rid in self.states]
        removed, res = self._gone, self._resources
        self._filled, self._gone, self._resources = {}, [], None
        return Delta(changed, removed, res, first, self.clock(), time.perf_counter() - started)

    def chores(self, budget: float = 0.25) -> None:
        """Work done off the tick: a batch of histories, removals, resources when due."""
        self._open()
        self._backfill_some(budget)
        self._gone += self._removed()
        now = time.monotonic()
        if now - self._resources_at >= self.resources_every:
            self._resources_at = now
            self._resources = self.resources()

    @property
    def backfilling(self) -> bool:
        return any(not st.backfilled for st in self.states.values())

    def _update(self, row: RunRow) -> RunState:
        st = self.states.get(row.id)
        if st is None:
            st = self.states[row.id] = RunState(row)
        st.row = row
        if st.backfilled:
            self._advance(st)
        return st

    def _advance(self, st: RunState) -> None:
        """Append the steps and epochs logged since the state's last ones."""
        row = st.row
        if row.step is not None and row.step > st.last_step:
            new = self.index.steps(row.id, after=st.last_step, limit=10_000)
            st.loss.extend((s, loss) for s, loss, _ in new)
            st.last_step = new[-1][0] if new else st.last_step
        if row.epoch is not None and row.epoch > st.last_epoch:
            for e in self.index.epochs(row.id, after=st.last_epoch):
                st.acc.add(e["epoch"], e.get("val_acc"))
                st.last_epoch = e["epoch"]

    def _backfill_some(self, budget: float) -> None:
        """Histories of up to `backfill_batch` runs (live ones first), within `budget` s."""
        todo = [st for st in self.states.values() if not st.backfilled]
        todo.sort(key=lambda st: st.row.status != "running")
        deadline = time.perf_counter() + budget
        for st in todo[:self.backfill_batch]:
            self._filled[st.id] = self.states[st.id] = self._backfill(st)
            if time.perf_counter() > deadline:
                break

    def _backfill(self, st: RunState) -> RunState:
        """A run's history in a new state (the UI may be reading the old one right now):
        losses pre-aggregated by SQLite (one range scan), then the epochs."""
        new = RunState(st.row)
        pts = downsampled_steps(self.index, st.id, new.loss.size)
        new.loss.extend((x, y) for x, _lo, _hi, y in pts)
        new.last_step = int(pts[-1][0]) if pts else -1
        new.backfilled = True
        self._advance(new)
        return new

    def _removed(self) -> list[str]:
        """Runs archived since the last look (a delete leaves no seq behind)."""
        now = time.monotonic()
        if now - self._ids_checked_at < 2.0:
            return []
        self._ids_checked_at = now
        ids = {r[0] for r in self.index.db.execute("SELECT id FROM runs")}
        gone = [rid for rid in self.states if rid not in ids]
        for rid in gone:
            del self.states[rid]
            self._filled.pop(rid, None)
        if gone:  # a delete can hand its seq to the next write: read every row again
            self.seq = 0
        return gone

    def resources(self) -> Resources:
        counts = self._open().counts()
        on: dict[str, list[str]] = {}
        for st in self.states.values():
            if st.row.status in ("running", "starting"):
                on.setdefault(str(st.row.gpu) if st.row.gpu not in (None, "") else "cpu",
                              []).append(st.id)
        gs = tuple((f"GPU{g.index} {g.name}", g.util, g.mem_used_mb, g.mem_total_mb,
                    tuple(on.get(str(g.index), ()))) for g in gpu.gpus())
        cpu, used, total = gpu.cpu_percent_and_mem()
        return Resources(gs, cpu, used, total, counts.get("queued", 0),
                         counts.get("running", 0) + counts.get("starting", 0),
                         daemon.is_running(self.logs))

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None


def downsampled_steps(index: Index, run_id: str, buckets: int) -> list[tuple[float, float, float, float]]:
    """(last step, min, max, last loss) per bucket of a run's steps, aggregated in SQLite."""
    lo_hi = index.db.execute("SELECT MIN(step), MAX(step) FROM steps WHERE run_id = ?",
                             (run_id,)).fetchone()
    if lo_hi[0] is None:
        return []
    width = max(1, math.ceil((lo_hi[1] - lo_hi[0] + 1) / buckets))
    rows = index.db.execute(
        "SELECT MAX(step), MIN(train_loss), MAX(train_loss), AVG(train_loss) FROM steps"
        " WHERE run_id = ? AND train_loss IS NOT NULL GROUP BY (step - ?) / ? ORDER BY 1",
        (run_id, lo_hi[0], width)).fetchall()
    return [tuple(r) for r in rows]


def needs_daemon(logs: LogsDir, index: Index) -> bool:
    """True when there is queued or live work and no supervisor watches it."""
    counts = index.counts()
    return any(counts.get(s) for s in ACTIVE) and not daemon.is_running(logs)


# -- detail -------------------------------------------------------------------------


@dataclass
class Detail:
    """Everything the detail screen shows for one run, read in a worker."""

    row: RunRow
    epochs: list[dict[str, Any]]
    prefix: list[dict[str, Any]]  # the parent lineage's epochs up to the fork
    steps: list[tuple[float, float, float, float]]
    confusion_epochs: list[int]
    stdout: str
    confusion: dict[str, Any] | None = None  # at the chosen epoch
    prev_confusion: dict[str, Any] | None = None  # at the epoch before it

    def steps_as_epochs(self) -> list[tuple[float, float, float, float]]:
        """Steps with x in epochs, so they share the epoch axis (steps per epoch estimated)."""
        r = self.row
        if not self.steps or not r.step:
            return []
        # a fork counts steps on from its parent's, maybe at another batch size: map its
        # own steps onto its own epochs, from the fork epoch to the last one logged
        base = r.fork_epoch or 0
        first = self.steps[0][0] - 1 if base else 0
        top = r.epoch if r.epoch and r.epoch > base else base + 1
        scale = (top - base) / max(r.step - first, 1)
        return [(base + (x - first) * scale, lo, hi, y) for x, lo, hi, y in self.steps]


def lineage_prefix(index: Index, row: RunRow, limit: int = 8) -> list[dict[str, Any]]:
    """Epochs of the ancestors, each up to where its child forked, oldest first."""
    by_epoch: dict[int, dict[str, Any]] = {}
    cur, until = row.parent, row.fork_epoch
    while cur and until is not None and limit:
        for e in index.epochs(cur):
            if e["epoch"] <= until:
                by_epoch.setdefault(e["epoch"], e)  # the nearer ancestor wins
        parent = index.run(cur)
        if parent is None:
            break
        cur, until, limit = parent.parent, parent.fork_epoch, limit - 1
    return [by_epoch[k] for k in sorted(by_epoch)]


def load_detail(index: Index, logs: LogsDir, run_id: str, cm_epoch: int | None = None,
                width: int = 200) -> Detail | None:
    """One run's curves, lineage prefix, confusion at `cm_epoch` (default: latest), stdout."""
    row = index.run(run_id)
    if row is None:
        return None
    cm_epochs = index.confusion_epochs(run_id)
    want = cm_epoch if cm_epoch in cm_epochs else (cm_epochs[-1] if cm_epochs else None)
    before = [e for e in cm_epochs if want is not None and e < want]
    return Detail(row, index.epochs(run_id), lineage_prefix(index, row),
                  downsampled_steps(index, run_id, width), cm_epochs,
                  tail(logs.run(run_id).stdout),
                  index.confusion(run_id, want) if want is not None else None,
                  index.confusion(run_id, before[-1]) if before else None)


def tail(path: os.PathLike[str] | str, max_bytes: int = 16_384, lines: int = 200) -> str:
    """The last lines of a file, reading at most `max_bytes` from its end."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > max_bytes:
        text = text.split("\n", 1)[-1]
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class ConfusionSummary:
    epoch: int
    labels: list[str]
    worst: list[tuple[str, float, int]]  # class, accuracy, support
    pairs: list[tuple[str, str, int, float]]  # true, predicted, count, share of true
    matrix: list[list[int]]
    changes: list[tuple[str, float]]  # class, accuracy change since the previous epoch


def class_accuracy(labels: list[str], matrix: list[list[int]]) -> dict[str, tuple[float, int]]:
    out = {}
    for i, name in enumerate(labels):
        n = sum(matrix[i])
        out[name] = (matrix[i][i] / n if n else 0.0, n)
    return out


def summarize_confusion(cur: dict[str, Any], prev: dict[str, Any] | None = None,
                        top: int = 5) -> ConfusionSummary:
    labels, matrix = [str(x) for x in cur["labels"]], cur["matrix"]
    acc = class_accuracy(labels, matrix)
    worst = sorted(((k, a, n) for k, (a, n) in acc.items()), key=lambda t: (t[1], t[0]))[:top]
    pairs = []
    for i, t in enumerate(labels):
        n = sum(matrix[i]) or 1
        for j, p in enumerate(labels):
            if i != j and matrix[i][j]:
                pairs.append((t, p, matrix[i][j], matrix[i][j] / n))
    pairs.sort(key=lambda q: (-q[2], q[0], q[1]))
    changes = []
    if prev and [str(x) for x in prev["labels"]] == labels:
        before = class_accuracy(labels, prev["matrix"])
        changes = sorted(((k, acc[k][0] - before[k][0]) for k in labels
                          if abs(acc[k][0] - before[k][0]) > 1e-9), key=lambda t: -abs(t[1]))[:top]
    return ConfusionSummary(cur.get("epoch", 0), labels, worst, pairs[:top], matrix, changes)
