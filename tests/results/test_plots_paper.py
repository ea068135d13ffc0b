"""Plots fit for a paper, checked through matplotlib's own objects: the params plot's log
axis, its tick labels, points, labels and fit; legends without internal keys; bands for
grouped seeds; figure formats; the report's params figure for a budget sweep."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tuiexp.cli import build_parser
from tuiexp.errors import UsageError
from tuiexp.results import plots, report
from tuiexp.store import query
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

from .budget_logs import BUDGETS, SEEDS, build


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> LogsDir:
    return build(tmp_path_factory.mktemp("budget") / "logs")


@pytest.fixture(scope="module")
def records(logs: LogsDir) -> list:
    with Index(logs) as index:
        index.rebuild()
        rows = query.load_runs(index)
        return query.attach_curves(index, rows, index.metric_names("epoch"))


def of(records: list, *experiments: str) -> list:
    return [r for r in records if r.experiment in experiments]


def drawn(fig) -> object:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_params_plot_has_a_readable_log_axis_and_a_labelled_point_per_budget(records) -> None:
    fig = plots.params_plot(of(records, "size"))
    renderer = drawn(fig)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    shown = [t for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert [t.get_text() for t in shown] == ["1k", "10k", "100k", "1M"]
    (line,) = [c for c in ax.containers]  # one errorbar per line: one line here
    xs, ys = line.lines[0].get_data()
    assert len(xs) == len(BUDGETS)
    assert [round(x / b, 2) for x, b in zip(xs, BUDGETS, strict=True)] == [pytest.approx(1, abs=0.05)] * 8
    # the mean over the three seeds, and the std as the bar
    bars = line.lines[2][0].get_segments()
    assert len(bars) == len(BUDGETS) and all(seg[1][1] > seg[0][1] for seg in bars)
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["1k", "5k", "10k", "50k", "100k", "350k", "500k", "1M"]
    # nothing spills out of the figure, and the axes keep most of it (not squeezed)
    box = fig.bbox
    for text in [*ax.texts, ax.xaxis.label, ax.yaxis.label, *shown]:
        if text.get_text() and text.get_visible():
            ext = text.get_window_extent(renderer)
            assert box.x0 - 1 <= ext.x0 and ext.x1 <= box.x1 + 1, text.get_text()
            assert box.y0 - 1 <= ext.y0 and ext.y1 <= box.y1 + 1, text.get_text()
    assert ax.get_position().height > 0.6 and ax.get_position().width > 0.7


def test_params_plot_draws_a_line_per_family_and_fits_each(records) -> None:
    fig = plots.params_plot(of(records, "size", "size-vgg"), fit=True)
    drawn(fig)
    (ax,) = fig.axes
    assert len(ax.containers) == 2
    fits = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(fits) == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "size" and legend[1].startswith("fit: ")
    assert legend[2] == "size-vgg" and legend[3].startswith("fit: ")
    assert not any("budget" in t or "model_args" in t for t in legend)


def test_the_log_linear_fit_recovers_the_line() -> None:
    pts = [plots.Point(x, 0.2 + 0.1 * math.log10(x), 0.0, 1, "") for x in (1e3, 1e4, 1e5)]
    a, b = plots.fit_log_linear(pts)
    assert (a, b) == (pytest.approx(0.2), pytest.approx(0.1))
    assert plots.fit_log_linear(pts[:1]) is None


def test_si_labels() -> None:
    assert [plots.si(x) for x in (999, 1000, 12345, 350_000, 1e6, 2.5e9)] == \
        ["999", "1k", "12.3k", "350k", "1M", "2.5G"]


def test_curve_legends_name_what_differs_and_no_internal_key(records) -> None:
    fig = plots.curves(of(records, "dropout"), ["val_acc"])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["dropout=0 (n=3)", "dropout=0.2 (n=3)", "dropout=0.4 (n=3)",
                      "dropout=0, schedule=adam lr=0.001, fork@3"]
    (ax,) = fig.axes
    assert len(ax.collections) == 3  # a ±1 std band per group of seeds, none for the single fork


def test_a_budget_sweep_s_curves_are_named_by_budget_in_order(records) -> None:
    fig = plots.curves(of(records, "size"), ["val_acc", "val_loss"])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [f"budget={plots.si(b)} (n={len(SEEDS)})" for b in BUDGETS]
    colors = [line.get_color() for line in fig.axes[0].get_lines()]
    # one number differs: a sequential colour map, dark to light as the budget grows
    lum = [0.3 * c[0] + 0.6 * c[1] + 0.1 * c[2] for c in colors]
    assert lum == sorted(lum)


def test_figure_formats_by_suffix_and_flags(records, tmp_path: Path) -> None:
    fig = plots.params_plot(of(records, "size"))
    written = plots.save(fig, tmp_path / "p.pdf", svg=True)
    assert [p.name for p in written] == ["p.pdf", "p.svg"]
    assert written[0].read_bytes().startswith(b"%PDF")
    written = plots.save(fig, tmp_path / "q", pdf=True)
    assert [p.name for p in written] == ["q.png", "q.pdf"]
    assert written[0].read_bytes().startswith(b"\x89PNG")
    assert written[1].read_bytes().startswith(b"%PDF")
    with pytest.raises(UsageError, match=r"cannot write a figure as p\.jpg: end the file name in \.png"):
        plots.save(fig, tmp_path / "p.jpg")


def test_cli_plot_params_with_fit_and_pdf(logs: LogsDir, tmp_path: Path) -> None:
    out = tmp_path / "size.png"
    args = build_parser().parse_args(["plot", "params", "--logs", str(logs.root), "-e", "size",
                                      "--fit", "--pdf", "-o", str(out)])
    assert args.func(args) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and out.with_suffix(".pdf").exists()


def test_the_report_embeds_the_params_plot_of_a_budget_sweep(logs: LogsDir, records,
                                                             tmp_path: Path) -> None:
    with Index(logs) as index:
        path = report.write_report(query.load_runs(index), index, tmp_path / "rep",
                                   experiments=["size"], pdf=True)
    md = path.read_text()
    assert "![best primary metric against parameter count](figures/size-params.png)" in md
    assert "[PDF](figures/size-params.pdf)" in md
    assert (tmp_path / "rep" / "figures" / "size-params.pdf").exists()


def test_the_export_of_the_same_runs_has_no_internal_or_empty_table_columns(records: list) -> None:
    from tuiexp.results import export

    keys = [c.key for c in export.build_table(records).columns]
    assert "schedule_start" not in keys  # the fork's bookkeeping, not a param the user set
    assert "model_args" not in keys and "model_args.widths" in keys  # `{}` adds no column
    assert "schedule_start" in [c.key for c in export.build_table(records, ["schedule_start"]).columns]
