"""Figures are written and look like something; the report links only files that exist."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from PIL import Image

from tests.results.conftest import SWEEP
from tests.results.test_export import parse
from tuiexp.errors import UsageError
from tuiexp.results import plots, report
from tuiexp.results.plots import lineage, mean_series, per_class_accuracy
from tuiexp.store.index import Index


def ink(path) -> tuple[tuple[int, int], int]:
    """(image size, number of pixels that are not near-white)."""
    img = Image.open(path).convert("L")
    return img.size, sum(img.histogram()[:200])


def test_cli_plots(logs, tmp_path):
    root = str(logs.root)
    for argv, stem in [
        (["plot", "curves", "--logs", root, "--svg"], "curves"),
        (["plot", "curves", "--logs", root, "--no-group", "--metric", "train_loss", "-e", SWEEP],
         "runs"),
        (["plot", "params", "--logs", root], "params"),
        (["plot", "confusion", "bs32-s0", "--logs", root, "--epoch", "2"], "confusion"),
    ]:
        out = tmp_path / f"{stem}.png"
        args = parse([*argv, "-o", str(out)])
        assert args.func(args) == 0
        size, dark = ink(out)
        assert size[0] > 400 and size[1] > 250
        assert dark > 2000, f"{stem}.png looks empty"  # the numbers: the tests below
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")


def test_curves_draw_each_groups_mean_and_a_band_only_where_seeds_differ(records):
    # what the pixels of test_cli_plots cannot show: the right numbers on the axes
    sweep = [r for r in records if r.experiment == SWEEP]
    ax = plots.curves(sweep, metrics=("val_acc",)).axes[0]
    drawn = sorted(tuple(round(float(y), 6) for y in line.get_ydata()) for line in ax.get_lines())
    # bs=32: the mean of its three seeds; bs=64: its one run with metrics; bs=128 queued
    assert drawn == [(0.45, 0.6, 0.55), (0.6, 0.8, 0.75)]
    assert len(ax.collections) == 1  # the ±std band of bs=32's seeds


def test_fork_continues_from_its_parents_prefix(records):
    by_id = {r.id: r for r in records}
    fork = by_id["tune-lr001"]
    assert lineage(fork, by_id, "val_acc") == [(1, 0.30), (2, 0.50)]  # the parent's, to epoch 2
    assert [x for x, _ in fork.curves["val_acc"]] == [3, 4]


def test_mean_series_and_class_accuracy():
    xs, mean, std = mean_series([[(1, 0.5), (2, 0.7)], [(1, 0.7)]])
    assert xs == [1, 2] and mean == pytest.approx([0.6, 0.7])
    assert std == pytest.approx([0.1414213, 0.0])
    assert per_class_accuracy([[3, 1], [0, 0]]) == [0.75, None]


def test_plot_errors(logs, records):
    with Index(logs) as index:
        with pytest.raises(UsageError, match="choose from: 1, 2, 3"):
            plots.pick_confusion(index, "bs32-s0", epoch=9)
        with pytest.raises(UsageError, match="no confusion"):
            plots.pick_confusion(index, "bs128-s0")
    with pytest.raises(UsageError, match="nothing to plot"):
        plots.curves([r for r in records if r.id == "bs128-s0"])
    with pytest.raises(UsageError, match="no metric 'val/acc'.*choose from: best, .*val_acc"):
        plots.params_plot(records, metric="val/acc")


def test_report_links_only_existing_files(logs, records, tmp_path):
    config = tmp_path / "experiments.toml"
    config.write_text('[experiments.fine_tune]\nlr = 0.1\naugment = { flip = true }\n')
    args = parse(["report", "--logs", str(logs.root), "--config", str(config),
                  "-o", str(tmp_path / "rep")])
    assert args.func(args) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert len(links) >= 7  # three tables, two experiments' curves and confusions, params
    for link in links:
        assert (tmp_path / "rep" / link).is_file(), link
    assert "figures/bs_sweep-50-params.png" in md
    assert "## bs\\_sweep&50%" in md and "## fine\\_tune" in md
    assert "[experiments.fine_tune]\naugment.flip = true\nlr = 0.1" in md
    assert "| tune-lr001 | 0 | finished | tune-base | 2 |" in md
    with pytest.raises(UsageError, match="choose from"):
        with Index(logs) as index:
            report.write_report(records, index, tmp_path / "x", experiments=["nope"])


def test_importing_results_modules_does_not_import_matplotlib():
    code = ("import sys, tuiexp.results.export, tuiexp.results.plots, tuiexp.results.report, "
            "tuiexp.cli.results; bad = [m for m in ('matplotlib', 'torch', 'textual') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
