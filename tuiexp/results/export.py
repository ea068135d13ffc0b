"""Results tables: build one `Table` from run records, then format it as CSV,
Markdown, LaTeX or JSON (docs/RESULTS.md).

The UI's export key and the CLI both call `render(records, fmt, ...)` and
`write(path, text)`; `build_table` is kept apart from the formatters so a
caller can inspect or reshape the rows first.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import UsageError
from ..store import atomic, events, query
from ..store.index import RunRow
from ..store.metrics import default_mode
from ..store.query import compact, run_params
from ..store.spec import INTERNAL_PARAMS
from .grouping import Stat, check_group_by, group, spec_value, varying_keys

FORMATS = ("csv", "md", "latex", "json")
HELD_OUT = re.compile(r"^(val|valid|test|eval)|[/_](val|valid|test|eval)", re.IGNORECASE)
SUFFIX = {"csv": ".csv", "md": ".md", "latex": ".tex", "json": ".json"}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str  # "text" | "param" | "int" | "acc" | "loss" | "num" | "time" | "count"
    best: str | None = None  # "max" | "min": the cell to bold in LaTeX / Markdown
    param: str | None = None  # the flattened param key of a param column

    @property
    def is_metric(self) -> bool:
        return self.kind in ("int", "acc", "loss", "num", "time", "count")


#: Columns about the run itself, in their default order.
RUN_COLUMNS = (
    Column("run", "run", "text"),
    Column("n", "n", "count"),
    Column("experiment", "experiment", "text"),
    Column("parent", "parent", "text"),
    Column("fork_epoch", "fork at", "text"),
    Column("status", "status", "text"),
    Column("tags", "tags", "text"),  # shown when a run has tags
    Column("note", "note", "text"),  # shown when asked for (--columns note)
)
#: Columns every run has beside its metrics (the primary metric's best, its epoch...).
FACT_COLUMNS = {
    "num_params": ("params", "int", None),
    "epochs_run": ("epochs run", "int", None),
    "best": ("best", "metric", None),
    "best_epoch": ("best epoch", "int", None),
    "best_step": ("best step", "int", None),
    "train_time": ("train time", "time", "min"),
}
MAX_DEFAULT_METRICS = 4  # besides the primary one, held-out metrics shown by default


def metric_column(key: str, rows: list[RunRow]) -> Column:
    """The column for a run fact or a metric spec (`val/acc`, `best:val/acc`, `final_x`)."""
    primaries = query.primary_metrics(rows)
    if key in FACT_COLUMNS:
        label, kind, best = FACT_COLUMNS[key]
        if key == "best":
            name = primaries[0] if len(primaries) == 1 else None
            mode = next((r.mode for r in rows if r.metric == name), "max") if name else "max"
            return Column(key, f"best {name}" if name else "best", _kind(name or ""), mode)
        return Column(key, label, kind, best)
    agg, name = query.split_column(key)
    mode = next((r.mode for r in rows if r.metric == name and r.mode), None) or default_mode(name)
    label = f"{'final' if agg == 'last' else agg} {name}"
    return Column(key, label, _kind(name), mode)


def _kind(name: str) -> str:
    """How a metric's values read: accuracies (fractions), losses, or plain numbers."""
    if default_mode(name) == "min":
        return "loss"
    return "acc" if re.search(r"acc|top\d", name, re.IGNORECASE) else "num"


def metric(rec: RunRow, key: str) -> Any:
    """One metric of one run, or None where the run has not produced it."""
    return query.value(rec, key)


@dataclass
class Row:
    values: dict[str, Any]  # column key -> raw value, or Stat for a metric of a group
    members: list[str]


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]
    grouped: bool
    group_by: list[str] | None = None
    experiments: list[str] = field(default_factory=list)


# -- choosing runs -------------------------------------------------------------


def select(
    records: list[RunRow],
    experiments: list[str] | None = None,
    statuses: list[str] | None = None,
) -> list[RunRow]:
    """Filter by experiment and status; a name that matches nothing is an error."""
    if experiments:
        known = sorted({r.experiment for r in records})
        for e in experiments:
            if e not in known:
                raise UsageError(
                    f"no experiment '{e}' in the logs; choose from: {', '.join(known) or '(none)'}."
                )
        records = [r for r in records if r.experiment in experiments]
    if statuses:
        for s in statuses:
            if s not in events.STATUSES:
                raise UsageError(
                    f"unknown status '{s}'; choose from: {', '.join(events.STATUSES)}."
                )
        records = [r for r in records if r.status in statuses]
    return records


# -- building ------------------------------------------------------------------


def build_table(
    records: list[RunRow],
    columns: list[str] | None = None,
    group_by: list[str] | None = None,
    no_group: bool = False,
    sort: str | None = None,
) -> Table:
    """Rows (one per run, or per group with mean ± std) and the columns to show."""
    records = sorted(records, key=lambda r: (r.experiment, r.created, r.id))
    if group_by and no_group:
        raise UsageError("use either --group-by or --no-group, not both.")
    grouped = not no_group
    if group_by:
        check_group_by(records, group_by)
    flats = [run_params(r) for r in records]
    all_params = sorted({k for f in flats for k in f})
    param_cols = {p: _param_column(p) for p in all_params}
    names = sorted({n for r in records for n in r.metric_names()})
    choices = [*RUN_COLUMNS, *param_cols.values()]
    by_key = {c.key: c for c in choices}

    if columns:
        chosen = []
        for key in query.expand_columns(columns, names):
            if key not in by_key:
                metric_name = query.metric_of_column(key)
                if key not in FACT_COLUMNS and metric_name not in names:
                    known = [c.key for c in choices] + list(FACT_COLUMNS) + names
                    raise UsageError(f"unknown column '{key}'; choose from: {', '.join(known)}"
                                     " (a metric as NAME, best:NAME, min:NAME or max:NAME).")
                by_key[key] = metric_column(key, records)
            chosen.append(by_key[key])
    else:
        chosen = _default_columns(records, flats, param_cols, grouped, group_by)
        by_key.update({c.key: c for c in chosen})

    groups = group(records, group_by, no_group)
    rows = [_row(g.members, chosen, grouped) for g in groups]
    rows = _sorted_rows(rows, chosen, sort, by_key)
    return Table(chosen, rows, grouped, group_by, sorted({r.experiment for r in records}))


def _param_column(p: str) -> Column:
    taken = {c.key for c in RUN_COLUMNS} | set(FACT_COLUMNS)
    key = f"param.{p}" if p in taken else p
    return Column(key, p, "param", param=p)


def _default_columns(records: list[RunRow], flats: list[dict[str, Any]],
                     param_cols: dict[str, Column], grouped: bool,
                     group_by: list[str] | None) -> list[Column]:
    cols = [c for c in RUN_COLUMNS if (c.key != "n" or grouped) and c.key != "note"]
    if not any(r.parent for r in records):
        cols = [c for c in cols if c.key not in ("parent", "fork_epoch")]
    if not any(r.tags for r in records):
        cols = [c for c in cols if c.key != "tags"]
    if group_by:
        shown = [k for k in group_by if k in param_cols]
    else:
        shown = [k for k in varying_keys(flats)
                 if not (grouped and k == "seed") and k not in INTERNAL_PARAMS]
    return [*cols, *(param_cols[k] for k in shown), *_default_metric_columns(records)]


def _default_metric_columns(records: list[RunRow]) -> list[Column]:
    """What the runs log: parameter count, epochs, the primary metric's best and final
    value, a few held-out metrics, training time."""
    keys: list[str] = []
    if any(r.num_params for r in records):
        keys.append("num_params")
    if any(r.epoch is not None for r in records):
        keys.append("epochs_run")
    primaries = query.primary_metrics(records)
    if primaries:  # one primary metric: its name in the column key (`best_val_acc`)
        at = [k for k in ("best_epoch", "best_step") if any(query.value(r, k) is not None
                                                              for r in records)]
        keys += [f"best_{primaries[0]}" if len(primaries) == 1 else "best",
                 *(at or ["best_epoch"]), *(f"final_{m}" for m in primaries)]
    held_out = sorted({n for r in records for (n, scope) in r.summaries
                       if scope == "epoch" and n not in primaries and HELD_OUT.search(n)})
    keys += [f"final_{n}" for n in held_out[:MAX_DEFAULT_METRICS]]
    if any(query.train_time(r) is not None for r in records):
        keys.append("train_time")
    return [metric_column(k, records) for k in keys]


def _row(members: list[RunRow], columns: list[Column], grouped: bool) -> Row:
    values: dict[str, Any] = {}
    for c in columns:
        if c.key == "n":
            values[c.key] = len(members)
        elif c.kind == "text":
            values[c.key] = _text_value(members, c.key)
        elif c.kind == "param":
            values[c.key] = _common([spec_value(m, c.param or c.key) for m in members])
        elif grouped:
            values[c.key] = Stat.of([metric(m, c.key) for m in members])
        else:
            values[c.key] = metric(members[0], c.key)
    return Row(values, [m.id for m in members])


def _text_value(members: list[RunRow], key: str) -> Any:
    if key == "run":
        first = members[0].id
        return first if len(members) == 1 else f"{first} +{len(members) - 1}"
    if key in ("tags", "note"):  # tags as one word list: `best seed-check`
        return _common([" ".join(m.tags) if key == "tags" else m.note for m in members])
    vals = [spec_value(m, key) for m in members]
    if key == "status" and len(set(vals)) > 1:
        counts: dict[str, int] = {}
        for v in vals:
            counts[v] = counts.get(v, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in counts.items())
    return _common(vals)


def _common(vals: list[Any]) -> Any:
    """The value when all members agree; else the distinct values, as a list."""
    distinct: list[Any] = []
    for v in vals:
        if v not in distinct:
            distinct.append(v)
    if len(distinct) == 1:
        return distinct[0]
    return _Several(distinct)


class _Several(list[Any]):
    """Members of a group that disagree on a shown value."""


def _sorted_rows(rows: list[Row], columns: list[Column], sort: str | None,
                 by_key: dict[str, Column]) -> list[Row]:
    params = [c for c in columns if c.kind == "param"]
    rows = sorted(rows, key=lambda r: tuple(_order(r.values.get(c.key)) for c in params))
    rows = sorted(rows, key=lambda r: _order(r.values.get("experiment")))
    if not sort:
        return rows
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in {c.key for c in columns}:
        raise UsageError(
            f"cannot sort by '{key}'; choose from the columns shown: "
            f"{', '.join(c.key for c in columns)} (prefix '-' for descending)."
        )
    present = [r for r in rows if _sort_value(r.values.get(key)) is not None]
    missing = [r for r in rows if _sort_value(r.values.get(key)) is None]
    present.sort(key=lambda r: _order(_sort_value(r.values[key])), reverse=desc)
    return present + missing  # empty cells last, either way


def _sort_value(v: Any) -> Any:
    return v.mean if isinstance(v, Stat) else v


def _order(v: Any) -> tuple[int, float, str]:
    """Numbers before strings, empties last, never a TypeError."""
    if isinstance(v, _Several):
        v = v[0]
    if v is None:
        return (2, 0, "")
    if isinstance(v, bool):
        return (1, 0, str(v))
    if isinstance(v, (int, float)):
        return (0, v, "")
    return (1, 0, compact(v) if not isinstance(v, str) else v)


# -- formatting ----------------------------------------------------------------


def render(
    records: list[RunRow],
    fmt: str,
    columns: list[str] | None = None,
    group_by: list[str] | None = None,
    no_group: bool = False,
    sort: str | None = None,
) -> str:
    """The table of `records` as text in `fmt` (one of FORMATS)."""
    check_format(fmt)
    return format_table(build_table(records, columns, group_by, no_group, sort), fmt)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; choose from: {', '.join(FORMATS)}.")
    return fmt


def format_table(table: Table, fmt: str) -> str:
    return {"csv": to_csv, "md": to_markdown, "latex": to_latex, "json": to_json}[
        check_format(fmt)
    ](table)


def write(path: str | Path, text: str) -> Path:
    """Write atomically: a reader sees the old file or the new one."""
    path = Path(path)
    atomic.write_text(path, text)
    return path


def format_for(path: str | Path) -> str | None:
    """The format a file name asks for (`results.tex` -> latex), if any."""
    suffix = Path(path).suffix.lower()
    for fmt, s in SUFFIX.items():
        if s == suffix:
            return fmt
    return None


# CSV: numbers unformatted; a group's metric becomes `k`, `k_std`, `k_n`.
def to_csv(table: Table) -> str:
    header: list[str] = []
    for c in table.columns:
        header.append(c.key)
        if table.grouped and c.is_metric and c.key != "n":
            header += [f"{c.key}_std", f"{c.key}_n"]
    if table.grouped:
        header.append("members")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in table.rows:
        out: list[Any] = []
        for c in table.columns:
            v = row.values.get(c.key)
            if isinstance(v, Stat):
                out += [_raw(_int_mean(v.mean, c)), _raw(v.std), v.n]
            else:
                out.append(_raw(v) if c.kind != "param" else _param_text(v))
        if table.grouped:
            out.append(" ".join(row.members))
        w.writerow(out)
    return buf.getvalue()


def _int_mean(x: float | None, c: Column) -> float | int | None:
    """The mean of a count (parameters, epochs) as an int where it is one."""
    return int(x) if c.kind == "int" and x is not None and x.is_integer() else x


def _raw(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, _Several):
        return _param_text(v)
    return v


def _param_text(v: Any) -> str:
    if isinstance(v, _Several):  # the members disagree: every value, "-" for none
        return " | ".join(compact(x) if x is not None else "-" for x in v)
    return compact(v)


# JSON: typed values; a group's metric is {"mean", "std", "n"}; members listed.
def to_json(table: Table) -> str:
    rows = []
    for row in table.rows:
        obj: dict[str, Any] = {}
        for c in table.columns:
            v = row.values.get(c.key)
            if isinstance(v, Stat):
                obj[c.key] = {"mean": _int_mean(v.mean, c), "std": v.std, "n": v.n}
            elif isinstance(v, _Several):
                obj[c.key] = list(v)
            else:
                obj[c.key] = None if isinstance(v, float) and not math.isfinite(v) else v
        obj["members"] = row.members
        rows.append(obj)
    doc = {
        "grouped": table.grouped,
        "group_by": table.group_by,
        "columns": [
            {"key": c.key, "label": c.label, "kind": c.kind, "best": c.best}
            for c in table.columns
        ],
        "rows": rows,
    }
    return json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"


# Markdown and LaTeX share the human formatting of cells.
def cells(table: Table) -> list[list[str]]:
    """Every cell as display text (no markup), row by row."""
    fmts = {c.key: _number_format(table, c) for c in table.columns}
    out = []
    for row in table.rows:
        line = []
        for c in table.columns:
            line.append(_cell_text(row.values.get(c.key), c, fmts[c.key], row))
        out.append(line)
    return out


def _cell_text(v: Any, c: Column, fmt: NumberFormat, row: Row) -> str:
    if v is None:
        return ""
    if isinstance(v, Stat):
        if v.mean is None:
            return ""
        text = fmt(v.mean)
        if v.std is not None and not (c.kind == "int" and v.std == 0):
            text += f" ± {fmt(v.std, std=True)}"
        group_n = len(row.members)
        if v.n != group_n:
            text += f" (n={v.n})"
        return text
    if c.kind == "param" or c.kind == "text":
        return _param_text(v)
    if c.kind == "count":
        return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # nan, inf: shown as such, never formatted as a number
    return fmt(v)


class NumberFormat(Protocol):
    """A column's number formatter; `std` says the number is a standard deviation."""

    def __call__(self, x: float, std: bool = False) -> str: ...


def _number_format(table: Table, c: Column) -> NumberFormat:
    if c.kind == "acc":
        vals = [_sort_value(r.values.get(c.key)) for r in table.rows]
        big = any(isinstance(v, (int, float)) and v > 1.0 for v in vals)
        digits = 2 if big else 4  # percentages or fractions
        return lambda x, std=False: f"{x:.{digits}f}"
    if c.kind == "loss":
        return lambda x, std=False: f"{x:.4f}" if abs(x) < 100 else f"{x:.1f}"
    if c.kind == "time":
        return lambda x, std=False: _duration(x)
    if c.kind == "int":
        return lambda x, std=False: _int_text(x, std)
    if c.kind == "num":
        return lambda x, std=False: f"{x:.4g}"
    return lambda x, std=False: str(x)


def _int_text(x: float, std: bool) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.1f}"


def _duration(seconds: float) -> str:
    """`0:42`, `12:05`, `1:02:04` (hours:minutes:seconds)."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def best_cells(table: Table, texts: list[list[str]]) -> set[tuple[int, int]]:
    """(row, column) of the best value of each metric column (ties all count)."""
    best: set[tuple[int, int]] = set()
    for j, c in enumerate(table.columns):
        if c.best is None:
            continue
        vals = []
        for i, row in enumerate(table.rows):
            v = _sort_value(row.values.get(c.key))
            if isinstance(v, (int, float)) and math.isfinite(v):
                vals.append((i, v))
        if len(vals) < 2:
            continue
        target = max(v for _, v in vals) if c.best == "max" else min(v for _, v in vals)
        fmt = _number_format(table, c)  # once per column: it looks at every row
        shown = fmt(target)
        winners = {(i, j) for i, v in vals if fmt(v) == shown}
        if len(winners) < len(vals):  # when every row ties, nothing stands out
            best |= winners
    return best


def _aligned_right(c: Column) -> bool:
    return c.is_metric


def to_markdown(table: Table) -> str:
    texts = cells(table)
    bold = best_cells(table, texts)
    header = "| " + " | ".join(_md(c.label) for c in table.columns) + " |"
    rule = "|" + "|".join("---:" if _aligned_right(c) else "---" for c in table.columns) + "|"
    lines = [header, rule]
    for i, line in enumerate(texts):
        out = []
        for j, t in enumerate(line):
            t = _md(t)
            out.append(f"**{t}**" if (i, j) in bold and t else t)
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


_LATEX = {
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
    "±": r"$\pm$", "→": r"$\to$", "×": r"$\times$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    texts = cells(table)
    bold = best_cells(table, texts)
    spec = "".join("r" if _aligned_right(c) else "l" for c in table.columns)
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_caption(table)}}}",
        "\\label{tab:results}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(c.label) for c in table.columns) + " \\\\",
        "\\midrule",
    ]
    for i, line in enumerate(texts):
        out = []
        for j, t in enumerate(line):
            t = latex_escape(t)
            out.append(f"\\textbf{{{t}}}" if (i, j) in bold and t else t)
        lines.append(" & ".join(out) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _caption(table: Table) -> str:
    head = "Results"
    if table.experiments:
        head += " of " + ", ".join(table.experiments)
    if table.grouped:
        return latex_escape(head) + " (mean $\\pm$ sample std over the n runs of a row)"
    return latex_escape(head)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
