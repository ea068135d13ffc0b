"""The command line: thin, over the headless layers. `tuiexp` alone opens the dashboard."""

from __future__ import annotations

import argparse
import errno
import os
import sqlite3
import sys

from ..errors import TuiexpError
from ..queue.client import storage_problem
from ..store.paths import LogsDir


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
    try:
        return int(args.func(args) or 0)
    except TuiexpError as e:
        for line in str(e).splitlines() or [""]:  # several problems: a sentence a line
            print(f"tuiexp: {line}", file=sys.stderr)
        return e.exit_code
    except sqlite3.Error as e:  # a full disk, a failing or damaged index
        problem = storage_problem(LogsDir.at(args.logs), e)
        advice = ("free some space and try again" if "disk" in problem
                  else "`tuiexp doctor` checks the logs directory")
        print(f"tuiexp: {problem}; {advice}.", file=sys.stderr)
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
