"""`tuiexp doctor [--fix]`: check a logs directory, and repair what is safe.

Thin: the checks and repairs live in tuiexp.doctor. One line per finding;
exit 0 when no problem remains, 1 otherwise.
"""

from __future__ import annotations

import argparse

from .. import doctor
from ..store.paths import LogsDir
from ..store.text import printable


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser | None = None
                ) -> None:
    """Register `doctor` on an argparse subparsers object."""
    parents = [common] if common is not None else []
    p = sub.add_parser("doctor", parents=parents, help="check the logs directory; --fix repairs",
                       description="Check the logs directory: leftover temporary files, "
                       "run directories the index disagrees with, a queue without a "
                       "supervisor, free disk. --fix repairs what is safe to repair.")
    p.add_argument("--fix", action="store_true",
                   help="remove leftovers, index missing runs, start the supervisor")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    logs = LogsDir.at(args.logs)
    with doctor.Checkup(logs) as checkup:
        found = checkup.diagnose()
        for f in found:
            print(_line(f))
        if args.fix and any(f.repair for f in found):
            for done in doctor.repair(found):
                print(f"fixed: {printable(done)}")
            found = checkup.diagnose()
            for f in found:
                if f.problem:
                    print(f"still: {printable(f.message)}")
    problems = [f for f in found if f.problem]
    fixable = sum(f.repair is not None for f in problems)
    if not problems:
        print("no problems found.")
        return 0
    hint = f" ({fixable} repairable with `tuiexp doctor --fix`)" if fixable and not args.fix else ""
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}{hint}.")
    return 1


def _line(f: doctor.Finding) -> str:
    """One finding (a run.json may name anything: printed escaped)."""
    if not f.problem:
        return f"note: {printable(f.message)}"
    return f"{'problem' if f.repair is None else 'repairable'}: {printable(f.message)}"
