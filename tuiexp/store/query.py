"""The one read model: every view (dashboard, `ls`, `show`, export, plots, report)
reads runs through these functions over the index, and the facts derived from a
run — duration, ETA, lineage, a metric column's value — are computed here once.
Views format; they do not recompute. No view re-reads `events.jsonl`.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from ..errors import UsageError
from ..store import lock
from . import events
from .index import Index, RunRow
from .metrics import default_mode, matching
from .paths import is_run_id

ALL = None  # `metrics=ALL`: attach every metric summary

#: Columns every run has, beside metric columns (docs/RESULTS.md).
RUN_FACTS = ("num_params", "epochs_run", "best", "best_epoch", "train_time")
#: Old column names, kept working: `best_val_acc` is `best:val_acc`, `final_x` is `last:x`.
AGGREGATES = ("last", "best", "min", "max")


def load_runs(index: Index, status: Iterable[str] | None = None,
              experiment: Iterable[str] | None = None,
              metrics: Iterable[str] | None = ALL, slim: bool = False) -> list[RunRow]:
    """Runs (oldest first) with the summaries of `metrics` (every metric by default);
    `slim` leaves the spec, meta and params undecoded (a listing that shows none)."""
    rows = index.runs(status=status, experiment=experiment, slim=slim)
    if metrics is not None and not (metrics := list(metrics)):
        return rows
    return index.attach_summaries(rows, metrics)


def get_run(index: Index, run_id: str) -> RunRow | None:
    row = index.run(run_id)
    return index.attach_summaries([row])[0] if row else None


def refresh_unsupervised(index: Index, ids: list[str] | None = None) -> None:
    """With no supervisor following them, the readers follow the live runs themselves,
    as the supervisor would: each from the fold the index keeps with its row, to the end
    of its log, and its status judged from its directory (`Index.follow`)."""
    if lock.is_running(index.logs):
        return
    for run_id, _ in index.live_ids():
        if ids is None or run_id in ids:
            index.follow(run_id)


def index_new_directories(index: Index) -> list[str]:
    """Index run directories the index does not know yet (a script run by hand, with no
    supervisor to notice it), so they show without a manual `reindex`."""
    try:
        names = set(os.listdir(index.logs.runs))  # one listdir; run.json only for new names
    except FileNotFoundError:
        return []
    added = []
    for rid in sorted(names - index.ids()):
        if is_run_id(rid) and (index.logs.runs / rid / "run.json").exists():
            try:
                index.reindex_run(rid)
                added.append(rid)
            except UsageError:
                pass  # a copy or a bad directory: `reindex` and `doctor` report it
    return added


# -- params ---------------------------------------------------------------------------


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"augment": {"flip": True}}` -> `{"augment.flip": True}`; lists stay whole."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):  # an empty table adds no key: `model_args = {}` is no column
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def run_params(rec: RunRow) -> dict[str, Any]:
    """A run's flattened params, its seed included (the spec's seed wins)."""
    flat = flatten(rec.params)
    if rec.seed is not None:
        flat["seed"] = rec.seed
    return flat


def compact(v: Any) -> str:
    """A param value in a few characters: `0.001`, `true`, `adam:10 → sgd:20`-like lists."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format(v, "g")
    if isinstance(v, dict):
        return ",".join(f"{k}={compact(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):
            return " → ".join(compact(x) for x in v)  # a schedule: phase after phase
        return "[" + ", ".join(compact(x) for x in v) + "]"
    return str(v)


# -- facts of one run --------------------------------------------------------------


def elapsed(row: RunRow, now: float) -> float | None:
    """Seconds the run has run: every attempt's time, not the time between them (a run
    cancelled on Monday and resumed on Friday ran for its attempts, not four days); a
    fork's own time (its parent's is the parent's). Ticks while the run is live."""
    if not row.started:
        return None
    if row.attempt_started is None:  # a row not folded from events (built by hand)
        return (row.ended or now) - row.started
    last = row.last_event if row.last_event is not None else row.attempt_started
    before = row.time_before + max(0.0, last - row.attempt_started)
    if row.status == "running" and row.started > last:
        # the supervisor launched a new attempt (`started`) that has not logged its start
        return before + max(0.0, now - row.started)
    if row.status == "running":
        end = now
    elif row.ended is not None and row.ended >= row.attempt_started:
        end = row.ended
    else:  # starting again, ended before this attempt (stale), or never recorded
        end = last
    return row.time_before + max(0.0, end - row.attempt_started)


def train_time(row: RunRow) -> float | None:
    """Seconds of training: the sum of logged `epoch_time`s, else start to end."""
    s = row.summaries.get(("epoch_time", "epoch"))
    if s and s.count:
        return s.total
    return row.ended - row.started if row.ended and row.started else None


def epochs_done(row: RunRow) -> int:
    """Epochs behind the run: a fork that has not logged yet starts from its fork epoch."""
    return row.epoch if row.epoch is not None else row.fork_epoch or 0


def progress(row: RunRow) -> float:
    return epochs_done(row) / row.epochs if row.epochs else 0.0


def eta(row: RunRow, now: float) -> float | None:
    """Seconds left for a running run: the epochs left at the mean wall time of a whole
    epoch (training, evaluation, checkpoint: from one epoch's first event to the next's,
    within an attempt); before that is known, at the mean logged `epoch_time`; else at
    the pace of its run time so far. Downtime between attempts never counts."""
    if row.status != "running" or not row.epochs:
        return None
    done = epochs_done(row)
    left = row.epochs - done
    if row.epoch_gaps and row.epoch_secs > 0:
        return row.epoch_secs / row.epoch_gaps * left
    per_epoch = row.summaries.get(("epoch_time", "epoch"))
    if per_epoch and per_epoch.count and per_epoch.total > 0:
        return per_epoch.total / per_epoch.count * left
    base = row.fork_epoch or 0
    spent = elapsed(row, now)
    if not row.epoch or done - base <= 0 or spent is None:
        return None
    return spent / (done - base) * left


def current_lr(row: RunRow) -> float | None:
    """The LR in effect now: the last one the run logged, in log order, so a resumed run
    shows its own and not a later step of the attempt that died; None from a new
    attempt's start until it logs one."""
    if row.attempt_started is not None or row.last_event is not None:
        return row.lr
    s = row.summaries.get(("lr", "step")) or row.summaries.get(("lr", "epoch"))
    return s.last if s else None


def mode_of(row: RunRow, name: str) -> str:
    """How `name` is ranked for this run: its primary mode, else by the name's kind."""
    return (row.mode or "max") if name == row.metric else default_mode(name)


def value(row: RunRow, column: str) -> Any:
    """A table column's value for one run: a run fact, or `AGG:NAME` with AGG one of
    last/best/min/max (a bare NAME is its last value; `final_NAME` and `best_NAME`
    are the old spellings). None where the run has not produced it; NaN stays NaN."""
    return getter(column)(row)


@lru_cache(maxsize=1024)
def getter(column: str) -> Callable[[RunRow], Any]:
    """`value` for one column, parsed once (a listing calls it for every row)."""
    facts: dict[str, Callable[[RunRow], Any]] = {
        "num_params": lambda r: r.meta.get("num_params"),
        "epochs_run": lambda r: r.epoch,
        "best": lambda r: r.best,
        "best_epoch": lambda r: r.best_at,
        "train_time": train_time,
    }
    if column in facts:
        return facts[column]
    agg, name = split_column(column)

    def read(row: RunRow) -> Any:
        s = row.summaries.get((name, "epoch")) or row.summaries.get((name, "step"))
        if s is None or not s.count:
            return None
        if agg == "last":
            return s.last
        if agg == "best":
            return s.best(mode_of(row, name))[0]
        return s.min if agg == "min" else s.max

    return read


def column_values(index: Index, rows: list[RunRow], columns: list[str]) -> list[list[Any]]:
    """`value` of each column for each row (a list per column), metric columns read
    straight from the index's summaries (`Index.summary_column`): the same values, at a
    fraction of the cost for a listing of thousands of runs (no summaries attached)."""
    out = []
    nums = [r.num for r in rows]
    for c in columns:
        if c in RUN_FACTS:
            get = getter(c)
            out.append([get(r) for r in rows])
            continue
        agg, name = split_column(c)
        if agg != "best":
            out.append(list(map(index.summary_column(name, agg).get, nums)))
            continue
        # best: in the name's usual mode, but in the run's own for its primary metric
        usual = default_mode(name)
        by_mode = {usual: index.summary_column(name, usual)}
        values = list(map(by_mode[usual].get, nums))
        for i, r in enumerate(rows):
            if r.metric == name and (mode := r.mode or "max") != usual:
                if mode not in by_mode:
                    by_mode[mode] = index.summary_column(name, mode)
                values[i] = by_mode[mode].get(r.num)
        out.append(values)
    return out


def split_column(column: str) -> tuple[str, str]:
    """`best:val/acc` -> ("best", "val/acc"); `final_val_acc` -> ("last", "val_acc")."""
    agg, sep, name = column.partition(":")
    if sep and agg in AGGREGATES:
        return agg, name
    for old, new in (("final_", "last"), ("best_", "best")):
        if column.startswith(old) and len(column) > len(old):
            return new, column[len(old):]
    return "last", column


def expand_columns(patterns: list[str], names: Iterable[str]) -> list[str]:
    """Column specs with globs over metric names expanded (`val/*`, `best:val/*`)."""
    names = set(names)
    out: list[str] = []
    for p in patterns:
        agg, sep, name = p.partition(":")
        if sep and agg in AGGREGATES and any(c in name for c in "*?["):
            out += [f"{agg}:{n}" for n in matching([name], names)]
        elif not sep and any(c in p for c in "*?["):
            out += matching([p], names)
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def metric_of_column(column: str) -> str | None:
    """The metric a column reads (None for run facts other than metrics)."""
    if column in RUN_FACTS:
        return "epoch_time" if column == "train_time" else None
    return split_column(column)[1]


def primary_metrics(rows: list[RunRow]) -> list[str]:
    """The primary metrics of these runs, most common first."""
    counts: dict[str, int] = {}
    for r in rows:
        if r.metric:
            counts[r.metric] = counts.get(r.metric, 0) + 1
    return sorted(counts, key=lambda m: (-counts[m], m))


# -- series --------------------------------------------------------------------------


def attach_curves(index: Index, rows: list[RunRow], names: list[str]) -> list[RunRow]:
    """Fill each row's `curves` with the epoch-level points of `names` (one query)."""
    by_num = index.curves([r.num for r in rows], names)
    for r in rows:
        r.curves = by_num.get(r.num, {})
    return rows


def with_ancestors(index: Index, recs: list[RunRow], names: list[str]) -> list[RunRow]:
    """`recs` and every ancestor of theirs, with curves: a fork's line starts at its
    parent's value at the fork epoch."""
    by_id = {r.id: r for r in recs}
    todo = [r.parent for r in recs if r.parent]
    while todo:
        rid = todo.pop()
        if rid in by_id:
            continue
        row = index.run(rid)
        if row is not None:
            by_id[rid] = attach_curves(index, [row], names)[0]
            if row.parent:
                todo.append(row.parent)
    return list(by_id.values())


def lineage_prefix(index: Index, row: RunRow, names: list[str], limit: int = 8
                   ) -> dict[str, list[tuple[int, float]]]:
    """The ancestors' epoch points up to where the lineage forked, oldest first: a fork's
    curves read as one line that branches."""
    out: dict[str, dict[int, float]] = {n: {} for n in names}
    cur, until = row.parent, row.fork_epoch
    while cur and until is not None and limit:
        parent = index.run(cur)
        if parent is None:
            break
        pts = index.curves([parent.num], names).get(parent.num, {})
        for name, series in pts.items():
            for x, v in series:
                if x <= until:
                    out[name].setdefault(x, v)  # the nearer ancestor wins
        cur, until, limit = parent.parent, parent.fork_epoch, limit - 1
    return {n: sorted(d.items()) for n, d in out.items()}


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# -- the filter grammar (the dashboard's `/`, `--filter` of ls, export, plot, report) ------

#: `KEY:VALUE` terms; VALUE may be a comma list (any of them) and, for tag and exp, a glob
FILTER_KEYS = ("tag", "status", "exp", "id", "note")
FILTER_HELP = ("plain words (id, experiment, status, tag), tag:T, status:S, exp:NAME, id:TEXT, "
               "note:TEXT, PARAM=VALUE; -TERM negates")
RowTest = Callable[[RunRow], bool]
#: short names of common params, as the dashboard's run labels show them (`d=0.3`)
PARAM_ABBREV = {"batch_size": "bs", "dropout": "d", "weight_decay": "wd", "optimizer": "opt",
                "schedule": "sched", "epochs": "ep", "label_smoothing": "ls",
                "momentum": "mom", "mixup": "mix", "model": "m", "param_budget": "budget"}


def filter_rows(rows: Iterable[RunRow], text: str | None) -> list[RunRow]:
    """The rows `text` selects (docs/UI.md, "Filter"); all of them for an empty text."""
    test = row_filter(text or "")
    return [r for r in rows if test(r)]


def matches(row: RunRow, text: str) -> bool:
    """Whether one run passes the filter `text`."""
    return row_filter(text)(row)


@lru_cache(maxsize=64)
def row_filter(text: str) -> RowTest:
    """The filter `text` as a test of a row: whitespace-separated terms that must all
    hold. A plain word is a case-insensitive part of the id, experiment, status or a tag;
    `tag:best`, `status:failed,crashed`, `exp:drop*`, `id:2026`, `note:baseline`,
    `lr=0.1` (a param, nested ones as `augment.flip=true`, or named as a run label names
    it: `d=0.3`, `flip=true`); `-` before a term negates it.
    A term the grammar does not know is a UsageError, one sentence naming it."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unclosed quote, as typed so far
        words = text.split()
    tests = [t for w in words if (t := _term(w)) is not None]
    if len(tests) == 1:  # the common cases, without a generator per row
        return tests[0]
    return (lambda row: all(t(row) for t in tests)) if tests else _everything


def _everything(row: RunRow) -> bool:
    return True


def _term(word: str) -> RowTest | None:
    negate = word.startswith("-") and len(word) > 1
    body = word[1:] if negate else word
    test = _positive_term(body, word)
    if test is None or not negate:
        return test
    return lambda row: not test(row)


def _positive_term(body: str, word: str) -> RowTest | None:
    key, sep, value = body.partition(":")
    if sep:
        if key.lower() not in FILTER_KEYS:
            raise UsageError(f"unknown filter '{key}:' in '{word}'; use {FILTER_HELP}.")
        values = [v for v in value.lower().split(",") if v]
        return _keyed(key.lower(), values, word) if values else None  # `tag:` as typed so far
    name, eq, want = body.partition("=")
    if eq and name:
        return _param_test(name, want)
    needle = body.lower()
    return lambda row: needle in _haystack(row)


def _keyed(key: str, values: list[str], word: str) -> RowTest:
    if key == "status":  # a status, or the start of some (`status:fail`, as typed so far)
        wanted = {s for v in values for s in events.STATUSES if s.startswith(v)}
        for v in values:
            if not any(s.startswith(v) for s in events.STATUSES):
                raise UsageError(f"unknown status '{v}' in '{word}'; choose from: "
                                 f"{', '.join(events.STATUSES)}.")
        return lambda row: row.status in wanted
    if key == "tag":
        return lambda row: any(fnmatchcase(t.lower(), v) for t in row.tags for v in values)
    if key == "exp":
        return lambda row: any(fnmatchcase(row.experiment.lower(), v) for v in values)
    if key == "id":
        return lambda row: any(v in row.id.lower() for v in values)
    return lambda row: any(v in row.note.lower() for v in values)  # note


def _param_test(name: str, want: str) -> RowTest:
    """`lr=0.1`: the param equals the value, as a number where both are numbers. The
    name may be written as a run label shows it: `d=0.3` (dropout), `flip=true`
    (augment.flip)."""
    number = _number(want)

    def equal(v: Any) -> bool:
        if number is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v) == number
        return compact(v).lower() == want.lower()

    def test(row: RunRow) -> bool:
        params = run_params(row)
        if name in params:
            return equal(params[name])
        return any(equal(v) for k, v in params.items() if label_name(k) == name)

    return test


@lru_cache(maxsize=4096)
def label_name(key: str) -> str:
    """A param's name in a run label: its abbreviation, or the last part of a nested key."""
    return PARAM_ABBREV.get(key, key.rsplit(".", 1)[-1])


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _haystack(row: RunRow) -> str:
    return " ".join((row.id, row.experiment, row.status, *row.tags)).lower()
