"""Atomic writes: a reader sees the old file or the new one, never half of one.

File modes follow one policy everywhere (docs/ARCHITECTURE.md): every file is
created with 0o666 and directories with 0o777, less the process's umask, so a
umask of 002 on a shared group directory makes everything group-writable."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

FILE_MODE = 0o666  # less the umask, as open(2) applies it
RESERVE_SIZE = 4096  # a record written into reserved space (exit.json, final.json)


def write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` whole; `durable=False` skips the fsyncs (still old-or-new to any
    reader, but a power cut may lose it): for a hint its writer rewrites anyway."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def temp_name(path: Path) -> Path:
    """A hidden sibling of `path` that carries our pid, so `tuiexp doctor` can tell an
    orphan (its writer died between creating and renaming it) from a write in flight."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")


def _create_temp(path: Path) -> tuple[int, Path]:
    # not tempfile.mkstemp: it creates 0600 whatever the umask says
    while True:
        tmp = temp_name(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), tmp
        except FileExistsError:  # pragma: no cover - 24 random bits collided
            continue


def write_text(path: Path, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode(), durable)


def write_json(path: Path, obj: Any, durable: bool = True) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", durable)


def fsync_dir(path: Path) -> None:
    """Make a rename durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def reserved(path: Path) -> Path:
    """Where the space for `path` is kept until it is written (`reserve`)."""
    return path.with_name(path.name + ".reserved")


def reserve(path: Path, size: int = RESERVE_SIZE) -> bool:
    """Take the disk space for a small record `path` now, while there is space, so that
    `fill_reserved` can write it on a full disk (the blocks are overwritten, not added).
    False when even that was refused."""
    spare = reserved(path)
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            data = b" " * (size - 1) + b"\n"
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        spare.unlink(missing_ok=True)
        return False
    return True


def fill_reserved(path: Path, obj: Any) -> None:
    """Write `obj` as JSON to `path` in the space `reserve` kept for it (padded with
    spaces: no new block), then rename it into place; without a reservation, or when the
    record outgrew it, an ordinary atomic write (which needs free space)."""
    data = json.dumps(obj, sort_keys=True).encode()
    spare = reserved(path)
    try:
        fd = os.open(spare, os.O_WRONLY)
    except FileNotFoundError:
        write_bytes(path, data + b"\n")
        return
    try:
        size = os.fstat(fd).st_size
        if len(data) + 1 > size:
            os.close(fd)
            fd = -1
            spare.unlink(missing_ok=True)
            write_bytes(path, data + b"\n")
            return
        os.pwrite(fd, data.ljust(size - 1) + b"\n", 0)
        os.fsync(fd)
    finally:
        if fd >= 0:
            os.close(fd)
    os.replace(spare, path)
    fsync_dir(path.parent)
