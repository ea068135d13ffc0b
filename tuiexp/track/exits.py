"""The exit code of a script run by hand, for its run's status.

With a supervisor the status of an unfinished run comes from the process's exit
code. By hand nobody reads it, and Python tells atexit handlers nothing: a
`SystemExit` is consumed (code taken, exception freed) before atexit runs, and
`sys.excepthook` never sees it. So, for standalone runs only, the calls that
end a script with a code are wrapped to remember it: `sys.exit` (which argparse's
`error()` and most libraries call through the `sys` module), and the `exit` /
`quit` builtins. The wrappers only record and then do exactly what they wrap.

Not seen: a bare `raise SystemExit(1)` (recorded as finished), and `os._exit`
(no atexit at all: the run shows `crashed`). A `sys.exit(n)` that some code
catches and survives is still remembered; a later `sys.exit(0)` resets it.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any, NoReturn

_code: int | None = None
_how = ""
_installed = False


def code_of(status: Any) -> int:
    """The process exit code Python gives `SystemExit(status)`."""
    if status is None:
        return 0
    if isinstance(status, int) and not isinstance(status, bool):
        return status & 0xFF
    return 1  # a message: printed to stderr, exit code 1


def exit_code() -> int | None:
    """The code of the last exit call, None when none was made."""
    return _code


def how() -> str:
    return _how


def _record(status: Any, via: str) -> None:
    global _code, _how
    _code, _how = code_of(status), via


class _Quitter:
    """Wraps site's `exit`/`quit` builtins (their repr tells the user how to leave)."""

    def __init__(self, wrapped: Any, name: str):
        self._wrapped, self._name = wrapped, name

    def __repr__(self) -> str:
        return repr(self._wrapped)

    def __call__(self, code: Any = None) -> None:
        _record(code, f"{self._name}()")
        self._wrapped(code)


def record_exit_codes() -> None:
    """Wrap sys.exit and the exit/quit builtins (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    real_exit = sys.exit

    def exit(status: Any = None) -> NoReturn:  # noqa: A001 - it stands in for sys.exit
        _record(status, "sys.exit")
        real_exit(status)

    exit.__doc__ = real_exit.__doc__
    exit.__wrapped__ = real_exit  # type: ignore[attr-defined]  # as functools.wraps sets it
    sys.exit = exit
    for name in ("exit", "quit"):
        if callable(getattr(builtins, name, None)):
            setattr(builtins, name, _Quitter(getattr(builtins, name), name))
