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
