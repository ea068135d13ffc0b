"""Folding a run's event log, with no index involved: what is kept of it (`Fold`: the
run's clock, its last status, each metric's summary...) and the points each event adds
per metric, in log order. `prepare` folds a whole run directory from scratch into what
its index rows will be, so a rebuild can fold directories in other processes while the
one holding the index writes (store/ingest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import islice
from operator import lt
from pathlib import Path
from typing import Any

import orjson

from ..errors import UsageError
from . import events, notes, runstore
from .events import RESERVED
from .metrics import MAX_NAMES, MAX_STEP, KeySummary, primary, valid_name
from .paths import LogsDir
from .series import CHUNK, chunks
from .spec import RunSpec

MAX_WARNINGS = 50
_NUMBERS = {float, int}  # a metric's value types (bool is neither)
#: per (name, scope), the points of a batch of events: (xs, values) in log order
Points = dict[tuple[str, str], tuple[list[int], list[float]]]


@dataclass
class Fold:
    """What ingest has folded of one run's event log so far: kept in memory by the
    supervisor for each run it follows, and with the run's row in the index (`state`;
    store/ingest.py:restore_fold), so each reads only the new lines."""

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


def fold_events(fold: Fold, evs: list[dict[str, Any]]) -> tuple[Points, list[tuple[int, str]]]:
    """Fold a batch of events: the run's state in `fold`; returns the batch's points per
    metric and its confusion matrices (epoch, event as JSON). An event whose step or
    epoch is not an integer in [0, 2**63) is skipped, with one warning."""
    # per scope, name -> (xs, values), in log order (the event's own fields start out
    # mapped to None: never metrics). Consecutive step (or epoch) events with the same
    # fields are folded as a block, column by column in C (zip, map, extend); a
    # block of a few events, point by point.
    by_scope: dict[str, dict[str, Any]] = {
        "step": dict.fromkeys(RESERVED), "epoch": dict.fromkeys(RESERVED)}
    confusions = []
    block: list[tuple[Any, ...]] = []
    shape: tuple[str, ...] = ()
    for ev in evs:
        kind = ev["kind"]
        if kind == "step" or kind == "epoch":
            fields = (kind, *ev)
            if fields != shape:
                if block:
                    _fold_block(fold, by_scope, shape, block)
                block, shape = [], fields
            block.append(tuple(ev.values()))
            continue
        if block:
            _fold_block(fold, by_scope, shape, block)
            block, shape = [], ()
        if kind == "confusion" and type(ev.get("epoch")) is int and 0 <= ev["epoch"] < MAX_STEP:
            confusions.append((ev["epoch"], json.dumps(ev)))
        else:
            _fold_other(fold, kind, ev)
        fold.last_event = ev.get("t", fold.last_event)
    if block:
        _fold_block(fold, by_scope, shape, block)
    return ({(name, kind): pts for kind, scope in by_scope.items()
             for name, pts in scope.items() if pts is not None}, confusions)


def settle(fold: Fold, batch: Points) -> set[tuple[str, str]]:
    """Fold a batch's points into the keys' summaries; returns the keys whose points do
    not all come after the ones folded before, in rising order (a resume repeats its
    epochs): their summaries are made again from the merged points (`merged`)."""
    repeated = set()
    for k, (xs, vs) in batch.items():
        ks = fold.keys[k]
        if (ks.last_at is not None and xs[0] <= ks.last_at) or not all(
                map(lt, xs, islice(xs, 1, None))):  # C-speed: strictly rising?
            repeated.add(k)
        else:
            ks.extend(xs, vs)
    return repeated


def merged(points: dict[int, float], key: tuple[str, str], xs: list[int], vs: list[float]
           ) -> tuple[list[int], list[float], KeySummary]:
    """Stored points (x -> value) and a batch's, the later value winning: in rising x,
    with their summary."""
    points.update(zip(xs, vs, strict=True))  # in log order: the last event wins
    mx = sorted(points)
    mv = [points[x] for x in mx]
    ks = KeySummary(*key)
    ks.extend(mx, mv)
    return mx, mv, ks


@dataclass
class Prepared:
    """A run directory folded from scratch: what its index rows will hold."""

    spec: RunSpec
    proc: dict[str, Any]
    note: str
    tags: list[str]
    fold: Fold
    #: per (name, scope), its chunk rows (x0, x1, n, dx, xs, vs)
    rows: dict[tuple[str, str], list[tuple[Any, ...]]]
    confusions: list[tuple[int, str]]
    offset: int  # the bytes of events.jsonl folded
    status: str
    message: str
    ended: float | None
    dropped: int  # events the run could not write (its final record)


def prepare(root: str | Path, run_id: str) -> Prepared:
    """Fold one run directory of the logs directory `root` from scratch, reading each of
    its files once. A directory that cannot be a run (a copy of another: its run.json
    names another id) is a UsageError; a missing one RunNotFound."""
    paths = LogsDir.at(root).run(run_id)
    spec = runstore.checked_spec(paths)
    proc = runstore.read_json(paths.proc) or {}
    ann = notes.read(paths)  # a broken file leaves the run unannotated
    fold = Fold(spec_metric=spec.metric, spec_mode=spec.mode)
    chunk = events.read_from(paths.events, 0, None)
    batch, confusions = fold_events(fold, chunk.events)
    repeated = settle(fold, batch)
    rows = {}
    for k, (xs, vs) in batch.items():
        if k in repeated:  # the log repeats steps of its own (a resume)
            xs, vs, fold.keys[k] = merged({}, k, xs, vs)
        rows[k] = [c.row() for c in chunks(xs, vs, CHUNK)]
    verdict = runstore.derive_status(paths, fold.status)
    ended = (runstore.read_json(paths.exit) or {}).get("ended")
    if ended is None and verdict.status in events.TERMINAL:
        ended = fold.ended
    return Prepared(spec, proc, ann.note, ann.tags_of(spec.tags), fold, rows, confusions,
                    chunk.offset, verdict.status, verdict.message, ended, verdict.dropped)


def prepare_or_problem(root: str, run_id: str) -> Prepared | str:
    """`prepare`, with the sentence of a directory that cannot be indexed in place of a
    UsageError (what a rebuild's worker processes send back)."""
    try:
        return prepare(root, run_id)
    except UsageError as e:
        return str(e)


def _fold_block(fold: Fold, by_scope: dict[str, dict[str, Any]],
                shape: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Consecutive step or epoch events with the same fields (`shape`: the kind, then
    the field names; `rows`: their values), folded column by column."""
    kind, names = shape[0], shape[1:]
    at = names.index(kind) if kind in names and len(rows) >= 4 else -1
    xs = [row[at] for row in rows] if at >= 0 else []
    if not xs or set(map(type, xs)) != {int} or min(xs) < 0 or max(xs) >= MAX_STEP:
        for row in rows:  # few, or some step or epoch is not an int in range
            _fold_event(fold, by_scope, kind, dict(zip(names, row, strict=True)))
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
            if not _admit_key(fold, name, kind):
                scope[name] = None
                continue
            points = scope[name] = ([], [])
        points[0].extend(col_xs)
        points[1].extend(column)


def _fold_event(fold: Fold, by_scope: dict[str, dict[str, Any]], kind: str,
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
            if not _admit_key(fold, name, kind):
                scope[name] = None
                continue
            points = scope[name] = ([], [])
        points[0].append(x)
        points[1].append(v)
    fold.last_event = ev.get("t", fold.last_event)


def _admit_key(fold: Fold, name: str, kind: str) -> bool:
    """A name met first in this batch: one the run has, or a new one it may have."""
    if (name, kind) in fold.dropped:
        return False
    return (name, kind) in fold.keys or _new_key(fold, name, kind)


def _new_key(fold: Fold, name: str, scope: str) -> bool:
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
