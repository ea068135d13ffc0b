"""The one read model: every view (dashboard, `ls`, `show`, export, plots, report)
reads runs through these functions over the index, and the facts derived from a
run — duration, ETA, lineage, a metric column's value — are computed here once.
Views format; they do not recompute. No view re-reads `events.jsonl`.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from ..errors import UsageError
from . import events
from .index import Index, RunRow
from .metrics import default_mode, matching
from .paths import is_run_id
from .series import width_for
from .spec import INTERNAL_PARAMS

ALL = None  # `metrics=ALL`: attach every metric summary

#: Columns every run has, beside metric columns (docs/RESULTS.md).
RUN_FACTS = ("num_params", "epochs_run", "best", "best_epoch", "best_step", "train_time")
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


# -- run labels ---------------------------------------------------------------------

#: a run label's cells at most (the seed is never cut): the table, dialogs and `ls` agree
LABEL_WIDTH = 30
#: params never worth a label: bookkeeping, or already written as the seed
NOT_IN_LABEL = frozenset({"seed", *INTERNAL_PARAMS})
#: a run's trainer defaults, from its spec (config.params.defaults_for): labels compare
#: resolved params, so an unset default is no difference
Defaults = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Label:
    """How a run is named to a person: `text` everywhere (unique among the runs labelled
    together, accepted where an id is); `under_parent` on a fork's row drawn under its
    parent (`fork@1 d=0.2 sched`)."""

    text: str
    under_parent: str


def _label_texts(flat: Mapping[str, Any]) -> dict[str, str]:
    """Flattened params (`augment.flip`) as labels compare them: each value in one
    canonical text (a table's key order or `0` against `0.0` is no difference); internal
    keys and the seed left out."""
    return {k: _canonical(v) for k, v in flat.items()
            if k not in NOT_IN_LABEL and not k.startswith("_")}


#: each shared defaults mapping (config.params.defaults_for gives one per trainer) as
#: label texts, made once: a listing of 10,000 runs would otherwise redo it per run
_DEFAULT_TEXTS: dict[int, tuple[Mapping[str, Any], dict[str, str]]] = {}


def _default_texts(defaults: Mapping[str, Any]) -> dict[str, str]:
    kept = _DEFAULT_TEXTS.get(id(defaults))
    if kept is None or kept[0] is not defaults:
        kept = _DEFAULT_TEXTS[id(defaults)] = (defaults, _label_texts(flatten(dict(defaults))))
    return kept[1]


def _canonical(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return json.dumps(v, sort_keys=True, default=str)
    return compact(float(v) if type(v) is int else v)  # 1 and 1.0 read alike


def _short(key: str, text: str) -> str:
    """`d=0.3`: a param's label name and its value in a few cells; a table or list of
    tables (a schedule) by its name alone."""
    name = label_name(key)
    if text.startswith("[{") or text.startswith("{"):
        return name
    try:
        text = format(float(text), ".3g") if "." in text or "e" in text else text
    except ValueError:
        pass
    return f"{name}={text if len(text) <= 10 else text[:9] + '…'}"


def _fit(words: list[str], seed: str, width: int) -> str:
    """The words cut to `width` cells with an ellipsis, the seed always kept last."""
    head = " ".join(words)
    room = width - (len(seed) + 1 if seed else 0)
    if len(head) > room:
        head = head[:max(1, room - 1)].rstrip() + "…"
    return f"{head} {seed}" if seed else head


def run_labels(rows: Iterable[RunRow] | Mapping[str, RunRow], defaults: Defaults | None = None,
               width: int = LABEL_WIDTH) -> dict[str, str]:
    """Each run's label text (see `labels`)."""
    return {rid: label.text for rid, label in labels(rows, defaults, width).items()}


def labels(rows: Iterable[RunRow] | Mapping[str, RunRow], defaults: Defaults | None = None,
           width: int = LABEL_WIDTH) -> dict[str, Label]:
    """A readable label per run: its experiment, the values of the params that differ
    between the experiment's runs (resolved: `dropout d=0.3 lr=0.1`), and its seed
    where the experiment has several (`s2`, always last); at most `width` cells. A fork
    is named by what it changed from its parent, `dropout fork@1 d=0.2 sched`, and
    takes no part in its siblings' labels. The id's tail is added where two would
    read alike."""
    rows = list(rows.values()) if isinstance(rows, Mapping) else list(rows)
    by_id = {r.id: r for r in rows}
    # a run's resolved params are its trainer's defaults (one dict shared by its runs)
    # under its own: kept apart, so 10,000 runs are not 10,000 merged copies
    own = {r.id: _label_texts(flatten(r.params)) for r in rows}
    base = {r.id: _default_texts(defaults(r.spec)) if defaults else {} for r in rows}
    forks = {r.id for r in rows if r.parent in by_id}
    groups: dict[str, list[RunRow]] = {}
    for r in rows:
        if r.id not in forks:
            groups.setdefault(r.experiment, []).append(r)
    varying: dict[str, list[str]] = {}
    seeds: dict[str, set[Any]] = {}
    for exp, members in groups.items():
        keys = sorted(_varying([own[r.id] for r in members], [base[r.id] for r in members]))
        if "param_budget" in keys:  # a budget sizes model_args: the budget names the run
            keys = [k for k in keys if not k.startswith("model_args.")]
        varying[exp] = keys
        seeds[exp] = {r.seed for r in members}
    out: dict[str, Label] = {}
    for r in rows:
        several = len(seeds.get(r.experiment, set()) | {r.seed}) > 1
        seed = f"s{r.seed}" if r.seed is not None and several else ""
        mine, defaults_of_mine = own[r.id], base[r.id]
        if r.id in forks:
            parent = by_id[r.parent or ""].id
            resolved, theirs = {**defaults_of_mine, **mine}, {**base[parent], **own[parent]}
            changed = [_short(k, v) for k, v in sorted(resolved.items()) if theirs.get(k) != v]
            short = _fit([f"fork@{r.fork_epoch}", *changed], "", width)
            out[r.id] = Label(_fit([r.experiment, f"fork@{r.fork_epoch}", *changed], seed, width), short)
        else:
            text = _fit([r.experiment, *(_short(k, mine.get(k, defaults_of_mine.get(k, "-")))
                                         for k in varying[r.experiment])], seed, width)
            out[r.id] = Label(text, text)
    taken: dict[str, int] = {}
    for label in out.values():
        taken[label.text] = taken.get(label.text, 0) + 1
    return {rid: label if taken[label.text] == 1 else Label(
                f"{label.text} #{rid.rsplit('-', 1)[-1]}",
                f"{label.under_parent} #{rid.rsplit('-', 1)[-1]}")
            for rid, label in out.items()}


def _varying(owns: list[dict[str, str]], bases: list[dict[str, str]]) -> set[str]:
    """The params whose resolved values (a base under its own) differ between runs: two
    values for one key, never a key one run lacks. Where the runs share one base (the
    common case), the keys no run sets itself cannot differ, so only their own are read."""
    shared = bases[0] if bases else {}
    if any(b is not shared for b in bases):
        owns, shared = [{**b, **o} for b, o in zip(bases, owns, strict=True)], {}
    first: dict[str, str] = {}  # each key's first value: a key differs on a second
    differ: set[str] = set()
    have: dict[str, int] = {}
    for o in owns:
        for k in o:
            have[k] = have.get(k, 0) + 1
        for k, v in o.items() - first.items():  # (a set operation, in C)
            if k in first:
                differ.add(k)
            else:
                first[k] = v
    # a key some runs set and others leave at the base's value
    differ |= {k for k, v in first.items() if have[k] < len(owns) and k in shared
               and shared[k] != v}
    return differ


def runs_labelled(by_label: Mapping[str, str], ref: str) -> list[str]:
    """The runs a label names: the one whose label is `ref`, else every run whose label
    starts with the words of `ref` (`sw` names `sw s0` and `sw s1`)."""
    exact = [rid for rid, text in by_label.items() if text == ref]
    if exact:
        return exact
    words = ref.split()
    return sorted(rid for rid, text in by_label.items() if words and text.split()[:len(words)] == words)


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
    # event times are kept to the microsecond: so is their difference (no binary noise)
    return round(row.ended - row.started, 6) if row.ended and row.started else None


def epochs_done(row: RunRow) -> int:
    """Epochs behind the run: a fork that has not logged yet starts from its fork epoch."""
    return row.epoch if row.epoch is not None else row.fork_epoch or 0


def counts_steps(row: RunRow) -> bool:
    """Does the run's progress read in steps? Once it has logged steps and never an epoch
    (a TensorBoard-style script; `epochs` among a script's params says nothing of what
    it logs). A fork counts in epochs from its fork epoch; a run that has logged nothing
    yet, in its declared epochs."""
    return row.epoch is None and row.fork_epoch is None and row.step is not None


def progress_text(row: RunRow, width: int | None = None) -> str:
    """Progress as every view writes it: `3/15` (epochs done of declared), or `step 50`
    for a run that counts in steps (no total is known); in a column of `width`, a step
    count that does not fit after `step ` stands alone."""
    if counts_steps(row):
        text = f"step {row.step}"
        return str(row.step) if width is not None and len(text) > width else text
    return f"{epochs_done(row)}/{row.epochs or '?'}"
def resume_point(row: RunRow) -> tuple[int | None, str]:
    """Where a resumed run goes on from: (epoch, in words). Its own latest checkpoint;
    else, for a fork, the parent's checkpoint it was forked from (its `init.pt`); else
    the beginning (None)."""
    if row.checkpoints:
        return max(row.checkpoints), f"its checkpoint at epoch {max(row.checkpoints)}"
    if row.parent and row.fork_epoch is not None:
        return row.fork_epoch, f"epoch {row.fork_epoch}, where it was forked"
    return None, "the beginning"


def progress(row: RunRow) -> float:
    """The fraction done, for a bar: epochs done of declared; a run that counts in steps
    has no known total, so it is 0 until it has finished."""
    if counts_steps(row):
        return 1.0 if row.status == "finished" else 0.0
    return epochs_done(row) / row.epochs if row.epochs else 0.0


def eta(row: RunRow, now: float) -> float | None:
    """Seconds left for a running run, counting down between epochs: the time one epoch
    takes (the mean wall time of a whole epoch: training, evaluation, checkpoint, from
    one epoch's first event to the next's, within an attempt; before that is known, the
    mean logged `epoch_time`; else the pace of its run time up to the last epoch) times
    the epochs left, less what the current epoch has run since it began. Downtime
    between attempts never counts."""
    if row.status != "running" or not row.epochs:
        return None
    left = row.epochs - epochs_done(row)
    per_epoch = _epoch_seconds(row, now)
    if per_epoch is None:
        return None
    if left <= 0:
        return 0.0
    since = max(0.0, now - row.epoch_at) if row.epoch_at is not None else 0.0
    return max(0.0, per_epoch - since) + per_epoch * (left - 1)


def _epoch_seconds(row: RunRow, now: float) -> float | None:
    """How long one epoch of this run takes, as far as it is known (see `eta`)."""
    if row.epoch_gaps and row.epoch_secs > 0:
        return row.epoch_secs / row.epoch_gaps
    per_epoch = row.summaries.get(("epoch_time", "epoch"))
    if per_epoch and per_epoch.count and per_epoch.total > 0:
        return per_epoch.total / per_epoch.count
    done = epochs_done(row) - (row.fork_epoch or 0)
    if not row.epoch or done <= 0:
        return None
    if row.epoch_at is not None and row.attempt_started is not None:  # up to the last epoch
        return (row.time_before + max(0.0, row.epoch_at - row.attempt_started)) / done
    spent = elapsed(row, now)  # a row not folded from events: the pace so far
    return spent / done if spent is not None else None


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
        "best_epoch": lambda r: r.best_epoch,
        "best_step": lambda r: r.best_step,
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
    """The metric a column reads (None for run facts other than metrics, and for where
    the best was, which needs each run's own primary metric: `needs_primary`)."""
    if column in RUN_FACTS:
        return "epoch_time" if column == "train_time" else None
    return split_column(column)[1]


def needs_primary(column: str) -> bool:
    """Does the column read the summary of each run's primary metric (whether its best
    was at an epoch or a step)?"""
    return column in ("best_epoch", "best_step")


def primary_metrics(rows: list[RunRow]) -> list[str]:
    """The primary metrics of these runs, most common first."""
    counts: dict[str, int] = {}
    for r in rows:
        if r.metric:
            counts[r.metric] = counts.get(r.metric, 0) + 1
    return sorted(counts, key=lambda m: (-counts[m], m))


# -- series --------------------------------------------------------------------------


#: a plotted step series has at most this many points: longer ones are averaged over
#: equal windows of steps, the same windows for every run, so that seeds still align
MAX_CURVE_POINTS = 2000


def series_scopes(rows: list[RunRow], names: Iterable[str]) -> dict[str, str]:
    """Each metric's x for curves: "step" where these runs log it per step and none per
    epoch (a TensorBoard-style script), else "epoch" (rows need their summaries)."""
    def scope(name: str) -> str:
        if any((name, "epoch") in r.summaries for r in rows):
            return "epoch"
        return "step" if any((name, "step") in r.summaries for r in rows) else "epoch"

    return {n: scope(n) for n in names}


def attach_curves(index: Index, rows: list[RunRow], names: Iterable[str],
                  scopes: dict[str, str] | None = None) -> list[RunRow]:
    """Fill each row's `curves` with the points of `names`, each at its scope (default:
    `series_scopes`); a step series of more than MAX_CURVE_POINTS steps comes averaged
    over windows of a power-of-two number of steps (one query per scope)."""
    names = list(names)
    scopes = scopes if scopes is not None else series_scopes(rows, names)
    nums = [r.num for r in rows]
    found: dict[int, dict[str, list[tuple[int, float]]]] = {n: {} for n in nums}
    for scope in ("epoch", "step"):
        mine = [n for n in names if scopes.get(n, "epoch") == scope]
        if not mine:
            continue
        width = 1
        if scope == "step":
            last = max((s.last_at or 0 for r in rows for n in mine
                        if (s := r.summaries.get((n, "step"))) is not None), default=0)
            width = width_for(0, last, MAX_CURVE_POINTS)
        for num, series in index.curves(nums, mine, scope, width=width).items():
            found[num].update(series)
    for r in rows:
        r.curves = found.get(r.num, {})
    return rows


def with_ancestors(index: Index, recs: list[RunRow], names: list[str],
                   scopes: dict[str, str] | None = None) -> list[RunRow]:
    """`recs` and every ancestor of theirs, with curves at the same scopes: a fork's
    line starts at its parent's value at the fork epoch."""
    scopes = scopes if scopes is not None else series_scopes(recs, names)
    by_id = {r.id: r for r in recs}
    todo = [r.parent for r in recs if r.parent]
    while todo:
        rid = todo.pop()
        if rid in by_id:
            continue
        row = index.run(rid)
        if row is not None:
            by_id[rid] = attach_curves(index, [row], names, scopes)[0]
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
