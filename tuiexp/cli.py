"""The command line: thin, over tuiexp.core. `tuiexp` alone opens the dashboard."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .core import config as configmod
from .core import daemon
from .core.client import Client
from .core.errors import TuiexpError, UsageError
from .core.events import TERMINAL
from .core.index import RunRow
from .core.paths import LogsDir


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for key, default in DEFAULTS.items():  # given before or after the command, either works
        if not hasattr(args, key):
            setattr(args, key, default)
    try:
        return int(args.func(args) or 0)
    except TuiexpError as e:
        print(f"tuiexp: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # a path that is a file, a directory, unreadable...
        where = f" ({e.filename})" if e.filename else ""
        print(f"tuiexp: {e.strerror or e}{where}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


DEFAULTS = {"logs": "logs", "config": "experiments.toml"}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--logs", default=argparse.SUPPRESS, help="logs directory (default: ./logs)")
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="experiments file (default: ./experiments.toml)")
    parser = argparse.ArgumentParser(prog="tuiexp", parents=[common],
                                     description="Queue, watch and fork training runs.")
    parser.set_defaults(func=cmd_ui)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    add("ui", cmd_ui, "open the dashboard (the default)")
    p = add("check", cmd_check, "validate a config and show what it would run")
    p.add_argument("file", nargs="?", help="config file (default: --config)")
    p = add("run", cmd_run, "queue every run of an experiment")
    p.add_argument("experiment")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (TOML value); repeatable")
    p.add_argument("--wait", action="store_true", help="follow the runs to the end")
    p = add("ls", cmd_ls, "list runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--status", action="append", help="only runs with this status; repeatable")
    p.add_argument("--experiment", action="append", help="only runs of this experiment")
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
    p.add_argument("runs", nargs="+")
    p = add("reindex", cmd_reindex, "rebuild the index from the run directories")
    p = add("daemon", cmd_daemon, "start, stop or inspect the supervisor")
    p.add_argument("action", choices=["start", "stop", "status"])
    try:
        from .cli_results import add_parsers
    except ImportError:  # pragma: no cover - results commands not installed
        pass
    else:
        add_parsers(sub, common)
    try:
        from .cli_import import add_parsers as add_import_parsers
    except ImportError:  # pragma: no cover - import commands not installed
        pass
    else:
        add_import_parsers(sub, common)
    return parser


def _logs(args: argparse.Namespace) -> LogsDir:
    return LogsDir.at(args.logs)


def cmd_ui(args: argparse.Namespace) -> int:
    from .ui.app import run_app

    return run_app(logs=_logs(args), config_path=args.config)


def cmd_check(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.file or args.config)
    total = 0
    print(f"{cfg.path}: {len(cfg.experiments)} experiments")
    for name, exp in cfg.experiments.items():
        n = len(cfg.expand(name))
        total += n
        kind = "trainer" if exp.builtin else " ".join(exp.command or ())
        desc = f"  {exp.description}" if exp.description else ""
        print(f"  {name:<24} {n:>4} run{'s' if n != 1 else ' '}  [{kind}]{desc}")
    q = cfg.queue
    print(f"{total} runs in all; queue: gpus={q.gpus} jobs_per_gpu={q.jobs_per_gpu} "
          f"min_free_memory_mb={q.min_free_memory_mb} cpu_jobs={q.cpu_jobs}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    overrides = configmod.parse_overrides(args.set)
    with Client(_logs(args)) as client:
        ids = client.enqueue(cfg, args.experiment, overrides)
    for rid in ids:
        print(rid)
    return follow(_logs(args), ids) if args.wait else 0


def cmd_fork(args: argparse.Namespace) -> int:
    overrides = configmod.parse_overrides(args.set)
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
    with Client(_logs(args), autostart=False) as client:
        ids = [client.resolve(r) for r in args.runs]
    return follow(_logs(args), ids)


def follow(logs: LogsDir, ids: list[str], poll: float = 0.25) -> int:
    """Print each run's epochs as they come; non-zero if any run did not finish."""
    shown: dict[str, int] = {}
    with Client(logs) as client:
        while True:
            rows = [client.index.run(r) for r in ids]
            if any(r is None for r in rows):
                gone = [i for i, r in zip(ids, rows, strict=True) if r is None]
                raise UsageError(f"run {gone[0]} is no longer in the index (archived?).")
            for row in rows:
                assert row is not None
                for ev in client.index.epochs(row.id, after=shown.get(row.id, 0)):
                    shown[row.id] = ev["epoch"]
                    print(f"{row.id}  epoch {ev['epoch']}/{row.epochs or '?'}  {_metrics(ev)}",
                          flush=True)
            if all(r is not None and r.status in TERMINAL for r in rows):
                break
            if not daemon.is_running(logs):
                client.ensure_daemon()
            time.sleep(poll)
        bad = 0
        for row in rows:
            assert row is not None
            note = f": {row.message}" if row.message else ""
            print(f"{row.id}  {row.status}{note}", flush=True)
            bad += row.status != "finished"
    return 1 if bad else 0


def _metrics(ev: dict[str, Any]) -> str:
    keys = ("train_loss", "val_loss", "val_acc", "lr")
    return "  ".join(f"{k}={_fmt(ev[k])}" for k in keys if k in ev)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def cmd_ls(args: argparse.Namespace) -> int:
    with Client(_logs(args), autostart=False) as client:
        client.refresh_unsupervised()
        if args.json:
            rows = client.index.runs(status=args.status, experiment=args.experiment)
            json.dump([_row_json(r) for r in rows], sys.stdout, indent=1)
            print()
            return 0
        listing = client.index.listing(status=args.status, experiment=args.experiment)
    lines = [f"{'RUN':<40} {'STATUS':<10} {'EPOCH':>7} {'VAL_ACC':>8} {'BEST':>7}  PARENT"]
    for rid, status, epoch, epochs, acc, best, parent, fork_epoch in listing:
        ep = f"{epoch or 0}/{epochs or '?'}"
        lineage = f"{parent}@{fork_epoch}" if parent else ""
        lines.append(f"{rid:<40} {status:<10} {ep:>7} {_pct(acc):>8} {_pct(best):>7}  {lineage}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "-"


def _row_json(r: RunRow) -> dict[str, Any]:
    return {
        "id": r.id, "experiment": r.experiment, "status": r.status, "message": r.message,
        "parent": r.parent, "fork_epoch": r.fork_epoch, "epoch": r.epoch, "epochs": r.epochs,
        "step": r.step, "best_val_acc": r.best_val_acc, "best_epoch": r.best_epoch,
        "last_epoch": r.last_epoch, "params": r.params, "created": r.created,
        "started": r.started, "ended": r.ended, "gpu": r.gpu, "attempt": r.attempt,
    }


def cmd_show(args: argparse.Namespace) -> int:
    with Client(_logs(args), autostart=False) as client:
        row = client.row(args.run)
        children = client.index.children(row.id)
        from .core.runstore import checkpoint_epochs

        ckpts = checkpoint_epochs(client.logs.run(row.id))
    data = {**_row_json(row), "spec": row.spec, "meta": row.meta, "last_step": row.last_step,
            "children": children, "checkpoints": ckpts}
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        print()
        return 0
    print(f"run         {row.id}")
    print(f"experiment  {row.experiment}")
    print(f"status      {row.status}{': ' + row.message if row.message else ''}")
    if row.parent:
        print(f"forked from {row.parent} at epoch {row.fork_epoch}")
    if children:
        print(f"children    {', '.join(children)}")
    print(f"epoch       {row.epoch or 0}/{row.epochs or '?'}   best val_acc {_pct(row.best_val_acc)}"
          f" (epoch {row.best_epoch})")
    if row.last_epoch:
        print(f"last epoch  {_metrics(row.last_epoch)}")
    print(f"checkpoints {', '.join(map(str, ckpts)) or 'none'}")
    print(f"directory   {LogsDir.at(args.logs).run(row.id).dir}")
    print("params      " + json.dumps(row.params, sort_keys=True))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from .core.index import Index

    with Index(_logs(args)) as index:
        n = index.rebuild()
    print(f"reindexed {n} runs")
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    logs = _logs(args)
    if args.action == "start":
        ok = daemon.spawn(logs)
        print("supervisor running" if ok else f"supervisor did not start; see {logs.daemon_log}")
        return 0 if ok else 1
    if args.action == "stop":
        print("supervisor stopped (runs go on)" if daemon.stop(logs) else "no supervisor was running")
        return 0
    data = daemon.info(logs)
    if data:
        print(f"supervisor running, pid {data['pid']}, logs {logs.root}")
        return 0
    print(f"no supervisor running for {logs.root}")
    return 3


if __name__ == "__main__":
    sys.exit(main())
