"""The dashboard half of the plain-script journey (issue 18.3; the CLI half is
tests/journeys/test_plain_scripts_cli.py): from an EMPTY logs directory, at 80×24 and
100×30, a user queues with `n` an argparse script that prints `epoch N name value`
lines under `scalars = "stdout"`, and one that prints nothing a metric can be read
from. The first shows its epochs, its best and its curve; the second says, in the row
and in its detail, that no metric was found.

Reading such lines and writing the warning is the stdout-scalars wrapper's work
(track/scalars.py); these steps check what the dashboard shows of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import tuiexp
from tests.journeys.conftest import dialog_open, seen
from tests.journeys.plain_scripts import FIT, QUIET
from tests.journeys.screen import chart_region, is_loss_title, sparks, table
from tests.ui.tmux import Terminal, needs_tmux, wait_for

pytestmark = needs_tmux

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 2

[experiments.plain]
description = "an argparse script printing epoch lines"
command = "python fit.py --lr {lr} --seed {seed} --epochs {epochs}"
scalars = "stdout"
lr = 0.01
seed = 0
epochs = 6

[experiments.quiet]
description = "a script that prints no metric"
command = "python quiet.py"
scalars = "stdout"
"""
EXPERIMENTS = ("plain", "quiet")


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "fit.py").write_text(FIT)
        (root / "quiet.py").write_text(QUIET)
        (root / "experiments.toml").write_text(CONFIG)
        self.terminals = {"80x24": Terminal(root, 80, 24), "100x30": Terminal(root, 100, 30)}

    def queue_with_n(self, experiment: str) -> None:
        term = self.terminals["80x24"]
        term.keys("n")
        seen(term, lambda p: dialog_open(p) and "quiet" in p)
        term.keys(*["Down"] * EXPERIMENTS.index(experiment), "Enter")
        term.wait(lambda: not dialog_open(term.pane()))

    def finished(self, experiment: str) -> None:
        wait_for(lambda: '"finished"' in tuiexp(self.root, "ls", "--json", "--filter",
                                                f"exp:{experiment}").stdout, 60)

    def close(self) -> None:
        tuiexp(self.root, "daemon", "stop")
        for term in self.terminals.values():
            term.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    p = Project(tmp_path_factory.mktemp("plain-scripts"))
    try:
        for term in p.terminals.values():
            term.wait_text("No runs yet", "press n")
        yield p
    finally:
        p.close()


def test_a_plain_scripts_epochs_best_and_curve_show(project: Project):
    project.queue_with_n("plain")
    project.finished("plain")
    for term in project.terminals.values():
        tb = term.wait(lambda t=term: (x := table(t.pane())) and x.row(
            lambda label: label == "plain") and "finished" in x.row(lambda label: label == "plain") and x)
        line = tb.row(lambda label: label == "plain")
        assert tb.cell(line, "epoch") == "6/6" and tb.cell(line, "best") == "25.6%", line
        assert sparks(tb.cell(line, is_loss_title)) >= 3, (tb.header, line)
        assert "!" not in line  # no warning


def test_a_script_that_printed_no_metric_says_so_in_the_row_and_the_detail(project: Project):
    project.queue_with_n("quiet")
    project.finished("quiet")
    for term in project.terminals.values():
        tb = term.wait(lambda t=term: (x := table(t.pane())) and x.row(
            lambda label: label == "quiet") and "finished" in x.row(lambda label: label == "quiet") and x)
        assert "finished!" in tb.row(lambda label: label == "quiet"), tb.lines  # the mark
    term = project.terminals["80x24"]
    rows = table(term.pane()).labels()
    term.keys("g", *["j"] * rows.index("quiet"), "Enter")
    pane = seen(term, lambda p: "warning" in p and "╭" in p)
    header = pane.split("╭")[0]
    assert re.search(r"warning\s+no metric", header), pane
    assert chart_region(pane).strip()  # the charts' place says there is nothing to chart
    term.keys("Escape")
