"""Named fault points: where a test may make the process die, to prove that each step of
a multi-step decision survives a kill at that step (tests/faults/test_pbt_restart.py).

`TUIEXP_FAULT=NAME` (or `NAME:N`, the Nth time it passes there) makes the process
`os._exit(137)` at `point(NAME)`, as a SIGKILL would end it. Unset, a point costs one
comparison.
"""

from __future__ import annotations

import os

_WANTED = os.environ.get("TUIEXP_FAULT") or None
_passed: dict[str, int] = {}


def point(name: str) -> None:
    """Die here if the environment asks for it (see the module's docstring)."""
    if _WANTED is None:
        return
    want, _, nth = _WANTED.partition(":")
    if want != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] >= int(nth or 1):
        os._exit(137)
