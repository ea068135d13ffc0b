"""`tuiexp daemon start|stop|status|serve`: the supervisor of a logs directory."""

from __future__ import annotations

import argparse
from typing import Any

from ..queue import daemon
from ..store import lock
from ..store.paths import LogsDir


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `daemon` on the CLI's subparsers."""
    def add(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("daemon", cmd_daemon, "start, stop or inspect the supervisor")
    p.add_argument("action", choices=["start", "stop", "status", "serve"],
                   help="serve: be the supervisor in this terminal (what start runs detached)")


def cmd_daemon(args: argparse.Namespace) -> int:
    logs = LogsDir.at(args.logs)
    if args.action == "start":
        ok = daemon.spawn(logs)
        print("supervisor running" if ok else f"supervisor did not start; see {logs.daemon_log}")
        return 0 if ok else 1
    if args.action == "serve":
        from ..search.studies import Studies

        return daemon.run(logs, producers=[Studies])
    if args.action == "stop":
        print("supervisor stopped (runs go on)" if daemon.stop(logs) else "no supervisor was running")
        return 0
    data = lock.info(logs)
    if data:
        jobs = (f"; slurm jobs seen through {data['job_state']}" if data.get("job_state") else "")
        print(f"supervisor running, pid {data['pid']}, logs {logs.root}{jobs}")
        return 0
    print(f"no supervisor running for {logs.root}")
    return 3
