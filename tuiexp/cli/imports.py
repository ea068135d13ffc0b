"""`tuiexp import tb LOGDIR`: bring runs recorded elsewhere into the logs directory."""

from __future__ import annotations

import argparse
import sys

from ..store.paths import LogsDir
from ..store.text import printable


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser | None = None
                ) -> None:
    """Register `import` (with its one source so far, `tb`) on an argparse subparsers object."""
    parents = [common] if common is not None else []
    p = sub.add_parser("import", help="turn runs logged by another tool into tuiexp runs",
                       description="Turn runs logged by another tool into tuiexp runs.")
    sources = p.add_subparsers(dest="import_source", metavar="SOURCE", required=True)
    tb = sources.add_parser(
        "tb", parents=parents, help="TensorBoard event files",
        description="One run per directory holding TensorBoard event files: tags become "
        "metrics, steps steps, hparams params. Importing the same directory again "
        "adds nothing.")
    tb.add_argument("logdir", metavar="LOGDIR", help="a TensorBoard log directory")
    tb.add_argument("--experiment", metavar="NAME",
                    help="experiment name for the runs (default: LOGDIR's name)")
    tb.set_defaults(func=cmd_import_tb)


def cmd_import_tb(args: argparse.Namespace) -> int:
    from ..interop.tensorboard import import_tb

    logs = LogsDir.at(args.logs)
    result = import_tb(logs, args.logdir, args.experiment)
    for problem in result.problems:  # a damaged file: what was read, where it stopped
        print(f"tuiexp: warning: {printable(problem)}", file=sys.stderr)
    if result.created:
        _index(logs, result.created)
    for rid in result.created:
        print(rid)
    skipped = f"; {len(result.skipped)} already imported" if result.skipped else ""
    damaged = (f"; {len(result.problems)} file{'s' if len(result.problems) != 1 else ''} "
               "damaged (above)") if result.problems else ""
    print(f"imported {len(result.created)} run{'s' if len(result.created) != 1 else ''} "
          f"({result.scalars} scalars) from {args.logdir}{skipped}{damaged}")
    return 0


def _index(logs: LogsDir, ids: list[str]) -> None:
    """Make the new runs visible to `ls` at once (the directories are the record); an
    index made just now was filled from the directories already."""
    from ..store.index import Index

    with Index(logs) as index:
        if index.rebuilt is None:
            for rid in ids:
                index.reindex_run(rid)
