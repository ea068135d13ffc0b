"""User text on a terminal: names, notes, messages and tags are shown, never obeyed.

A run's experiment name, note, status message or a TensorBoard tag may hold control
characters (an escape sequence that clears the screen, a newline that forges a line,
a bidi override that reorders one). Every printer passes such text through `printable`,
which writes them as visible escapes (`\\x1b`, `\\n`).
"""

from __future__ import annotations

import re

#: C0 and C1 controls, DEL, and the bidi embeddings, overrides and isolates
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` with every control character written as a visible escape."""
    if not _UNPRINTABLE.search(text):
        return text  # the common case: one scan, no copy
    return _UNPRINTABLE.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def has_control(text: str) -> bool:
    """Whether `text` holds a character `printable` would escape (names refuse them)."""
    return _UNPRINTABLE.search(text) is not None
