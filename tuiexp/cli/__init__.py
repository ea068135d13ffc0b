"""The command line: thin, over the headless layers. `tuiexp` alone opens the dashboard."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sqlite3
import sys

from ..errors import TuiexpError
from ..queue.client import storage_advice, storage_problem
from ..store import health
from ..store.paths import LogsDir
from ..store.text import printable


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    words: str | None = getattr(args, "dash_words", None)  # `tag RUN -old`: an edit, not an option
    if extra and not words:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra and words:
        setattr(args, words, [*getattr(args, words), *extra])
    for key, default in DEFAULTS.items():  # given before or after the command, either works
        if not hasattr(args, key):
            setattr(args, key, default)
    if args.command != "daemon":  # (the supervisor logs to daemon.log, in its own format)
        _warnings_on_stderr()
    return _run(args, again=args.command in REDOABLE)


def _warnings_on_stderr() -> None:
    """What the headless layers say as warnings (a damaged index moved aside) reaches the
    user as one `tuiexp:` line."""
    logger = logging.getLogger("tuiexp")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tuiexp: %(message)s"))
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False


#: commands that may simply run again once a damaged index was moved aside and rebuilt
#: (they read, or their writes are compare-and-set): the others say so and stop
REDOABLE = frozenset({"ls", "show", "wait", "export", "plot", "report", "doctor", "study",
                      "cancel", "reindex", "daemon", None})


def _run(args: argparse.Namespace, again: bool) -> int:
    try:
        return int(args.func(args) or 0)
    except TuiexpError as e:
        for line in str(e).splitlines() or [""]:  # several problems: a sentence a line
            print(f"tuiexp: {printable(line)}", file=sys.stderr)
        return e.exit_code
    except sqlite3.Error as e:  # a full disk, a failing or damaged index
        logs = LogsDir.at(args.logs)
        if health.corrupt(e):
            _rebuild(logs, e)
            if again:
                return _run(args, again=False)
            print("tuiexp: run the command again.", file=sys.stderr)
            return 1
        print(f"tuiexp: {storage_problem(logs, e)}; {storage_advice(logs, e)}.", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader (head, less) left: end quietly
        _quiet_stdout()
        return 0
    except OSError as e:  # a path that is a file, a directory, unreadable...
        if e.errno == errno.ENOSPC:
            print(f"tuiexp: {storage_problem(LogsDir.at(args.logs), e)}; free some space and try again.",
                  file=sys.stderr)
            return 1
        where = f" ({e.filename})" if e.filename else ""
        print(f"tuiexp: {e.strerror or e}{where}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _rebuild(logs: LogsDir, e: sqlite3.Error) -> None:
    """A damaged index: moved aside (in one sentence on stderr) and rebuilt from the run
    directories (nothing is said where another process did it first)."""
    from ..store.index import Index

    health.quarantine(logs, str(e))
    Index(logs).close()  # the next open makes and fills a new one: now, before a retry


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush into the closed pipe
    does not print an error either (the Python docs' recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


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

    p = sub.add_parser("ui", parents=[common], help="open the dashboard (the default)")
    p.set_defaults(func=cmd_ui)
    from . import daemon, doctor, imports, lrfind, notes, results, runs, study

    for module in (runs, daemon, results, notes, doctor, study, lrfind, imports):
        module.add_parsers(sub, common)  # each command family in its own module
    return parser


def cmd_ui(args: argparse.Namespace) -> int:
    from ..ui.app import run_app

    return run_app(logs=LogsDir.at(args.logs), config_path=args.config)
