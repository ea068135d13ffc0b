"""Drive the dashboard in a real terminal: a detached tmux session of a given size."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
needs_tmux = pytest.mark.skipif(not os.path.exists(TMUX), reason="needs tmux")
T = TypeVar("T")


SOCKET = f"tuiexp-tests-{os.getpid()}"  # a server of our own: the user's tmux is left alone


def tmux(*args: str) -> str:
    return subprocess.run([TMUX, "-L", SOCKET, *args], capture_output=True, text=True,
                          check=False).stdout


class Terminal:
    """The dashboard opened in `cwd` in a tmux session of `width`×`height`."""

    def __init__(self, cwd: Path, width: int, height: int) -> None:
        self.session = f"tuiexp-e2e-{os.getpid()}-{width}x{height}"
        # COLUMNS and LINES would override the terminal's own size (rich reads them first),
        # and a test runner's environment may carry them (80×24): the pane's size must win
        cmd = (f"cd {cwd} && env -u COLUMNS -u LINES TUIEXP_DAEMON_IDLE=30 {sys.executable} -c "
               "'from tuiexp.cli import main; main()'; sleep 5")
        tmux("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), cmd)

    def pane(self) -> str:
        return tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        """Named keys (Enter, Tab, C-s...), each once the screen showed the one before
        it, as a person watching it types. Send Escape alone and wait for its effect:
        a terminal reads ESC followed at once by a key as alt+key."""
        for key in keys:
            self._send_and_settle("send-keys", "-t", self.session, key)

    def type(self, text: str) -> None:
        self._send_and_settle("send-keys", "-t", self.session, "-l", text)

    def _send_and_settle(self, *command: str) -> None:
        before = tmux("capture-pane", "-e", "-p", "-t", self.session)  # colours show focus
        tmux(*command)
        deadline = time.monotonic() + 2.0  # a key that changes nothing visible: go on
        while time.monotonic() < deadline:
            if tmux("capture-pane", "-e", "-p", "-t", self.session) != before:
                return
            time.sleep(0.05)

    def wait(self, what: Callable[[], T], timeout: float = 30.0) -> T:
        """Poll `what` until it is truthy; on timeout fail showing the screen."""
        return wait_for(what, timeout, self.pane)

    def wait_text(self, *texts: str, timeout: float = 30.0) -> str:
        """The screen, once it shows every one of `texts`."""
        def shown() -> str:
            pane = self.pane()
            return pane if all(t in pane for t in texts) else ""
        return self.wait(shown, timeout)

    def filter(self, text: str) -> None:
        """`/`, the text once the (empty) filter line is up, and enter."""
        self.keys("/")
        self.wait_text("enter keeps, esc clears")
        self.type(text)
        self.keys("Enter")

    def close(self) -> None:
        tmux("kill-session", "-t", self.session)


def wait_for(what: Callable[[], T], timeout: float = 30.0,
             screen: Callable[[], str] | None = None) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out" + (f"; the screen:\n{screen()}" if screen else ""))
