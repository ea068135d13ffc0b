"""The commands of runs: check, run, ls, show, fork, resume, cancel, wait, reindex."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..config import loader, values
from ..config.params import defaults_for
from ..errors import TuiexpError, UsageError
from ..queue.client import Client
from ..search import studies
from ..store import health, lock, query
from ..store.events import TERMINAL
from ..store.index import Index, RunRow
from ..store.ingest import cores
from ..store.metrics import KeySummary, fmt_value, fmt_values
from ..store.paths import LogsDir
from ..store.query import ALL
from ..store.reconcile import reconcile
from ..store.text import printable


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the run commands on the CLI's subparsers."""
    def add(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("check", cmd_check, "validate a config and show what it would run")
    p.add_argument("file", nargs="?", help="config file (default: --config)")
    p = add("run", cmd_run, "queue every run of an experiment")
    p.add_argument("experiment")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (TOML value); repeatable")
    p.add_argument("--wait", action="store_true", help="follow the runs to the end")
    p = add("ls", cmd_ls, "list runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--columns", action="append", metavar="COL,...",
                   help="extra columns: a metric (its last value), best:NAME, min:NAME, "
                   "max:NAME, globs like 'val/*'")
    p.add_argument("--status", action="append", help="only runs with this status; repeatable")
    p.add_argument("--experiment", action="append", help="only runs of this experiment")
    p.add_argument("--filter", metavar="TEXT", help=f"only runs this filter selects ({query.FILTER_HELP})")
    p = add("show", cmd_show, "show one run")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")
    p = add("fork", cmd_fork, "queue a child run from a saved epoch with changed params")
    p.add_argument("run")
    p.add_argument("--epoch", type=int, help="epoch to start from (default: the last checkpoint)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--wait", action="store_true")
    p = add("resume", cmd_resume, "continue a failed or cancelled run from its last checkpoint")
    p.add_argument("run")
    p.add_argument("--wait", action="store_true")
    p = add("cancel", cmd_cancel, "cancel queued or running runs")
    p.add_argument("runs", nargs="+")
    p = add("wait", cmd_wait, "follow runs until they end")
    p.add_argument("runs", nargs="*", metavar="RUN")
    p.add_argument("--filter", metavar="TEXT",
                   help="also every run the filter selects now, e.g. 'exp:dropout status:queued,running'")
    p.add_argument("--study", action="append", default=[], metavar="NAME",
                   help="also a study until it has all its trials (each printed as it ends); repeatable")
    p = add("reindex", cmd_reindex, "rebuild the index from the run directories")


def _logs(args: argparse.Namespace) -> LogsDir:
    return LogsDir.at(args.logs)


def cmd_check(args: argparse.Namespace) -> int:
    from ..queue import preflight

    cfg = loader.load(args.file or args.config)
    if cfg.queue.executor == "slurm":
        from ..queue import slurm

        slurm.require(cfg.path.name)
    report = preflight.check(cfg)
    print(f"{cfg.path}: {len(cfg.experiments)} experiments")
    for name, exp in cfg.experiments.items():
        n = report.runs.get(name)
        kind = "trainer" if exp.builtin else " ".join(exp.command or ())
        desc = f"  {exp.description}" if exp.description else ""
        count = "   ?" if n is None else f"{n:>4}"
        print(f"  {name:<24} {count} run{'s' if n != 1 else ' '}  [{kind}]{desc}")
    q = cfg.queue
    print(f"{sum(report.runs.values())} runs in all; queue: gpus={q.gpus} jobs_per_gpu={q.jobs_per_gpu} "
          f"min_free_memory_mb={q.min_free_memory_mb} cpu_jobs={q.cpu_jobs}"
          + (f" executor=slurm {' '.join(_slurm_opts(q.slurm))}" if q.executor == "slurm" else ""))
    for problem in report.problems:
        print(f"tuiexp: {problem}", file=sys.stderr)
    return 2 if report.problems else 0


def _slurm_opts(settings: dict[str, Any]) -> list[str]:
    from ..queue.slurm import sbatch_options

    return sbatch_options(settings)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = loader.load(args.config)
    overrides = values.parse_overrides(args.set)
    exp = cfg.experiment(args.experiment)
    if exp.search is not None or exp.pbt is not None:
        from .study import start_study

        return start_study(_logs(args), cfg, args.experiment, overrides, wait=args.wait)
    with Client(_logs(args)) as client:
        ids = client.enqueue(cfg, args.experiment, overrides)
    for rid in ids:
        print(rid)
    return follow(_logs(args), ids) if args.wait else 0


def cmd_fork(args: argparse.Namespace) -> int:
    overrides = values.parse_overrides(args.set)
    with Client(_logs(args)) as client:
        rid = client.fork(args.run, overrides, args.epoch)
    print(rid)
    return follow(_logs(args), [rid]) if args.wait else 0


def cmd_resume(args: argparse.Namespace) -> int:
    with Client(_logs(args)) as client:
        rid = client.resume(args.run)
    print(rid)
    return follow(_logs(args), [rid]) if args.wait else 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with Client(_logs(args)) as client:
        for ref in args.runs:
            print(client.cancel(ref))
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    """Follow the runs named and those the filter selects until every one has ended."""
    with Client(_logs(args), autostart=False) as client:
        ids = [client.resolve(r) for r in args.runs]
        if args.filter:
            ids += [r.id for r in query.filter_rows(client.index.runs(slim=True), args.filter)
                    if r.id not in ids]
    if not ids and not args.study:
        raise UsageError("wait for which runs? Name them, select them with --filter, or name a "
                         "study with --study" + (f" ({args.filter!r} selects none)." if args.filter else "."))
    if args.study:  # the runs first, then the studies (each already ended is printed at once)
        from ..search.study import load_definition
        from .study import follow_studies

        for name in args.study:
            load_definition(_logs(args), name)  # an unknown study is said before any waiting
        rc = follow(_logs(args), ids) if ids else 0
        return max(rc, follow_studies(_logs(args), args.study))
    return follow(_logs(args), ids)


def follow(logs: LogsDir, ids: list[str], poll: float = 0.25) -> int:
    """Print each run's epochs as they come; non-zero if any run did not finish. Ctrl-C
    stops following, never the runs: one sentence says so, and exit code 130."""
    going = list(ids)  # the runs not seen ending yet
    try:
        return _follow(logs, ids, going, poll)
    except KeyboardInterrupt:
        which = " ".join(going)
        runs = "the run goes" if len(going) == 1 else f"the {len(going)} runs go"
        print(f"tuiexp: stopped following; {runs} on (`tuiexp wait {which}` follows again, "
              f"`tuiexp cancel {which}` stops)." if going else "tuiexp: stopped following.",
              file=sys.stderr)
        return 130


def _follow(logs: LogsDir, ids: list[str], going: list[str], poll: float) -> int:
    shown: dict[str, int] = {}  # the last epoch printed per run
    stepped: dict[str, tuple[int, float]] = {}  # the last step printed, and when
    with Client(logs) as client:
        while True:
            if client.index.replaced():  # deleted or restored meanwhile: read the new one
                client.index.reopen()
            found = [query.get_run(client.index, r) for r in ids]
            if any(r is None for r in found):
                gone = [i for i, r in zip(ids, found, strict=True) if r is None]
                raise UsageError(f"run {gone[0]} is no longer in the index (archived?).")
            rows = reconcile(client.index, [r for r in found if r is not None])
            going[:] = [r.id for r in rows if r.status not in TERMINAL]
            for row in rows:
                for epoch, line in epoch_lines(client.index, row, shown.get(row.id, 0)):
                    shown[row.id] = epoch
                    print(f"{row.id}  epoch {epoch}/{row.epochs or '?'}  {printable(line)}",
                          flush=True)
                if row.id not in shown and (steps := step_line(row, stepped.get(row.id))):
                    stepped[row.id] = (row.step or 0, time.monotonic())
                    print(f"{row.id}  {printable(steps)}", flush=True)
            if all(r is not None and r.status in TERMINAL for r in rows):
                break
            if not lock.is_running(logs):
                client.ensure_daemon()
            time.sleep(poll)
        bad = 0
        for row in rows:
            assert row is not None
            note = f": {printable(row.message)}" if row.message else ""
            print(f"{row.id}  {row.status}{note}", flush=True)
            bad += row.status != "finished"
    return 1 if bad else 0


FOLLOW_MAX_METRICS = 6


def epoch_lines(index: Index, row: RunRow, after: int) -> list[tuple[int, str]]:
    """`name=value` lines for the epochs after `after`: the primary metric first, then
    the run's other epoch-level metrics (at most a handful)."""
    names = [n for n, scope in row.summaries if scope == "epoch"]
    names = sorted(names, key=lambda n: (n != row.metric, n))[:FOLLOW_MAX_METRICS]
    by_epoch: dict[int, list[str]] = {}
    for name in names:
        for x, v in index.points(row.num, name, "epoch", after=after):
            by_epoch.setdefault(x, []).append(f"{name}={_fmt(v)}")
    return [(x, "  ".join(parts)) for x, parts in sorted(by_epoch.items())]


#: seconds between two step lines of a run that has shown no epoch yet
STEP_EVERY = 2.0


def step_line(row: RunRow, last: tuple[int, float] | None) -> str | None:
    """`step S  name=value` of a run that has logged steps since `last` (the step last
    printed, and when), at most every STEP_EVERY seconds and once at its end: a script
    that logs only steps, or a long first epoch, is never followed in silence."""
    names = [n for n, scope in row.summaries if scope == "step"]
    if not names or row.step is None or (last is not None and row.step <= last[0]):
        return None
    if (last is not None and row.status not in TERMINAL
            and time.monotonic() - last[1] < STEP_EVERY):
        return None
    names = sorted(names, key=lambda n: (n != row.metric, n))[:FOLLOW_MAX_METRICS]
    return f"step {row.step}  " + "  ".join(
        f"{n}={_fmt(row.summaries[(n, 'step')].last)}" for n in names)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@contextmanager
def _reading_client(args: argparse.Namespace) -> Iterator[Client]:
    """A client for a command that only reads: where the index cannot be written, it
    reads the run directories, and says so on stderr."""
    with Client(_logs(args), autostart=False, reading=True) as client:
        try:
            yield client
        finally:
            if client.notice:
                print(f"tuiexp: {client.notice}", file=sys.stderr)


def cmd_ls(args: argparse.Namespace) -> int:
    with _reading_client(args) as client:
        client.index_new_directories()
        asked = _ls_columns(args)
        names = client.index.metric_names()
        columns = query.expand_columns(asked, names) if asked else []
        # metric columns are read apart (query.column_values); run facts need summaries
        wanted = {m for c in columns if c in query.RUN_FACTS and (m := query.metric_of_column(c))}
        every = args.json or any(query.needs_primary(c) for c in columns)
        rows = query.load_runs(client.index, metrics=ALL if every else wanted)
        labels = query.run_labels(rows, defaults_for)  # over every run, as the dashboard's
        rows = _only(rows, args.status, args.experiment)
        rows = query.filter_rows(reconcile(client.index, rows), args.filter)
        values = [] if args.json else query.column_values(client.index, rows, columns)
    studies.wake(_logs(args))  # a study between trials has nothing queued, yet needs one
    if args.json:
        json.dump([{**_row_json(r), "label": labels[r.id]} for r in rows], sys.stdout, indent=1,
                  default=str)
        print()
        return 0
    sys.stdout.write(render_listing(rows, columns, values, labels))
    return 0


def _only(rows: list[RunRow], status: list[str] | None, experiment: list[str] | None
          ) -> list[RunRow]:
    """The rows of `--status` and `--experiment` (labels are made over every run first)."""
    return [r for r in rows if (not status or r.status in status)
            and (not experiment or r.experiment in experiment)]


def _ls_columns(args: argparse.Namespace) -> list[str]:
    """--columns, else the config's `[ui] columns`, else none beyond the defaults."""
    if args.columns:
        return [c.strip() for v in args.columns for c in v.split(",") if c.strip()]
    from pathlib import Path

    if Path(args.config).is_file():
        try:
            return list(loader.load_ui(args.config).columns)
        except TuiexpError:
            pass  # a broken experiments file must not stop `ls`; `check` says what is wrong
    return []


def render_listing(rows: list[RunRow], columns: list[str], values: list[list[Any]],
                   labels: dict[str, str]) -> str:
    """The `ls` table: id, label, status, progress, the primary metric's best, extra
    columns (`values`: each column's values, as query.column_values gives them). Built
    column by column: a listing of 10,000 runs × 20 metrics is 200,000 cells."""
    primaries = query.primary_metrics(rows)
    one = primaries[0] if len(primaries) == 1 else None
    head = ["RUN", "LABEL", "STATUS", "PROGRESS", f"BEST {one}" if one else "BEST"]
    table = [[r.id for r in rows], [labels.get(r.id, "") for r in rows],
             [status_cell(r) for r in rows], [query.progress_text(r) for r in rows],
             [fmt_value(r.metric or "", r.best) for r in rows]]
    left = {0, 1, 2}
    if not one and primaries:
        left.add(len(head))
        head.append("METRIC")
        table.append([r.metric or "-" for r in rows])
    head += [c.upper() for c in columns]
    table += [fmt_values(query.metric_of_column(c) or c, vs)
              for c, vs in zip(columns, values, strict=True)]
    if any(r.tags for r in rows):
        left.add(len(head))
        head.append("TAGS")
        table.append([printable(" ".join(r.tags)) for r in rows])
    left.add(len(head))
    head.append("PARENT")
    table.append([f"{r.parent}@{r.fork_epoch}" if r.parent else "" for r in rows])
    if any(r.warnings for r in rows):
        left.add(len(head))
        head.append("WARNING")
        table.append([_warning_cell(r.warnings) for r in rows])
    widths = [max(len(h), max(map(len, col), default=0)) for h, col in zip(head, table, strict=True)]
    line = "  ".join(f"{{:{'<' if i in left else '>'}{w}}}"
                     for i, w in enumerate(widths)).format  # one call pads a whole row
    return "\n".join(s.rstrip() for s in (line(*head), *map(line, *table))) + "\n"


WARNING_WIDTH = 40


def _warning_cell(warnings: list[str]) -> str:
    """A run's first warning, cut to a column (`show` has them all), and how many more."""
    if not warnings:
        return ""
    first = warnings[0]
    cell = first if len(first) <= WARNING_WIDTH else first[:WARNING_WIDTH - 1].rstrip() + "…"
    return cell + (f" (+{len(warnings) - 1})" if len(warnings) > 1 else "")


def status_cell(r: RunRow) -> str:
    """A status as `ls` shows it: a run that lost events says so (`finished · 284,978
    events lost`)."""
    return f"{r.status} · {r.dropped:,} events lost" if r.dropped else r.status


def _row_json(r: RunRow) -> dict[str, Any]:
    return {
        "id": r.id, "experiment": r.experiment, "status": r.status, "message": r.message,
        "parent": r.parent, "fork_epoch": r.fork_epoch, "epoch": r.epoch, "epochs": r.epochs,
        "step": r.step, "metric": r.metric, "mode": r.mode, "best": _json_num(r.best),
        "best_at": r.best_at, "params": r.params, "created": r.created,
        "started": r.started, "ended": r.ended, "gpu": r.gpu, "attempt": r.attempt,
        "job_id": r.job_id, "node": r.node, "reason": r.reason, "dropped": r.dropped,
        "metrics": {f"{name}@{scope}": _summary_json(s) for (name, scope), s in
                    sorted(r.summaries.items())},
        "warnings": r.warnings, "tags": r.tags, "note": r.note,
    }


def _summary_json(s: KeySummary) -> dict[str, Any]:
    return {"last": _json_num(s.last), "last_at": s.last_at, "min": s.min, "min_at": s.min_at,
            "max": s.max, "max_at": s.max_at, "count": s.count}


def _json_num(v: float | None) -> float | str | None:
    """JSON has no NaN or infinity: they are written as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def cmd_show(args: argparse.Namespace) -> int:
    with _reading_client(args) as client:
        row = client.row(args.run)
        label = client.labels().get(row.id, "")
        children = client.index.children(row.id)
        from ..store.runstore import checkpoint_epochs

        ckpts = checkpoint_epochs(client.logs.run(row.id))
    data = {**_row_json(row), "label": label, "spec": row.spec, "meta": row.meta,
            "children": children, "checkpoints": ckpts}
    if args.json:
        json.dump(data, sys.stdout, indent=1, default=str)
        print()
        return 0
    print(f"run         {row.id}")
    print(f"label       {printable(label)}")
    print(f"experiment  {printable(row.experiment)}")
    print(f"status      {row.status}{': ' + printable(row.message) if row.message else ''}")
    if row.tags:
        print(f"tags        {printable(' '.join(row.tags))}")
    for i, line in enumerate(row.note.splitlines()):
        print(f"{'note' if i == 0 else '':<12}{printable(line)}")
    if row.parent:
        print(f"forked from {row.parent} at epoch {row.fork_epoch}")
    if children:
        print(f"children    {', '.join(children)}")
    best = ""
    if row.metric:
        where = ("no finite value yet" if row.best_at is None else f"at step {row.best_step}"
                 if row.best_step is not None else f"at epoch {row.best_at}")
        best = f"   best {row.metric} {fmt_value(row.metric, row.best)} ({row.mode}, {where})"
    steps = query.counts_steps(row)
    print(f"{'step' if steps else 'epoch':<12}{row.step if steps else query.progress_text(row)}{best}")
    print(f"checkpoints {', '.join(map(str, ckpts)) or 'none'}")
    print(f"directory   {LogsDir.at(args.logs).run(row.id).dir}")
    print("params      " + json.dumps(row.params, sort_keys=True, default=str))
    for w in row.warnings:
        print(f"warning     {printable(w)}")
    if row.summaries:
        print(show_metrics(row))
    return 0


def show_metrics(row: RunRow) -> str:
    """Every metric of a run: last value, best (in its mode) and where each was."""
    head = ("METRIC", "AT", "LAST", "BEST", "N")
    table = [head]
    order = sorted(row.summaries.items(), key=lambda kv: (kv[0][0] != row.metric, kv[0]))
    for (name, scope), s in order:
        mode = query.mode_of(row, name)
        best, at = s.best(mode)
        table.append((name, scope, f"{fmt_value(name, s.last)} @{s.last_at}",
                      f"{fmt_value(name, best)} @{at} ({mode})" if best is not None else "-",
                      str(s.count)))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in table)


def cmd_reindex(args: argparse.Namespace) -> int:
    logs = _logs(args)
    problem = health.quick_check(logs.index)  # every page read: a damaged one is moved aside
    if problem is not None:
        health.quarantine(logs, problem)
    with Index(logs) as index:
        n = index.rebuilt if index.rebuilt is not None else index.rebuild(
            workers=min(cores(), 8))  # folded on every core
    for problem in index.problems:
        print(f"tuiexp: left out: {printable(problem)}", file=sys.stderr)
    print(f"reindexed {n} runs" + (f"; {len(index.problems)} left out (above)"
                                   if index.problems else ""))
    return 0
