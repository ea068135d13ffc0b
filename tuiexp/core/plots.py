"""Figures for reports: training curves, accuracy against parameter count, and
per-class accuracy with a confusion heatmap (docs/RESULTS.md).

matplotlib is imported inside the functions only, so importing this module
(as the UI does) costs nothing. Figures are `matplotlib.figure.Figure`
objects, never pyplot state, so they can be drawn from a worker thread; the
Agg canvas renders them.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from . import atomic
from .errors import UsageError
from .export import metric as metric_of
from .grouping import Group, Stat, compact, group, run_params, varying_keys
from .index import Index, RunRow
from .query import split_column

Series = list[tuple[int, float]]


# -- saving --------------------------------------------------------------------


def save(fig: Any, out: str | Path, svg: bool = False) -> list[Path]:
    """Write `fig` as PNG at `out` (and SVG beside it), atomically; the paths written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    out = Path(out)
    if out.suffix.lower() != ".png":
        out = out.with_suffix(".png")
    written = []
    for path, fmt in [(out, "png"), *([(out.with_suffix(".svg"), "svg")] if svg else [])]:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight",
                    metadata={"Software": None} if fmt == "png" else {"Date": None})
        atomic.write_bytes(path, buf.getvalue())
        written.append(path)
    return written


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


# -- series --------------------------------------------------------------------


def own_series(rec: RunRow, metric: str) -> Series:
    """A run's finite epoch-level points of `metric` (its `curves`, attached by the query)."""
    return [(x, y) for x, y in rec.curves.get(metric, ()) if _finite(y)]


def lineage(rec: RunRow, by_id: dict[str, RunRow], metric: str, depth: int = 0) -> Series:
    """The points a fork inherits: its ancestors' values up to its fork epoch."""
    parent = by_id.get(rec.parent or "")
    if parent is None or rec.fork_epoch is None or depth > 50:
        return []
    full = lineage(parent, by_id, metric, depth + 1) + own_series(parent, metric)
    return [(x, y) for x, y in full if x <= rec.fork_epoch]


def mean_series(series: list[Series]) -> tuple[list[int], list[float], list[float]]:
    """Per epoch: mean over the series that have it, and sample std (0 where n < 2)."""
    by_x: dict[int, list[float]] = {}
    for s in series:
        for x, y in s:
            by_x.setdefault(x, []).append(y)
    xs = sorted(by_x)
    stats = [Stat.of(by_x[x]) for x in xs]
    return xs, [s.mean or 0.0 for s in stats], [s.std or 0.0 for s in stats]


def labels_for(groups: list[Group], grouped: bool) -> list[str]:
    """A short legend entry per group: the params that tell the groups apart."""
    recs = [m for g in groups for m in g.members]
    flats = [run_params(r) for r in recs]
    keys = [k for k in varying_keys(flats) if not (grouped and k == "seed")]
    many = len({r.experiment for r in recs}) > 1
    out = []
    for g in groups:
        first = g.members[0]
        if not grouped:
            out.append(first.id)
            continue
        flat = run_params(first)
        parts = [f"{k}={_short(compact(flat[k]))}" for k in keys if flat.get(k) is not None]
        if first.fork_epoch is not None:
            parts.append(f"fork@{first.fork_epoch}")
        text = ", ".join(parts) or first.experiment
        if many and parts:
            text = f"{first.experiment}: {text}"
        if len(g.members) > 1:
            text += f" (n={len(g.members)})"
        out.append(text)
    return out


# -- curves --------------------------------------------------------------------


def curves(
    records: list[RunRow],
    metrics: list[str] | tuple[str, ...] = ("val_acc", "val_loss"),
    group_by: list[str] | None = None,
    no_group: bool = False,
    all_records: list[RunRow] | None = None,
) -> Any:
    """One panel per metric, x = epoch; a line per run, or per group (mean, std band).

    A fork's line starts at its parent's value at the fork epoch; where the parent
    is not plotted itself, the inherited prefix is drawn dotted.
    """
    if not metrics:
        raise UsageError("no metric to plot.")
    records = sorted(records, key=lambda r: (r.experiment, r.created, r.id))
    if not any(r.curves.get(m) for r in records for m in metrics):
        raise UsageError(f"none of these runs has logged {', '.join(metrics)} at an epoch yet;"
                         " nothing to plot.")
    by_id = {r.id: r for r in (all_records or records)}
    shown = {r.id for r in records}
    groups = [g for g in group(records, group_by, no_group)
              if any(m.curves.get(k) for m in g.members for k in metrics)]
    labels = labels_for(groups, not no_group)
    fig = _figure(5.0 * len(metrics), 3.6 + 0.22 * ((len(groups) + 1) // 2))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colors = _colors(len(groups))
    for ax, metric in zip(axes, metrics, strict=True):
        for g, label, color in zip(groups, labels, colors, strict=True):
            _draw_group(ax, g, metric, by_id, shown, label, color)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(2, max(1, len(names))),
               fontsize="small", frameon=False)
    return fig


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _draw_group(ax: Any, g: Group, metric: str, by_id: dict[str, RunRow], shown: set[str],
                label: str, color: Any) -> None:
    xs, ys, sd = mean_series([own_series(m, metric) for m in g.members])
    prefixes = [lineage(m, by_id, metric) for m in g.members]
    px, py, psd = mean_series([p for p in prefixes if p])
    if px:
        parent_shown = all(m.parent in shown for m in g.members)
        if not parent_shown:  # the inherited part, drawn faintly
            ax.plot(px, py, color=color, linestyle=":", linewidth=1.2)
        # the fork continues from its parent's point at the fork epoch
        xs, ys, sd = [px[-1], *xs], [py[-1], *ys], [psd[-1], *sd]
    if not xs:
        return
    ax.plot(xs, ys, color=color, label=label, linewidth=1.6, marker="o" if len(xs) < 3 else None,
            markersize=3)
    if len(g.members) > 1 and any(sd):
        lo = [y - s for y, s in zip(ys, sd, strict=True)]
        hi = [y + s for y, s in zip(ys, sd, strict=True)]
        ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# -- accuracy against parameter count -------------------------------------------


def params_plot(
    records: list[RunRow],
    metric: str = "best",
    group_by: list[str] | None = None,
    no_group: bool = False,
) -> Any:
    """One point per group at its parameter count (log x), mean ± std as error bar;
    `metric` is a column spec (`best`, `best:val/acc`, `final_val_acc`...)."""
    names = sorted({n for r in records for n in r.metric_names()})
    if metric not in ("best", "num_params", "epochs_run", "train_time") and \
            split_column(metric)[1] not in names:
        raise UsageError(f"no metric '{split_column(metric)[1]}' in these runs; choose from: "
                         f"best, {', '.join(names) or '(none logged yet)'} (or best:NAME).")
    records = sorted(records, key=lambda r: (r.experiment, r.created, r.id))
    groups = group(records, group_by, no_group)
    labels = labels_for(groups, not no_group)
    points = []
    for g, label in zip(groups, labels, strict=True):
        x = Stat.of([m.num_params for m in g.members])
        y = Stat.of([metric_of(m, metric) for m in g.members])
        if x.mean is not None and y.mean is not None and x.mean > 0:
            points.append((g.members[0].experiment, label, x.mean, y.mean, y.std or 0.0))
    if not points:
        raise UsageError(
            f"no run has both a parameter count (a meta event's num_params) and {metric}."
        )
    fig = _figure(6.0, 4.2)
    ax = fig.subplots()
    exps = sorted({p[0] for p in points})
    for exp, color in zip(exps, _colors(len(exps)), strict=True):
        pts = sorted((p for p in points if p[0] == exp), key=lambda p: p[2])
        ax.errorbar([p[2] for p in pts], [p[3] for p in pts], yerr=[p[4] for p in pts],
                    fmt="o-", color=color, capsize=3, label=exp, linewidth=1, markersize=4)
        if len(points) <= 20:
            for _, label, at_x, at_y, _ in pts:
                ax.annotate(label, (at_x, at_y), fontsize="x-small", xytext=(4, 4),
                            textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(_axis_label(metric, records))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


# -- confusion -----------------------------------------------------------------


def pick_confusion(index: Index, run_id: str, epoch: int | None = None) -> dict[str, Any]:
    """A run's confusion matrix at `epoch` (default: the latest), from the index."""
    found = index.confusion_epochs(run_id)
    if not found:
        raise UsageError(f"run {run_id} has logged no confusion matrix.")
    if epoch is not None and epoch not in found:
        raise UsageError(
            f"run {run_id} has no confusion matrix at epoch {epoch}; "
            f"choose from: {', '.join(map(str, found))}."
        )
    ev = index.confusion(run_id, epoch)
    assert ev is not None
    return ev


def per_class_accuracy(matrix: list[list[float]]) -> list[float | None]:
    """Recall per true class (row): diagonal over row sum; None for an empty row."""
    out: list[float | None] = []
    for i, row in enumerate(matrix):
        total = sum(row)
        out.append(row[i] / total if total else None)
    return out


def confusion_plot(ev: dict[str, Any], run_id: str) -> Any:
    """Per-class accuracy bars beside the row-normalised confusion heatmap of one
    confusion event (`pick_confusion`)."""
    matrix = [[float(x) for x in row] for row in ev["matrix"]]
    n = len(matrix)
    labels = [str(x) for x in (ev.get("labels") or range(n))][:n]
    acc = per_class_accuracy(matrix)
    norm = [[x / s if (s := sum(row)) else 0.0 for x in row] for row in matrix]
    side = min(14.0, 3.0 + 0.35 * n)
    fig = _figure(side * 2.0, side)
    ax_bar, ax_map = fig.subplots(1, 2)
    ys = list(range(n))
    ax_bar.barh(ys, [a if a is not None else 0.0 for a in acc], color="tab:blue")
    ax_bar.set_xlim(0, 1)
    ax_bar.invert_yaxis()
    ax_bar.set_xlabel("accuracy (recall)")
    ax_bar.set_title(f"per-class accuracy, epoch {ev['epoch']}")
    im = ax_map.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax_map.set_xlabel("predicted")
    ax_map.set_ylabel("true")
    ax_map.set_title(f"{run_id}: confusion (row-normalised)")
    fig.colorbar(im, ax=ax_map, shrink=0.8)
    step = max(1, math.ceil(n / 40))  # keep tick labels readable for 100+ classes
    ticks = list(range(0, n, step))
    for ax in (ax_bar,):
        ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize="small")
    ax_map.set_yticks(ticks, [labels[i] for i in ticks], fontsize="small")
    ax_map.set_xticks(ticks, [labels[i] for i in ticks], fontsize="small", rotation=90)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                ax_map.text(j, i, f"{int(matrix[i][j])}", ha="center", va="center",
                            fontsize="x-small", color="white" if norm[i][j] > 0.5 else "black")
    return fig


def _axis_label(column: str, records: list[RunRow]) -> str:
    if column == "best":
        names = {r.metric for r in records if r.metric}
        return f"best {names.pop()}" if len(names) == 1 else "best (primary metric)"
    agg, name = split_column(column)
    return name if agg == "last" else f"{agg} {name}"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
