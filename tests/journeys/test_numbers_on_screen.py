"""What the dashboard writes about time and scale, from runs whose numbers are known
(issue 18.9, 18.10, 18.1), at 80×24: no torch, so every value is chosen.

- `clock`: a script (tests/fake_run.py) that takes 4 s an epoch, queued from the
  command line after the dashboard opened: its ETA must count down within an epoch,
  its sparklines must appear and grow.
- `probe`: two runs written by hand through `tuiexp.track` before the dashboard
  opens, with an LR ending at 2.99e-05 and val losses within 1.1014..1.1049: the
  detail's axis labels must be whole numbers, compare's top and bottom must differ;
  the second one logs a warning, which its row and its detail must show."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAKE_RUN, tuiexp
from tests.journeys.conftest import seen
from tests.journeys.screen import (
    Recorder,
    axis_labels,
    chart_region,
    is_loss_title,
    is_metric_title,
    sparks,
    table,
)
from tests.ui.tmux import Terminal, needs_tmux, wait_for

pytestmark = needs_tmux

CONFIG = f"""
[queue]
gpus = "none"
cpu_jobs = 2

[experiments.clock]
description = "a script that takes 4 s an epoch"
command = "python {FAKE_RUN}"
epochs = 4
steps_per_epoch = 4
sleep = 1.0
"""

PROBE = textwrap.dedent("""
    from tuiexp import track

    LOSSES = ([1.1049, 1.1031, 1.1016], [1.1045, 1.1027, 1.1014])
    ACCS = ([0.30, 0.32, 0.33], [0.29, 0.31, 0.34])
    LRS = [0.2, 0.01, 2.99e-05]
    for seed in (0, 1):
        with track.start(experiment="probe", params={"lr": 0.2, "seed": seed}) as run:
            for epoch in (1, 2, 3):
                for s in range(4):
                    run.log({"train_loss": 2.3 - 0.1 * epoch - 0.01 * s},
                            step=(epoch - 1) * 4 + s + 1)
                run.log({"val_loss": LOSSES[seed][epoch - 1], "val_acc": ACCS[seed][epoch - 1],
                         "lr": LRS[epoch - 1], "epoch_time": 20.0 + epoch + seed,
                         "images_per_s": 1000.0 - epoch}, epoch=epoch)
            if seed:
                run.warning("the probe of seed 1 has something to say")
""")


class Screen:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "experiments.toml").write_text(CONFIG)
        (root / "probe.py").write_text(PROBE)
        subprocess.run([sys.executable, "probe.py"], cwd=root, check=True, timeout=60)
        self.term = Terminal(root, 80, 24)

    def close(self) -> None:
        tuiexp(self.root, "daemon", "stop")
        self.term.close()


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screen]:
    s = Screen(tmp_path_factory.mktemp("numbers"))
    try:
        seen(s.term, lambda p: (t := table(p)) is not None and len(t.lines) == 2)
        yield s
    finally:
        s.close()


def seconds(clock: str | None) -> int | None:
    if not clock or ":" not in clock:
        return None
    m, s = clock.split(":")
    return int(m) * 60 + int(s)


@pytest.fixture(scope="module")
def clock_frames(screen: Screen) -> list[tuple[float, str]]:
    """Every capture of the 80×24 table while `clock` ran (queued after the opening),
    with the time it was seen."""
    term = screen.term
    recorder = Recorder({"80x24": term.pane}, every=0.25)
    recorder.start()
    try:
        tuiexp(screen.root, "run", "clock", check=True)
        wait_for(lambda: '"finished"' in tuiexp(screen.root, "ls", "--json", "--filter",
                                                 "exp:clock").stdout, 90, term.pane)
    finally:
        recording = recorder.stop()
    frames = []
    for t, pane in recording.frames["80x24"]:
        tb = table(pane)
        line = tb.row(lambda label: label.startswith("clock")) if tb else None
        if line and "running" in line:
            frames.append((t, pane))
    assert frames, "clock was never seen running"
    return frames


def clock_row(pane: str):
    tb = table(pane)
    return tb, tb.row(lambda label: label.startswith("clock"))


def test_the_eta_counts_down_within_an_epoch(clock_frames: list[tuple[float, str]]):
    """Within each epoch seen for 2 s or more (by the clock of the captures), the ETA
    goes down and never up."""
    by_epoch: dict[str, list[tuple[float, int]]] = {}
    for t, pane in clock_frames:
        tb, line = clock_row(pane)
        eta = seconds(tb.cell(line, "eta"))
        if eta is not None:
            by_epoch.setdefault(tb.cell(line, "epoch") or "", []).append((t, eta))
    long = {e: pts for e, pts in by_epoch.items() if pts[-1][0] - pts[0][0] >= 2}
    assert long, by_epoch  # 4 s epochs: some epoch shows an ETA for 2 s or more
    for epoch, pts in long.items():
        etas = [eta for _, eta in pts]
        assert etas[-1] < etas[0], (epoch, pts)
        assert all(b <= a for a, b in zip(etas, etas[1:], strict=False)), (epoch, pts)


def test_a_scripts_sparklines_appear_and_grow(clock_frames: list[tuple[float, str]]):
    """16 loss points and 4 epochs of the primary metric: several captures, each with
    more of a curve than the one before."""
    grew = []
    for title in (is_loss_title, is_metric_title):
        counts = [sparks(tb.cell(line, title)) for tb, line in
                  (clock_row(pane) for _, pane in clock_frames)]
        if sum(1 for a, b in zip(counts, counts[1:], strict=False) if b > a) >= 3:
            grew.append(title)
    assert grew, clock_frames[-1][1]


def to_the_probes(term: Terminal) -> None:
    """The cursor on the first of the two probe runs (where the sort put them)."""
    tb = table(seen(term, lambda p: (t := table(p)) is not None and sum(
        label.startswith("probe") for label in t.labels()) == 2))
    first = next(i for i, label in enumerate(tb.labels()) if label.startswith("probe"))
    term.keys("g", *["j"] * first)


def open_detail_of_probe(term: Terminal) -> list[str]:
    """The chart region of each page of the first probe run's detail."""
    to_the_probes(term)
    term.keys("Enter")
    pages = [chart_region(seen(term, lambda p: "│" in chart_region(p) and "probe" in p))]
    for _ in range(4):
        term.keys("n")
        region = chart_region(term.pane())
        if region == pages[-1]:
            break
        pages.append(region)
    term.keys("Escape")
    seen(term, lambda p: table(p) is not None)
    return pages


def test_the_detail_writes_whole_axis_labels(screen: Screen):
    pages = open_detail_of_probe(screen.term)
    labels = [a for page in pages for a in axis_labels(page)]
    assert labels, pages
    clipped = [a for a in labels if re.search(r"e[-+]?\d?$", a)]
    assert not clipped, (clipped, "\n\n".join(pages))
    assert any(abs(float(a) / 2.99e-05 - 1) < 0.05 for a in labels), labels  # the LR's end


def test_compare_writes_different_values_at_top_and_bottom(screen: Screen):
    term = screen.term
    to_the_probes(term)
    term.keys("Space", "Space", "C")
    pane = seen(term, lambda p: "val_loss" in p and len(axis_labels(p)) >= 4)
    term.keys("Escape")
    term.keys("u")
    labels = axis_labels(pane)
    pairs = list(zip(labels[::2], labels[1::2], strict=False))
    assert all(top != bottom for top, bottom in pairs), (pairs, pane)


def test_a_runs_warning_shows_in_its_row_and_its_detail(screen: Screen):
    term = screen.term
    tb = table(seen(term, lambda p: (t := table(p)) is not None and sum(
        label.startswith("probe") for label in t.labels()) == 2))
    warned = [line for line in tb.lines if "finished!" in line]
    assert len(warned) == 1 and tb.label(warned[0]).endswith("s1"), tb.lines
    term.keys("g", *["j"] * tb.lines.index(warned[0]), "Enter")
    pane = seen(term, lambda p: "has something to say" in p)
    assert re.search(r"warning\s+the probe of seed 1 has something to say", pane.split("╭")[0]), pane
    term.keys("Escape")
    seen(term, lambda p: table(p) is not None)
