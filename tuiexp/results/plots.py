"""Figures for reports: training curves, accuracy against parameter count, and
per-class accuracy with a confusion heatmap (docs/RESULTS.md).

matplotlib is imported inside the functions only, so importing this module
(as the UI does) costs nothing. Figures are `matplotlib.figure.Figure`
objects, never pyplot state, so they can be drawn from a worker thread; the
Agg canvas renders them.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store import atomic, query
from ..store.index import Index, RunRow
from ..store.query import compact, run_params, split_column
from ..store.spec import INTERNAL_PARAMS
from .export import metric as metric_of
from .grouping import Group, Stat, group, varying_keys

Series = list[tuple[int, float]]


# -- saving and style ----------------------------------------------------------

#: what `-o`'s suffix may be; --svg / --pdf add those formats beside it
FORMATS = ("png", "pdf", "svg")
#: one look for every figure (a paper's column: small, readable type, no chart junk);
#: TrueType fonts in PDF so that journals accept it and text stays selectable
STYLE: dict[str, Any] = {
    "font.size": 9.0, "axes.labelsize": 9.5, "axes.titlesize": 10.0, "legend.fontsize": 8.0,
    "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6,
    "lines.linewidth": 1.6, "lines.markersize": 4.5, "legend.frameon": False,
    "pdf.fonttype": 42, "savefig.dpi": 150,
}


def require() -> Any:
    """matplotlib, imported; where it cannot be (installed before it became a base
    dependency, `--no-deps`, a broken wheel), one sentence saying how to get it."""
    try:
        import matplotlib
    except ImportError as e:
        raise UsageError(f"plots need matplotlib, which cannot be imported here ({e}); "
                         "`pip install -e .` in tuiexp's folder (or `pip install matplotlib`) "
                         "installs it.") from None
    return matplotlib


def styled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Draw inside matplotlib's rc_context(STYLE), so every figure looks the same."""
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        matplotlib = require()

        rc: Any = STYLE  # matplotlib types the keys as a Literal of every rc name
        with matplotlib.rc_context(rc):
            return fn(*args, **kwargs)
    return inner


def outputs(out: str | Path, svg: bool = False, pdf: bool = False) -> list[tuple[Path, str]]:
    """The files a figure goes to: `out` in the format its suffix names (none: .png), and
    SVG / PDF beside it when asked; a suffix that is no figure format is a UsageError."""
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if not fmt:
        out, fmt = out.with_suffix(".png"), "png"
    if fmt not in FORMATS:
        raise UsageError(f"cannot write a figure as {out.name}: end the file name in "
                         f"{', '.join('.' + f for f in FORMATS)}.")
    found = [(out, fmt)]
    for extra, wanted in (("svg", svg), ("pdf", pdf)):
        if wanted and extra != fmt:
            found.append((out.with_suffix("." + extra), extra))
    return found


@styled
def save(fig: Any, out: str | Path, svg: bool = False, pdf: bool = False) -> list[Path]:
    """Write `fig` to `out` (PNG unless its suffix is .pdf or .svg), and SVG / PDF beside
    it when asked, each atomically and without timestamps (the same figure, the same
    bytes); the paths written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    written = []
    for path, fmt in outputs(out, svg, pdf):
        buf = io.BytesIO()
        meta: dict[str, Any] = ({"Software": None} if fmt == "png" else
                                {"CreationDate": None} if fmt == "pdf" else {"Date": None})
        fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=meta)
        atomic.write_bytes(path, buf.getvalue())
        written.append(path)
    return written


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def si(x: float) -> str:
    """A count as a paper writes it: 999, 1k, 12.3k, 350k, 1M."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


# -- series --------------------------------------------------------------------


def own_series(rec: RunRow, metric: str) -> Series:
    """A run's finite points of `metric` (its `curves`, attached by the query)."""
    return [(x, y) for x, y in rec.curves.get(metric, ()) if _finite(y)]


def lineage(rec: RunRow, by_id: dict[str, RunRow], metric: str, depth: int = 0,
            scope: str = "epoch") -> Series:
    """The points a fork inherits: its ancestors' values up to its fork epoch (by step:
    those before the fork's own first step)."""
    parent = by_id.get(rec.parent or "")
    if parent is None or rec.fork_epoch is None or depth > 50:
        return []
    full = lineage(parent, by_id, metric, depth + 1, scope) + own_series(parent, metric)
    if scope == "epoch":
        return [(x, y) for x, y in full if x <= rec.fork_epoch]
    own = own_series(rec, metric)
    return [(x, y) for x, y in full if own and x < own[0][0]]


def mean_series(series: list[Series]) -> tuple[list[int], list[float], list[float]]:
    """Per epoch: mean over the series that have it, and sample std (0 where n < 2)."""
    by_x: dict[int, list[float]] = {}
    for s in series:
        for x, y in s:
            by_x.setdefault(x, []).append(y)
    xs = sorted(by_x)
    stats = [Stat.of(by_x[x]) for x in xs]
    return xs, [s.mean or 0.0 for s in stats], [s.std or 0.0 for s in stats]


#: how a legend names a param when its own name is long
LEGEND_NAMES = {"param_budget": "budget"}


def legend_keys(recs: list[RunRow], grouped: bool) -> list[str]:
    """The params a legend names: those that differ between the runs, but the seed when
    seeds are grouped, bookkeeping keys, and the model_args a `param_budget` sized."""
    keys = [k for k in varying_keys([run_params(r) for r in recs])
            if k not in INTERNAL_PARAMS and not (grouped and k == "seed")]
    if "param_budget" in keys:  # the widths follow from the budget: the budget names them
        keys = [k for k in keys if not k.startswith("model_args")]
    return keys


def keys_by_experiment(recs: list[RunRow], grouped: bool) -> dict[str, list[str]]:
    """The legend keys per experiment: with several experiments, what differs within
    each (the experiment's name tells them apart, so a param that differs only between
    experiments is not repeated on every entry)."""
    names = sorted({r.experiment for r in recs})
    if len(names) == 1:
        return {names[0]: legend_keys(recs, grouped)}
    return {n: legend_keys([r for r in recs if r.experiment == n], grouped) for n in names}


def legend_value(key: str, value: Any) -> str | None:
    """A param's value in a legend; None for an empty one (a default `schedule = []`
    says nothing the other entries do not)."""
    if value is None or value == [] or value == {} or value == "":
        return None
    if key == "param_budget" and isinstance(value, (int, float)):
        return si(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return _short(" → ".join(_phase_text(v) for v in value), 40)  # a schedule's phases
    return _short(compact(value))


def _phase_text(phase: dict[str, Any]) -> str:
    """`adam lr=0.001 epochs=5`: the optimizer and scheduler by name, the rest as k=v."""
    named = [compact(phase[k]) for k in ("optimizer", "scheduler") if k in phase]
    rest = [f"{k}={compact(v)}" for k, v in phase.items() if k not in ("optimizer", "scheduler")]
    return " ".join(named + rest) or "default"


def labels_for(groups: list[Group], grouped: bool) -> list[str]:
    """A short legend entry per group: the params that tell the groups apart."""
    recs = [m for g in groups for m in g.members]
    by_exp = keys_by_experiment(recs, grouped)
    many = len(by_exp) > 1
    out = []
    for g in groups:
        first = g.members[0]
        if not grouped:
            out.append(first.id)
            continue
        flat = run_params(first)
        parts = [f"{LEGEND_NAMES.get(k, k)}={v}" for k in by_exp[first.experiment]
                 if (v := legend_value(k, flat.get(k))) is not None]
        if first.fork_epoch is not None:
            parts.append(f"fork@{first.fork_epoch}")
        text = ", ".join(parts) or first.experiment
        if many and parts:
            text = f"{first.experiment}: {text}"
        if len(g.members) > 1:
            text += f" (n={len(g.members)})"
        out.append(text)
    return out


def _ordered_key(groups: list[Group], keys: list[str]) -> str | None:
    """The one numeric param the groups differ in (a budget, a dropout sweep), if that
    is all: its values get a sequential colour map, small to large."""
    if len(keys) != 1 or len({g.members[0].experiment for g in groups}) > 1:
        return None
    values = [run_params(g.members[0]).get(keys[0]) for g in groups]
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return keys[0] if ok and len(set(values)) > 2 else None


def group_colors(groups: list[Group], keys: list[str]) -> list[Any]:
    """A colour per group: ordered by value along viridis when the groups differ in one
    number only (a trend reads at a glance), else the qualitative tab10/tab20."""
    key = _ordered_key(groups, keys)
    if key is None:
        return _colors(len(groups))
    from matplotlib import colormaps

    values = [float(run_params(g.members[0])[key]) for g in groups]
    ranks = {v: i for i, v in enumerate(sorted(set(values)))}
    top = max(1, len(ranks) - 1)
    return [colormaps["viridis"](0.05 + 0.8 * ranks[v] / top) for v in values]


# -- curves --------------------------------------------------------------------


@styled
def curves(
    records: list[RunRow],
    metrics: list[str] | tuple[str, ...] = ("val_acc", "val_loss"),
    group_by: list[str] | None = None,
    no_group: bool = False,
    all_records: list[RunRow] | None = None,
    scopes: dict[str, str] | None = None,
) -> Any:
    """One panel per metric, x = its scope (`scopes`, as the curves were attached:
    epoch, or step for a metric logged per step only); a line per run, or per group
    (mean, std band).

    A fork's line starts at its parent's value at the fork epoch; where the parent
    is not plotted itself, the inherited prefix is drawn dotted.
    """
    if not metrics:
        raise UsageError("no metric to plot.")
    records = sorted(records, key=lambda r: (r.experiment, r.created, r.id))
    scopes = scopes if scopes is not None else query.series_scopes(records, metrics)
    if not any(r.curves.get(m) for r in records for m in metrics):
        at = " or ".join(sorted({f"at {'an epoch' if scopes[m] == 'epoch' else 'a step'}"
                                 for m in metrics}))
        raise UsageError(f"none of these runs has logged {', '.join(metrics)} {at} yet;"
                         " nothing to plot.")
    by_id = {r.id: r for r in (all_records or records)}
    shown = {r.id for r in records}
    groups = [g for g in group(records, group_by, no_group)
              if any(m.curves.get(k) for m in g.members for k in metrics)]
    keys = legend_keys([m for g in groups for m in g.members], not no_group)
    labels = labels_for(groups, not no_group)
    colors = group_colors(groups, keys) if not no_group else _colors(len(groups))
    ncols = 1 if max(map(len, labels), default=0) > 45 or len(metrics) == 1 else 2
    fig = _figure(max(4.5, 4.2 * len(metrics)), 3.2 + 0.2 * math.ceil(len(groups) / ncols))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for g, label, color in zip(groups, labels, colors, strict=True):
            _draw_group(ax, g, metric, by_id, shown, label, color, scopes[metric])
        ax.set_xlabel(scopes[metric])
        ax.set_ylabel(metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(ncols, max(1, len(names))))
    return fig


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _draw_group(ax: Any, g: Group, metric: str, by_id: dict[str, RunRow], shown: set[str],
                label: str, color: Any, scope: str) -> None:
    xs, ys, sd = mean_series([own_series(m, metric) for m in g.members])
    prefixes = [lineage(m, by_id, metric, scope=scope) for m in g.members]
    px, py, psd = mean_series([p for p in prefixes if p])
    if px:
        parent_shown = all(m.parent in shown for m in g.members)
        if not parent_shown:  # the inherited part, drawn faintly
            ax.plot(px, py, color=color, linestyle=":", linewidth=1.2)
        # the fork continues from its parent's point at the fork epoch (or last step before it)
        xs, ys, sd = [px[-1], *xs], [py[-1], *ys], [psd[-1], *sd]
    if not xs:
        return
    ax.plot(xs, ys, color=color, label=label, marker="o" if len(xs) < 3 else None, markersize=3)
    if len(g.members) > 1 and any(sd):
        lo = [y - s for y, s in zip(ys, sd, strict=True)]
        hi = [y + s for y, s in zip(ys, sd, strict=True)]
        ax.fill_between(xs, lo, hi, color=color, alpha=0.18, linewidth=0)


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# -- accuracy against parameter count -------------------------------------------


#: params that say how big a model is: a params plot's x axis shows them already
SIZE_KEYS = ("param_budget", "model_args")


@dataclass(frozen=True)
class Point:
    """One group of a params plot: mean parameter count, the metric's mean ± std, and the
    short label written beside it."""

    x: float
    y: float
    std: float
    n: int
    label: str


@styled
def params_plot(
    records: list[RunRow],
    metric: str = "best",
    group_by: list[str] | None = None,
    no_group: bool = False,
    fit: bool = False,
) -> Any:
    """The metric against parameter count on a log x axis (1k, 10k, 100k, 1M): one point
    per group (mean ± std over its seeds as error bar), labelled with its budget (else its
    count), one line per experiment and per value of the params that are not about size;
    `fit` adds a least-squares line y = a + b·log10(N) per line. `metric` is a column spec
    (`best`, `best:val/acc`, `final_val_acc`...)."""
    names = sorted({n for r in records for n in r.metric_names()})
    if metric not in ("best", "num_params", "epochs_run", "train_time") and \
            split_column(metric)[1] not in names:
        raise UsageError(f"no metric '{split_column(metric)[1]}' in these runs; choose from: "
                         f"best, {', '.join(names) or '(none logged yet)'} (or best:NAME).")
    lines = params_series(records, metric, group_by, no_group)
    if not lines:
        raise UsageError(
            f"no run has both a parameter count (a meta event's num_params) and {metric}."
        )
    fig = _figure(5.2, 3.6 + 0.2 * (len(lines) + (len(lines) if fit else 0)))
    ax = fig.subplots()
    colors = _colors(len(lines))
    labelled = sum(len(p) for p in lines.values()) <= 40
    legend: list[tuple[Any, str]] = []
    for (name, pts), color in zip(lines.items(), colors, strict=True):
        text = name or _axis_label(metric, records)
        # with a fit, the points stand alone and the fitted line joins them
        legend.append((_draw_points(ax, pts, text, color, labelled and len(pts) > 1, not fit), text))
        if fit and (drawn := _draw_fit(ax, pts, color)) is not None:
            legend.append(drawn)
    _log_count_axis(ax, [p.x for pts in lines.values() for p in pts])
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel(_axis_label(metric, records))
    ax.margins(y=0.12)  # room for the labels above the top points
    if len(legend) > 1:
        fig.legend([h for h, _ in legend], [t for _, t in legend], loc="outside lower center",
                   ncols=1 if len(legend) > 4 or max(len(t) for _, t in legend) > 40 else 2)
    return fig


def params_series(records: list[RunRow], metric: str = "best", group_by: list[str] | None = None,
                  no_group: bool = False) -> dict[str, list[Point]]:
    """The points of a params plot by line: a line per experiment and per value of the
    varying params that are not about size (its legend text; "" when only one line)."""
    records = sorted(records, key=lambda r: (r.experiment, r.created, r.id))
    groups = group(records, group_by, no_group)
    recs = [m for g in groups for m in g.members]
    by_exp = {e: [k for k in keys if not k.startswith(SIZE_KEYS)]
              for e, keys in keys_by_experiment(recs, not no_group).items()}
    many = len(by_exp) > 1
    lines: dict[str, list[Point]] = {}
    for g in groups:
        x = Stat.of([m.num_params for m in g.members])
        y = Stat.of([metric_of(m, metric) for m in g.members])
        if x.mean is None or y.mean is None or x.mean <= 0:
            continue
        first = run_params(g.members[0])
        parts = [f"{LEGEND_NAMES.get(k, k)}={v}" for k in by_exp[g.members[0].experiment]
                 if (v := legend_value(k, first.get(k))) is not None]
        if no_group and not parts:
            parts = [g.members[0].id]
        name = ", ".join(parts)
        if many:
            name = f"{g.members[0].experiment}: {name}" if name else g.members[0].experiment
        budget = first.get("param_budget")
        label = si(budget) if isinstance(budget, (int, float)) and not no_group else si(x.mean)
        lines.setdefault(name, []).append(Point(x.mean, y.mean, y.std or 0.0, y.n, label))
    return {k: sorted(v, key=lambda p: p.x) for k, v in lines.items()}


def _draw_points(ax: Any, pts: list[Point], name: str, color: Any, labelled: bool,
                 joined: bool) -> Any:
    """Mean ± std as error bars (and a faint band), each point's label above its bar;
    the legend handle."""
    xs, ys, sd = [p.x for p in pts], [p.y for p in pts], [p.std for p in pts]
    handle = ax.errorbar(xs, ys, yerr=sd, fmt="o-" if joined else "o", color=color, capsize=3,
                         elinewidth=1, linewidth=1.2, label=name, zorder=3)
    if joined and len(pts) > 1 and any(sd):  # a band between joined points only
        ax.fill_between(xs, [y - s for y, s in zip(ys, sd, strict=True)],
                        [y + s for y, s in zip(ys, sd, strict=True)], color=color, alpha=0.12,
                        linewidth=0)
    if labelled:
        for p in pts:
            ax.annotate(p.label, (p.x, p.y + p.std), xytext=(0, 4), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, color="0.25")
    return handle


def fit_log_linear(pts: list[Point]) -> tuple[float, float] | None:
    """Least squares y = a + b·log10(N) over the points (None below two sizes)."""
    xs = [math.log10(p.x) for p in pts]
    if len(set(xs)) < 2:
        return None
    mx, my = math.fsum(xs) / len(xs), math.fsum(p.y for p in pts) / len(pts)
    b = math.fsum((x - mx) * (p.y - my) for x, p in zip(xs, pts, strict=True)) / \
        math.fsum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def _draw_fit(ax: Any, pts: list[Point], color: Any) -> tuple[Any, str] | None:
    """The fitted line over the points' range, and its legend entry (None: one size only)."""
    ab = fit_log_linear(pts)
    if ab is None:
        return None
    a, b = ab
    lo, hi = math.log10(pts[0].x), math.log10(pts[-1].x)
    xs = [10 ** (lo + (hi - lo) * i / 50) for i in range(51)]
    text = f"fit: {a:.3g} {'+' if b >= 0 else '−'} {abs(b):.3g}·log10(N)".replace("-", "−")
    (line,) = ax.plot(xs, [a + b * math.log10(x) for x in xs], linestyle="--", linewidth=1.2,
                      color=color, alpha=0.9, label=text)
    return line, text


def _log_count_axis(ax: Any, xs: list[float]) -> None:
    """Log x axis with ticks a reader reads (1k, 10k, 100k, 1M; also 2 and 5 between when
    the data span less than two decades), and room either side for the point labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = min(xs), max(xs)
    span = math.log10(hi) - math.log10(lo)
    pad = 10 ** max(0.15, 0.08 * span)
    ax.set_xlim(lo / pad, hi * pad)
    subs = (1.0,) if span >= 2 else (1.0, 2.0, 5.0)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: si(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)


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


@styled
def confusion_plot(ev: dict[str, Any], run_id: str) -> Any:
    """Per-class accuracy bars beside the row-normalised confusion heatmap of one
    confusion event (`pick_confusion`)."""
    matrix = [[float(x) for x in row] for row in ev["matrix"]]
    n = len(matrix)
    labels = [str(x) for x in (ev.get("labels") or range(n))][:n]
    acc = per_class_accuracy(matrix)
    norm = [[x / s if (s := sum(row)) else 0.0 for x in row] for row in matrix]
    side = min(14.0, 3.0 + 0.35 * n)
    fig = _figure(side * 1.9, side)
    ax_bar, ax_map = fig.subplots(1, 2, width_ratios=[1, 1.15])
    ys = list(range(n))
    ax_bar.barh(ys, [a if a is not None else 0.0 for a in acc], color="tab:blue", height=0.6)
    ax_bar.grid(False, axis="y")  # the class rows need no horizontal rules
    ax_bar.set_xlim(0, 1)
    ax_bar.invert_yaxis()
    ax_bar.set_xlabel("accuracy (recall)")
    ax_bar.set_title(f"per-class accuracy, epoch {ev['epoch']}")
    im = ax_map.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax_map.grid(False)  # grid lines would cut through the cells
    ax_map.spines[["top", "right"]].set_visible(True)
    ax_map.set_xlabel("predicted")
    ax_map.set_ylabel("true")
    ax_map.set_title(f"{run_id}: confusion (row-normalised)")
    fig.colorbar(im, ax=ax_map, shrink=0.8)
    step = max(1, math.ceil(n / 40))  # keep tick labels readable for 100+ classes
    ticks = list(range(0, n, step))
    for ax in (ax_bar,):
        ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize="small")
    ax_map.set_yticks(ticks, [labels[i] for i in ticks], fontsize="small")
    long = n > 8 or max((len(x) for x in labels), default=0) > 6
    ax_map.set_xticks(ticks, [labels[i] for i in ticks], fontsize="small", rotation=90 if long else 0)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                ax_map.text(j, i, f"{int(matrix[i][j])}", ha="center", va="center",
                            fontsize="small" if n <= 8 else "x-small",
                            color="white" if norm[i][j] > 0.5 else "black")
    return fig


def _axis_label(column: str, records: list[RunRow]) -> str:
    if column == "best":
        names = {r.metric for r in records if r.metric}
        return f"best {names.pop()}" if len(names) == 1 else "best (primary metric)"
    agg, name = split_column(column)
    return name if agg == "last" else f"{agg} {name}"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
