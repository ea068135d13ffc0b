"""Fixtures for the dashboard's tests: a logs dir, an experiments file using the fake
run script, a real supervisor (stopped at teardown), and helpers to wait in Pilot."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tuiexp.config import loader
from tuiexp.queue import daemon
from tuiexp.queue.client import Client
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

FAKE = Path(__file__).resolve().parents[1] / "fake_run.py"

EXPERIMENTS = f"""
[queue]
gpus = "none"  # the fake runs need no GPU: the same slots on every machine
cpu_jobs = 4

[experiments.fake]
description = "the fake run script"
command = "{sys.executable} {FAKE}"
epochs = 3
steps_per_epoch = 4
sleep = 0.01
batch_size = 32
dropout = 0.1

[experiments.ckpt]
description = "fake, with checkpoints"
command = "{sys.executable} {FAKE}"
epochs = 3
steps_per_epoch = 4
checkpoint = true
batch_size = 32

[experiments.slow]
description = "fake that hangs after epoch 1"
command = "{sys.executable} {FAKE}"
epochs = 5
hang = true
"""

os.environ.setdefault("TUIEXP_DAEMON_IDLE", "30")


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.config_path = root / "experiments.toml"
        self.config_path.write_text(EXPERIMENTS)
        self.logs = LogsDir.at(root / "logs").ensure()

    def enqueue(self, name: str, **overrides: object) -> list[str]:
        with Client(self.logs) as c:
            return c.enqueue(loader.load(self.config_path), name, overrides)

    def wait(self, run_id: str, statuses: tuple[str, ...] = ("finished",), timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with Index(self.logs) as index:
            while time.monotonic() < deadline:
                row = index.run(run_id)
                if row and row.status in statuses:
                    return
                time.sleep(0.1)
        raise AssertionError(f"{run_id} did not reach {statuses}")

    def app(self, **kw: object):
        from tuiexp.ui.app import make_app

        kw.setdefault("interval", 0.2)
        return make_app(self.logs, self.config_path, **kw)


def _workspace(root: Path):
    ws = Workspace(root)
    yield ws
    daemon.stop(ws.logs)


@pytest.fixture
def ws(tmp_path: Path):
    yield from _workspace(tmp_path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    """A workspace with one finished run that has checkpoints at epochs 1..3."""
    for ws in _workspace(tmp_path_factory.mktemp("finished")):
        (rid,) = ws.enqueue("ckpt")
        ws.wait(rid)
        ws.run_id = rid
        yield ws


async def until(pilot, cond: Callable[[], object], timeout: float = 20.0) -> None:
    """Let the app run until `cond()` is true."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)
    await asyncio.sleep(0)


@pytest.fixture
def wait_until():
    return until


def screen_text(app) -> str:
    """The screen as lines of text, each piece at its column (read from the SVG
    screenshot: every `<text>` has its cell position in `x` and `y`)."""
    import html
    import re

    from rich.cells import cell_len

    char_w, line_h = 20 * 0.61, 20 * 1.22  # rich's export_svg geometry
    grid: dict[int, dict[int, str]] = {}
    for x, y, body in re.findall(r'<text class="[^"]*-r\d+" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>',
                                 app.export_screenshot()):
        row, col = round((float(y) - 20) / line_h), round(float(x) / char_w)
        for ch in html.unescape(body).replace("\xa0", " "):
            grid.setdefault(row, {})[col] = ch
            col += max(1, cell_len(ch))
    lines = []
    for row in range(max(grid, default=-1) + 1):
        cells = grid.get(row, {})
        lines.append("".join(cells.get(c, " ") for c in range(max(cells, default=-1) + 1)))
    return "\n".join(line.rstrip() for line in lines)


@pytest.fixture
def text_of():
    return screen_text
