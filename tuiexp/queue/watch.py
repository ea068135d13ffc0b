"""What the supervisor waits on between ticks: run directories (inotify) and its runs'
processes (pidfds), so an event written to a run's log, a new run directory or a run's
exit is handled at once rather than at the next tick.

Linux only, through ctypes (the standard library has no inotify; one file descriptor to
`select` on is all the loop needs, where watchdog would bring an observer thread and
callbacks). Where it is missing, or a watch cannot be added (the per-user limit), the
tick (0.1 s) does the work alone — as it must anyway for run directories on NFS or
Lustre written from Slurm nodes, which raise no inotify event on this host."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
from pathlib import Path

#: inotify(7) event bits
MODIFY, MOVED_TO, CREATE, Q_OVERFLOW, IGNORED = 0x2, 0x80, 0x100, 0x4000, 0x8000
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len of the name that follows


class Watcher:
    """Keys (a run id, or any name) woken by changes in a directory or a process's exit."""

    def __init__(self) -> None:
        self.fd = -1
        self._dirs: dict[int, tuple[str, frozenset[str] | None]] = {}  # wd -> key, names
        self._wd: dict[str, int] = {}
        self._pids: dict[int, str] = {}  # pidfd -> key
        self._pidfd: dict[str, int] = {}
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            self._add, self._rm = libc.inotify_add_watch, libc.inotify_rm_watch
            self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):  # not Linux: the tick does the work
            pass

    def watch_dir(self, key: str, path: Path, mask: int,
                  names: frozenset[str] | None = None) -> bool:
        """Wake `key` on `mask` events in directory `path` (only for these file names,
        when given). False where inotify cannot: the tick covers it."""
        if self.fd < 0 or key in self._wd:
            return key in self._wd
        wd = self._add(self.fd, os.fsencode(path), mask)
        if wd < 0:
            return False
        self._dirs[wd], self._wd[key] = (key, names), wd
        return True

    def watch_exit(self, key: str, pid: int) -> bool:
        """Wake `key` when process `pid` exits (a pidfd turns readable)."""
        if key in self._pidfd:
            return True
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux 5.3+, or gone already
            return False
        self._pids[fd], self._pidfd[key] = key, fd
        return True

    def watching_exit(self, key: str) -> bool:
        return key in self._pidfd

    def forget(self, key: str, exit_only: bool = False) -> None:
        fd = self._pidfd.pop(key, None)
        if fd is not None:
            del self._pids[fd]
            os.close(fd)
        wd = self._wd.pop(key, None) if not exit_only else None
        if wd is not None:
            del self._dirs[wd]
            self._rm(self.fd, wd)

    def keys(self) -> set[str]:
        return set(self._wd) | set(self._pidfd)

    def wait(self, timeout: float) -> set[str] | None:
        """The keys woken within `timeout` seconds (empty: none); None when inotify lost
        events (its queue overflowed): every key may have changed."""
        fds = [*self._pids, *([self.fd] if self.fd >= 0 else [])]
        if not fds:
            select.select([], [], [], timeout)
            return set()
        ready, _, _ = select.select(fds, [], [], timeout)
        woken = {self._pids[fd] for fd in ready if fd in self._pids}
        if self.fd in ready:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                data = b""
            at = 0
            while at < len(data):
                wd, mask, _, size = _HEADER.unpack_from(data, at)
                name = data[at + _HEADER.size:at + _HEADER.size + size].rstrip(b"\0").decode(
                    errors="replace")
                at += _HEADER.size + size
                if mask & Q_OVERFLOW:
                    return None
                key, names = self._dirs.get(wd, ("", None))
                if mask & IGNORED:  # the directory went away: its watch with it
                    self._dirs.pop(wd, None)
                    self._wd.pop(key, None)
                elif key and (names is None or name in names):
                    woken.add(key)
        return woken

    def close(self) -> None:
        for key in list(self._pidfd):
            self.forget(key)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
