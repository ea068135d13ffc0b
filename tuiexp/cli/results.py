"""`tuiexp export`, `tuiexp plot` and `tuiexp report`: results for the report.

Thin: argument parsing here, the work in tuiexp.results (export, plots, report).
Errors are `UsageError`s the main CLI prints as one sentence (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from ..results import export
from ..store import query
from ..store.index import Index, RunRow
from ..store.paths import LogsDir
from ..store.reconcile import reconcile


def add_parsers(sub, common: argparse.ArgumentParser | None = None) -> None:
    """Register `export`, `plot` and `report` on an argparse subparsers object."""
    parents = [common] if common is not None else []

    p = sub.add_parser("export", parents=parents, help="write the results table",
                       description="Write the results table as CSV, Markdown, LaTeX or JSON "
                       "(docs/RESULTS.md).")
    _filters(p)
    p.add_argument("--format", "-f", dest="fmt", metavar="FMT",
                   help=f"one of {', '.join(export.FORMATS)} (default: from -o's suffix, else md)")
    p.add_argument("--columns", action="append", metavar="COL,...",
                   help="the columns to show, in order (see docs/RESULTS.md)")
    p.add_argument("--sort", metavar="COL", help="sort by a column; '-COL' (write --sort=-COL) "
                   "for descending; empty cells last")
    _grouping(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    p.add_argument("--force", action="store_true", help="replace an existing -o file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("plot", help="plot curves, accuracy vs size, confusion",
                       description="Write a figure: PNG, or PDF/SVG by -o's suffix; --svg and "
                       "--pdf add those beside it.")
    kinds = p.add_subparsers(dest="plot_kind", metavar="KIND", required=True)
    c = kinds.add_parser("curves", parents=parents, help="training curves per run or group")
    _filters(c)
    _grouping(c)
    c.add_argument("--metric", action="append", metavar="M,...",
                   help="curve metrics, one panel each; globs like 'val/*' welcome"
                   " (default: the primary metric and the held-out loss)")
    c.add_argument("--x", choices=("step", "epoch"), dest="x",
                   help="the x axis (default, per metric: epoch where the runs log it per "
                   "epoch, else step)")
    _plot_out(c, "curves.png")
    c.set_defaults(func=cmd_plot_curves)
    c = kinds.add_parser("params", parents=parents, help="accuracy against parameter count",
                         description="The primary metric (or --metric) against parameter count "
                         "on a log axis, mean ± std over seeds, one point per group.")
    _filters(c)
    _grouping(c)
    c.add_argument("--metric", default="best",
                   help="a column: best (the primary metric's best, the default), best:NAME,"
                   " NAME (its final value)...")
    c.add_argument("--fit", action="store_true",
                   help="add a least-squares line y = a + b·log10(params) per line")
    _plot_out(c, "params.png")
    c.set_defaults(func=cmd_plot_params)
    c = kinds.add_parser("confusion", parents=parents,
                         help="per-class accuracy and confusion heatmap of one run")
    c.add_argument("run", help="run id")
    c.add_argument("--epoch", type=int, help="default: the last epoch with a confusion matrix")
    _plot_out(c, "confusion.png")
    c.set_defaults(func=cmd_plot_confusion)

    p = sub.add_parser("report", parents=parents, help="write a Markdown report folder",
                       description="Write DIR/report.md with the grouped table, plots and "
                       "each experiment's config.")
    p.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                   help="default: every experiment in the logs")
    p.add_argument("--status", action="append", metavar="S,...", help="only runs with this status")
    p.add_argument("--filter", metavar="TEXT",
                   help=f"only runs this filter selects ({query.FILTER_HELP})")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--svg", action="store_true", help="also write SVG figures")
    p.add_argument("--pdf", action="store_true", help="also write PDF figures")
    p.add_argument("--force", action="store_true", help="replace a report already in DIR")
    p.set_defaults(func=cmd_report)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", "-e", action="append", nargs="+", metavar="NAME",
                   help="only these experiments")
    p.add_argument("--status", action="append", metavar="S,...", help="only runs with this status")
    p.add_argument("--run", action="append", metavar="ID", help="only these runs")
    p.add_argument("--filter", metavar="TEXT",
                   help=f"only runs this filter selects ({query.FILTER_HELP})")


def _grouping(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--group-by", metavar="PARAM,...",
                   help="group by these params instead of 'everything but the seed'")
    g.add_argument("--no-group", action="store_true", help="one row per run")


def _plot_out(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("-o", "--output", default=default, metavar="FILE",
                   help=f"FILE.png, FILE.pdf or FILE.svg (default {default})")
    p.add_argument("--svg", action="store_true", help="also write an SVG beside it")
    p.add_argument("--pdf", action="store_true", help="also write a PDF beside it")


def _list(values) -> list[str] | None:
    """Flatten repeated and comma-separated option values."""
    if not values:
        return None
    if isinstance(values, str):  # an option given once, without action="append"
        values = [values]
    out: list[str] = []
    for v in values:
        for item in v if isinstance(v, list) else [v]:
            out += [x.strip() for x in item.split(",") if x.strip()]
    return out or None


def _logs(args) -> LogsDir:
    return LogsDir.at(getattr(args, "logs", None) or "./logs")


def _records(args, index: Index) -> list[RunRow]:
    """The runs the filters select, read through the one query API."""
    query.index_new_directories(index)
    everything = reconcile(index, query.load_runs(index))
    recs = export.select(everything, _list(getattr(args, "experiment", None)),
                         _list(getattr(args, "status", None)))
    runs = [_resolve(_logs(args), r) for r in _list(getattr(args, "run", None)) or []]
    if runs:
        known = {r.id for r in everything}
        for rid in runs:
            if rid not in known:
                raise UsageError(f"no run '{rid}' in {_logs(args).runs}; `tuiexp ls` lists them.")
        recs = [r for r in recs if r.id in runs]
    return query.filter_rows(recs, getattr(args, "filter", None))


def cmd_export(args) -> int:
    if args.output and not args.force and Path(args.output).exists():
        raise UsageError(f"{args.output} exists; give another file, or --force to replace it.")
    with Index(_logs(args)) as index:
        recs = _records(args, index)
    fmt = args.fmt or (export.format_for(args.output) if args.output else None) or "md"
    text = export.render(recs, fmt, columns=_list(args.columns), group_by=_list(args.group_by),
                         no_group=args.no_group, sort=args.sort)
    if args.output:
        path = export.write(args.output, text)
        print(f"wrote {path} ({len(recs)} runs)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_plot_curves(args) -> int:
    from ..results import plots, report

    plots.require()  # before any work
    with Index(_logs(args)) as index:
        recs = _records(args, index)
        asked = _list(args.metric)
        by_scope = {scope: index.metric_names(scope) for scope in ("epoch", "step")}
        known = by_scope[args.x] if args.x else sorted({*by_scope["epoch"], *by_scope["step"]})
        names = query.expand_columns(asked, known) if asked else report.curve_metrics(recs)
        where = {"epoch": " at an epoch", "step": " at a step", None: ""}[args.x]
        for name in names:
            if name not in known:
                other = next((s for s in ("step", "epoch") if s != args.x and name in by_scope[s]), None)
                hint = f" (it is logged per {other}: --x {other} plots it)" if args.x and other else ""
                raise UsageError(f"no run has logged '{name}'{where}{hint}; choose from: "
                                 f"{', '.join(known) or '(none yet)'}.")
        if asked and not names:
            raise UsageError(f"no metric{where} matches {', '.join(asked)}; "
                             f"choose from: {', '.join(known) or '(none yet)'}.")
        scopes = {n: args.x for n in names} if args.x else query.series_scopes(recs, names)
        query.attach_curves(index, recs, names, scopes)
        everything = query.with_ancestors(index, recs, names, scopes)
    fig = plots.curves(recs, names, group_by=_list(args.group_by), no_group=args.no_group,
                       all_records=everything, scopes=scopes)
    return _saved(plots.save(fig, args.output, args.svg, args.pdf))


def cmd_plot_params(args) -> int:
    from ..results import plots

    plots.require()  # before any work

    plots.outputs(args.output)  # a bad suffix is said before any work
    with Index(_logs(args)) as index:
        recs = _records(args, index)
    fig = plots.params_plot(recs, args.metric, group_by=_list(args.group_by),
                            no_group=args.no_group, fit=args.fit)
    return _saved(plots.save(fig, args.output, args.svg, args.pdf))


def _resolve(logs, ref: str) -> str:
    """A full run id from a unique prefix or suffix, as every command takes."""
    from ..queue.client import Client

    with Client(logs, autostart=False) as client:
        return client.resolve(ref)


def cmd_plot_confusion(args) -> int:
    from ..results import plots

    plots.require()  # before any work

    logs = _logs(args)
    run_id = _resolve(logs, args.run)
    with Index(logs) as index:
        ev = plots.pick_confusion(index, run_id, args.epoch)
    return _saved(plots.save(plots.confusion_plot(ev, run_id), args.output, args.svg, args.pdf))


def cmd_report(args) -> int:
    from ..results import report

    logs = _logs(args)
    config = Path(getattr(args, "config", None) or "./experiments.toml")
    with Index(logs) as index:
        runs = query.filter_rows(query.load_runs(index), args.filter)
        path = report.write_report(runs, index, Path(args.output),
                                   experiments=args.experiments or None,
                                   statuses=_list(args.status), config_path=config, svg=args.svg,
                                   pdf=args.pdf, force=args.force)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _saved(paths: list[Path]) -> int:
    for p in paths:
        print(f"wrote {p}", file=sys.stderr)
    return 0
