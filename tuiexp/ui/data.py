"""The dashboard's data layer: incremental reads of the index into bounded series.

Nothing here imports Textual; the `Poller` runs in a worker thread (it owns its
own `Index` connection) and returns `Delta`s the UI applies.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..queue import gpu, slurm
from ..search.studies import unfinished
from ..store import lock, query
from ..store.index import ACTIVE, Index, RunRow
from ..store.paths import LogsDir
from ..store.query import current_lr, progress
from ..store.series import Buckets

SPARK = "▁▂▃▄▅▆▇█"


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

SPARK_SIZE = 48
SCAN_EVERY = 5.0  # seconds between looks for run directories the index lacks
LOSS_NAMES = ("train_loss", "loss", "train/loss", "Loss/train", "loss/train")


@dataclass
class Spark:
    """One sparkline of a run: a metric at a scope, bounded, and how far it is read."""

    name: str
    scope: str
    buckets: Buckets = field(default_factory=lambda: Buckets(SPARK_SIZE))
    last_x: int = -1


@dataclass
class RunState:
    """A run's row plus its bounded sparkline series, kept by the poller."""

    row: RunRow
    sparks: list[Spark | None] = field(default_factory=lambda: [None, None])
    backfilled: bool = False

    @property
    def id(self) -> str:
        return self.row.id

    def values(self, slot: int) -> list[float]:
        spark = self.sparks[slot] if slot < len(self.sparks) else None
        return spark.buckets.values() if spark else []


def spark_metrics(row: RunRow, configured: list[str]) -> list[tuple[str, str] | None]:
    """(name, scope) of a run's two sparklines: the configured names (`[ui] sparklines`),
    else a training loss and the run's primary metric, as far as it logs them."""
    def find(name: str | None) -> tuple[str, str] | None:
        if not name:
            return None
        for scope in ("step", "epoch") if name in LOSS_NAMES else ("epoch", "step"):
            if (name, scope) in row.summaries:
                return name, scope
        return None

    if configured:
        return [find(n) for n in (*configured, None, None)[:2]]
    loss = next((k for n in LOSS_NAMES if (k := find(n))), None)
    if loss is None:
        loss = next(((n, s) for n, s in sorted(row.summaries, key=lambda k: k[1] != "step")
                     if "loss" in n.lower()), None)
    return [loss, find(row.metric)]


def lr_of(row: RunRow) -> Any:
    return current_lr(row)


# -- the table model ---------------------------------------------------------------

def _best_first(r: RunRow) -> tuple[int, float]:
    """Runs with a best value first, the best of each run's own metric and mode first."""
    if r.best is None:
        return (1, 0.0)
    return (0, r.best if r.mode == "min" else -r.best)


SORTS: dict[str, Callable[[RunRow], Any]] = {
    "created": lambda r: -r.created,  # newest first (`▼age`): a run just queued is on top
    "id": lambda r: r.id,
    "experiment": lambda r: (r.experiment, r.created),
    "status": lambda r: (r.status, r.created),
    "best": _best_first,
    "epoch": lambda r: -progress(r),
}


def visible_order(rows: dict[str, RunRow], text: str = "", sort: str = "created",
                  tree: bool = True) -> list[tuple[str, int]]:
    """(run id, depth) in display order: filtered (`query.row_filter`'s grammar: words,
    `tag:best`, `status:failed`...; a UsageError for a term it does not know), sorted,
    forks under their parent."""
    test = query.row_filter(text.strip())
    shown = {rid: r for rid, r in rows.items() if test(r)}
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
    #: the cluster's partitions (one `sinfo`) when the queue runs on Slurm: then they are
    #: what the strip shows, not this machine's GPUs; empty when sinfo did not answer
    partitions: tuple[slurm.Partition, ...] | None = None


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
                 resources_every: float = 2.0, backfill_batch: int = 40,
                 sparklines: list[str] | tuple[str, ...] = ()):
        self.logs = logs
        self.sparklines = list(sparklines)
        self.clock = clock
        self.index: Index | None = None
        self.states: dict[str, RunState] = {}
        self.seq = 0
        self.resources_every = resources_every
        self.backfill_batch = backfill_batch
        self._resources_at = -math.inf
        self._ids_checked_at = -math.inf
        self._scanned_at = -math.inf
        self._filled: dict[str, RunState] = {}  # backfilled since the last delta
        self._gone: list[str] = []  # archived since the last delta
        self._resources: Resources | None = None  # read since the last delta

    def _open(self) -> Index:
        if self.index is None:
            self.index = Index(self.logs)
        elif self.index.replaced():  # deleted or rebuilt meanwhile (a cache): read it all again
            self.index.reopen()
            self.seq = 0
        return self.index

    def poll(self) -> Delta:
        """What changed since the last poll, plus what `chores` found meanwhile."""
        started = time.perf_counter()
        index = self._open()
        first = self.seq == 0 and not self.states
        if self.seq and index.max_seq() < self.seq:
            self.seq = 0  # the newest run was deleted and its seq will be reused: read all
        rows = index.attach_summaries(index.runs(since_seq=self.seq))
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
        index = self._open()
        self._backfill_some(budget)
        self._gone += self._removed()
        now = time.monotonic()
        if now - self._scanned_at >= SCAN_EVERY:  # runs written by hand, outside the queue
            self._scanned_at = now
            query.index_new_directories(index)
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
        """Bring each sparkline up to the run's summaries: a slot is made when the first
        point of its metric arrives (from SQLite's buckets, so the history before it
        comes too), then folds only the points after its last one. The one path for a
        run's history (`_backfill` is this on a new state) and for its live points."""
        for slot, key in enumerate(spark_metrics(st.row, self.sparklines)):
            spark = st.sparks[slot]
            if key is None:
                continue
            if spark is None or (spark.name, spark.scope) != key:
                b = self._open().buckets(st.row.num, *key, size=SPARK_SIZE)
                last = b.last_x
                st.sparks[slot] = spark = Spark(*key, b, int(last) if last is not None else -1)
            summary = st.row.summaries.get(key)
            if summary is None or summary.last_at is None or summary.last_at <= spark.last_x:
                continue
            new = self._open().points(st.row.num, spark.name, spark.scope, after=spark.last_x,
                                      limit=10_000)
            spark.buckets.extend(new)
            if new:
                spark.last_x = new[-1][0]

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
        its sparklines pre-aggregated by SQLite (one range scan each)."""
        new = RunState(st.row, backfilled=True)
        self._advance(new)
        return new

    def _removed(self) -> list[str]:
        """Runs archived since the last look (a delete leaves no seq behind)."""
        now = time.monotonic()
        if now - self._ids_checked_at < 2.0:
            return []
        self._ids_checked_at = now
        ids = self._open().ids()
        gone = [rid for rid in self.states if rid not in ids]
        for rid in gone:
            del self.states[rid]
            self._filled.pop(rid, None)
        if gone:  # a delete can hand its seq to the next write: read every row again
            self.seq = 0
        return gone

    def resources(self) -> Resources:
        index = self._open()
        counts = index.counts()
        if (index.setting("queue") or {}).get("executor") == "slurm":  # as the supervisor runs it
            return Resources((), 0.0, 0, 0, counts.get("queued", 0),
                             counts.get("running", 0) + counts.get("starting", 0),
                             lock.is_running(self.logs), tuple(slurm.partitions()))
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
                         lock.is_running(self.logs))

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None


def needs_daemon(logs: LogsDir, index: Index) -> bool:
    """True when there is queued or live work (or a study between trials) and no
    supervisor watches it."""
    counts = index.counts()
    work = any(counts.get(s) for s in ACTIVE) or bool(unfinished(logs))
    return work and not lock.is_running(logs)


# -- detail -------------------------------------------------------------------------


@dataclass
class MetricChart:
    """One metric of a run for the detail grid: min/max buckets, and for an epoch-level
    metric of a fork, its ancestors' points up to the fork."""

    name: str
    scope: str
    buckets: Buckets
    prefix: list[tuple[int, float]]


@dataclass
class Detail:
    """Everything the detail screen shows for one run, read in a worker."""

    row: RunRow
    charts: list[MetricChart]  # the primary metric first
    constants: dict[tuple[str, str], float]  # metrics that never changed: said, not charted
    confusion_epochs: list[int]
    stdout: str
    confusion: dict[str, Any] | None = None  # at the chosen epoch
    prev_confusion: dict[str, Any] | None = None  # at the epoch before it


#: parts of a metric's name that say it was measured on held-out data
HELD_OUT = ("val", "test", "eval")


def constants(row: RunRow) -> dict[tuple[str, str], float]:
    """Metrics that logged one value over and over at a scope (`batch_size`): said once
    as text, never charted as a flat line."""
    return {key: s.min for key, s in sorted(row.summaries.items())
            if s.count > 1 and s.min is not None and s.min == s.max}


def chart_order(row: RunRow) -> list[tuple[str, str]]:
    """The (metric, scope) charts of a run, what a reader looks at first first: the
    primary metric, the training loss (its sparkline's), the held-out losses, the other
    held-out metrics, the other losses and accuracies, then the rest by name; epoch-level
    before step-level within each. Constants are left out."""
    fixed = constants(row)
    loss = spark_metrics(row, [])[0]

    def rank(key: tuple[str, str]) -> tuple[int, bool, str]:
        name, scope = key
        low = name.lower()
        held = any(part in low for part in HELD_OUT)
        group = (0 if name == row.metric else 1 if key == loss else
                 2 if held and "loss" in low else 3 if held else
                 4 if "loss" in low or "acc" in low else 5)
        return group, scope != "epoch", name

    return sorted((k for k in row.summaries if k not in fixed), key=rank)


def load_detail(index: Index, logs: LogsDir, run_id: str, cm_epoch: int | None = None,
                width: int = 120) -> Detail | None:
    """One run's metric charts (after its lineage's prefix), the confusion matrix at
    `cm_epoch` (default: latest) and the one before it, and the stdout tail."""
    row = query.get_run(index, run_id)
    if row is None:
        return None
    keys = chart_order(row)
    prefix = query.lineage_prefix(index, row, [n for n, scope in keys if scope == "epoch"])
    charts = [MetricChart(name, scope, index.buckets(row.num, name, scope, width),
                          prefix.get(name, []) if scope == "epoch" else [])
              for name, scope in keys]
    cm_epochs = index.confusion_epochs(run_id)
    want = cm_epoch if cm_epoch in cm_epochs else (cm_epochs[-1] if cm_epochs else None)
    before = [e for e in cm_epochs if want is not None and e < want]
    return Detail(row, charts, constants(row), cm_epochs, tail(logs.run(run_id).stdout),
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
