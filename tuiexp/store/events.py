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
    try:  # the common case: one call into orjson for the whole chunk, lines as items
        parsed = orjson.loads(b"[%b]" % data[:end].replace(b"\n", b","))
        lines = len(parsed)  # (an empty line would have made it fail)
    except orjson.JSONDecodeError:  # NaN or ±inf (not JSON to orjson), a torn or empty line
        raw = [ln for ln in data[: end + 1].split(b"\n") if ln.strip()]
        parsed = [_loads_or_none(ln.decode("utf-8", "replace")) for ln in raw]
        lines = len(raw)
    events = [ev for ev in parsed if type(ev) is dict and "kind" in ev]
    return Chunk(events, offset + end + 1, lines - len(events))


def _loads_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def read_all(path: Path) -> list[dict[str, Any]]:
    return read_from(path, 0, max_bytes=None).events


def iter_kind(events: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e.get("kind") == kind)


_OPEN = b'{"v":%d,"t":' % VERSION
_KIND: dict[str, bytes] = {}  # kind -> its part of the head, made once per kind


def encode(kind: str, t: float, fields: dict[str, Any]) -> bytes:
    """One event as a line. orjson writes it (a tenth of the stdlib's time) behind the
    `v`, `t`, `kind` head; an event orjson would write differently takes the stdlib's
    path: NaN and ±inf (orjson writes null, EVENTS.md keeps NaN/Infinity), a field named
    like the head, or anything orjson refuses (an int past 64 bits, a non-str key)."""
    t = int(t * 1e6) / 1e6  # to the microsecond: a shorter line (round() costs 5x this)
    if not ("v" in fields or "t" in fields or "kind" in fields):
        try:
            body = orjson.dumps(fields, default=jsonable, option=orjson.OPT_APPEND_NEWLINE)
        except (orjson.JSONEncodeError, TypeError):
            pass
        else:
            if b"null" not in body:  # rare: a None or a non-finite value (or the word)
                head = _KIND.get(kind)
                if head is None:
                    head = _KIND[kind] = b',"kind":' + orjson.dumps(kind)
                if len(body) == 3:  # no fields: b"{}\n"
                    return b"".join((_OPEN, orjson.dumps(t), head, b"}\n"))
                return b"".join((_OPEN, orjson.dumps(t), head, b",", memoryview(body)[1:]))
    obj = {"v": VERSION, "t": t, "kind": kind, **fields}
    return (json.dumps(obj, default=jsonable, allow_nan=True) + "\n").encode()


METRIC_LINES_PER_CALL = 64  # a call's output stays in the CPU's cache: no page faults


def encode_metric_events(objs: list[dict[str, Any]]) -> list[bytes | memoryview]:
    """Metric events as lines: dicts that hold their own `v`, `t`, `kind` and otherwise
    metric names (checked by track.log) whose values are numbers or one-element tensors.
    orjson writes them 64 to a call, and the list it writes is cut into lines where one
    object ends and the next begins (no other `},{` can occur in it): 3x faster than a
    call per event, whose 600-byte results each take a trip through malloc. A part with
    NaN or ±inf (orjson writes null) is written event by event."""
    out: list[bytes | memoryview] = []
    n = METRIC_LINES_PER_CALL
    for i in range(0, len(objs), n):
        part = objs[i:i + n]
        try:
            body = orjson.dumps(part, default=_number)
        except orjson.JSONEncodeError:
            body = b"null"
        if b"null" in body:
            out += map(encode_object, part)
        else:
            out += (memoryview(body.replace(b"},{", b"}\n{"))[1:-1], b"\n")
    return out


def _number(x: Any) -> int | float:
    """A one-element tensor or numpy value as the number it holds."""
    v = x.item()
    if type(v) is float or type(v) is int:
        return v
    raise TypeError(f"{type(x).__name__} holds no number")


def encode_object(obj: dict[str, Any]) -> bytes:
    """A whole event (`v`, `t`, `kind` among its fields, in any order: the order of a
    line's fields means nothing) as a line: orjson, else the stdlib where orjson would
    write it differently (NaN, ±inf) or refuses it."""
    try:
        line = orjson.dumps(obj, default=jsonable, option=orjson.OPT_APPEND_NEWLINE)
        if b"null" not in line:
            return line
    except (orjson.JSONEncodeError, TypeError):
        pass
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
