"""The event log of a run: one JSON object per line, append-only (docs/EVENTS.md).

Readers take complete lines only, so a line being written, or torn by a crash,
is never misread; a line that is not valid JSON is skipped, not fatal.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

VERSION = 1

#: Fields of every event, or set by `track.log` itself: never a metric name.
RESERVED = frozenset({"v", "t", "kind", "step", "epoch"})
#: Statuses a run process reports itself, as the last word of its event log.
TERMINAL = ("finished", "failed", "diverged", "oom", "cancelled", "crashed", "preempted", "pruned")
#: Every status a run can be shown with; queued and crashed are derived by the supervisor.
STATUSES = ("queued", "starting", "running", *TERMINAL)


@dataclass
class Chunk:
    events: list[dict[str, Any]]
    offset: int  # byte offset just past the last complete line read
    skipped: int  # complete lines that were not valid JSON


def read_from(path: Path, offset: int = 0, max_bytes: int | None = 64 << 20) -> Chunk:
    """Read the complete lines after `offset` (within `max_bytes`; None: all)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read() if max_bytes is None else f.read(max_bytes)
    except FileNotFoundError:
        return Chunk([], offset, 0)
    end = data.rfind(b"\n")
    if end < 0:
        return Chunk([], offset, 0)
    raw = [ln for ln in data[: end + 1].split(b"\n") if ln.strip()]
    try:  # the common case: one call into orjson for the whole chunk
        parsed = orjson.loads(b"[" + b",".join(raw) + b"]")
    except orjson.JSONDecodeError:  # NaN or infinity (not JSON to orjson), or a torn line
        parsed = []
    if len(parsed) != len(raw):  # decode line by line with the lenient stdlib decoder
        parsed = [_loads_or_none(ln.decode("utf-8", "replace")) for ln in raw]
    events = [ev for ev in parsed if isinstance(ev, dict) and "kind" in ev]
    return Chunk(events, offset + end + 1, len(raw) - len(events))


def _loads_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def read_all(path: Path) -> list[dict[str, Any]]:
    return read_from(path, 0, max_bytes=None).events


def iter_kind(events: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e.get("kind") == kind)


def encode(kind: str, t: float, fields: dict[str, Any]) -> bytes:
    obj = {"v": VERSION, "t": round(t, 6), "kind": kind, **fields}
    return (json.dumps(obj, default=jsonable, allow_nan=True) + "\n").encode()


def count(data: bytes | bytearray, kind: str | None = None) -> int:
    """Events in bytes `encode` wrote (whole lines), or those of one kind: inside a line,
    `"kind": "X"` appears unescaped only as the kind field itself."""
    if kind is None:
        return data.count(b"\n")
    return len(re.findall(rb'"kind": ?"' + re.escape(kind.encode()) + rb'"', data))


def encode_safe(kind: str, t: float, fields: dict[str, Any]) -> tuple[bytes, str]:
    """encode(), but a field that cannot be written (a dict with tuple keys, a list that
    contains itself, a tensor whose value cannot be read) is left out instead of losing
    the event; the second item names what was left out and why ("" when nothing was)."""
    try:
        return encode(kind, t, fields), ""
    except Exception:  # noqa: BLE001 - any failure of a user's object, found field by field
        pass
    kept, problems = {}, []
    for key, value in fields.items():
        try:
            json.dumps({key: value}, default=jsonable, allow_nan=True)
        except Exception as e:  # noqa: BLE001
            problems.append(f"'{key}' ({type(e).__name__}: {e})")
        else:
            kept[key] = value
    try:
        return encode(kind, t, kept), ", ".join(problems)
    except Exception as e:  # noqa: BLE001 - not expected: every field passed alone
        return b"", f"the whole event ({type(e).__name__}: {e})"


def jsonable(x: Any) -> Any:
    """Numbers from numpy or torch (0-d tensors) are written as plain numbers."""
    if hasattr(x, "item"):
        try:
            return x.item()
        except (ValueError, RuntimeError):
            pass
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, tuple, Path)):
        return list(x) if not isinstance(x, Path) else str(x)
    return str(x)


def append(path: Path, kind: str, t: float, fields: dict[str, Any], sync: bool = False) -> None:
    """Append one event without a `track.Run` (tests and tools that write a log by hand)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # less the umask
    try:
        ensure_line_start(fd, path)
        os.write(fd, encode(kind, t, fields))
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def ensure_line_start(fd: int, path: Path) -> None:
    """If a crash left a torn last line, end it so the next event is not glued to it."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return
        with open(path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                os.write(fd, b"\n")
    except OSError:
        pass
