"""Results tables: golden files per format, statistics by hand, filters, errors."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from tests.results.conftest import SWEEP, check_golden
from tuiexp.cli import results as cli_results
from tuiexp.errors import UsageError
from tuiexp.results import export
from tuiexp.results.grouping import Stat, varying_keys
from tuiexp.store.query import compact, flatten


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_grouped_golden(records, fmt):
    check_golden(f"grouped{export.SUFFIX[fmt]}", export.render(records, fmt))


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_runs_golden(records, fmt):
    check_golden(f"runs{export.SUFFIX[fmt]}", export.render(records, fmt, no_group=True))


def test_group_by_and_sort_golden(records):
    text = export.render(records, "md", group_by=["batch_size"], sort="-best_val_acc")
    check_golden("group_by_batch_size.md", text)


def test_columns_golden(records):
    cols = ["run", "augment.flip", "seed", "final_val_top5", "best_val_acc"]
    check_golden("columns.csv", export.render(records, "csv", columns=cols, no_group=True))


def _row(table, first_member):
    return next(r for r in table.rows if r.members[0] == first_member)


def test_mean_and_sample_std_by_hand(records):
    table = export.build_table(records)
    bs32 = _row(table, "bs32-s0")
    assert bs32.members == ["bs32-s0", "bs32-s1", "bs32-s2"]
    best = bs32.values["best_val_acc"]  # 0.5, 0.6, 0.7
    assert best.n == 3
    assert best.mean == pytest.approx(0.6)
    # sample std: sqrt(((0.5-0.6)^2 + 0 + (0.7-0.6)^2) / (3-1)) = 0.1
    assert best.std == pytest.approx(math.sqrt((0.01 + 0.01) / 2))
    final = bs32.values["final_val_acc"]  # 0.45, 0.55, 0.65
    assert (final.mean, final.std) == (pytest.approx(0.55), pytest.approx(0.1))
    loss = bs32.values["final_val_loss"]  # 2.2 - 2*acc: 1.3, 1.1, 0.9
    assert (loss.mean, loss.std) == (pytest.approx(1.1), pytest.approx(0.2))
    assert bs32.values["train_time"].mean == pytest.approx(11 + 12 + 13)


def test_crashed_member_neither_dropped_nor_breaking_the_mean(records):
    table = export.build_table(records)
    bs64 = _row(table, "bs64-s0")
    assert bs64.members == ["bs64-s0", "bs64-s1"]
    assert bs64.values["n"] == 2
    assert bs64.values["best_val_acc"] == Stat(0.8, None, 1)  # one run has it: no std
    assert bs64.values["status"] == "1 finished, 1 crashed"
    queued = _row(table, "bs128-s0")
    assert queued.values["best_val_acc"] == Stat(None, None, 0)
    md = export.format_table(table, "md")
    assert "0.8000 (n=1)" in md and "| bs128-s0 | 1 |" in md


def test_runs_without_metrics_are_listed(records):
    csv_text = export.render(records, "csv", no_group=True)
    lines = {line.split(",")[0]: line for line in csv_text.splitlines()[1:]}
    assert len(lines) == len(records) == 8
    assert lines["bs64-s1"].endswith(",crashed,64,0.1,,1,,,,,,,,")
    assert ",queued," in lines["bs128-s0"]


def test_varying_params_only(records):
    sweep = [r for r in records if r.experiment == SWEEP]
    header = export.render(sweep, "csv", no_group=True).splitlines()[0].split(",")
    assert "batch_size" in header and "seed" in header
    assert "lr" not in header and "augment.flip" not in header  # the same everywhere
    assert "parent" not in header  # no fork among these runs
    grouped = export.render(sweep, "csv").splitlines()[0].split(",")
    assert "seed" not in grouped and "best_val_acc_std" in grouped and "members" in grouped


def test_flatten_and_compact():
    flat = flatten({"augment": {"flip": True, "crop": {"pad": 4}}, "lr": 1e-3})
    assert flat == {"augment.flip": True, "augment.crop.pad": 4, "lr": 1e-3}
    assert compact([{"opt": "adam", "epochs": 10}, {"opt": "sgd", "epochs": 20}]) == (
        "opt=adam,epochs=10 → opt=sgd,epochs=20")
    assert compact([0.1, 0.01]) == "[0.1, 0.01]" and compact(False) == "false"
    assert varying_keys([{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1}]) == ["b"]


def test_latex_escapes_and_bolds(records):
    tex = export.render(records, "latex", no_group=True)
    assert r"bs\_sweep\&50\%" in tex and "bs_sweep&" not in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\midrule" in tex
    assert r"\textbf{0.8000}" in tex  # best of best_val_acc (max)
    assert r"\textbf{0.7000}" in tex  # best of final_val_loss (min)
    assert export.latex_escape("a&b%c$d#e_f{g}h~i^j\\k") == (
        r"a\&b\%c\$d\#e\_f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")


def test_json_is_typed(records):
    doc = json.loads(export.render(records, "json"))
    row = next(r for r in doc["rows"] if r["members"][0] == "bs32-s0")
    assert row["batch_size"] == 32 and row["lr"] == 0.1
    assert row["best_val_acc"]["n"] == 3 and row["num_params"] == {"mean": 1000.0, "std": 0.0, "n": 3}
    fork = next(r for r in doc["rows"] if r["members"] == ["tune-lr001"])
    assert fork["parent"] == "tune-base" and fork["fork_epoch"] == 2
    assert fork["schedule"][0] == {"opt": "adam", "epochs": 2}


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"columns": ["best_acc"]}, "column 'best_acc'"),
        ({"group_by": ["dropout"]}, "group by 'dropout'"),
        ({"sort": "nope"}, "sort by 'nope'"),
        ({"group_by": ["lr"], "no_group": True}, "either"),
    ],
)
def test_bad_table_input(records, kwargs, word):
    with pytest.raises(UsageError) as e:
        export.render(records, "md", **kwargs)
    assert word in str(e.value)
    if "column" in word or "group by" in word:
        assert "choose from: " in str(e.value) and "batch_size" in str(e.value)


def test_bad_filters_and_format(records):
    with pytest.raises(UsageError, match=r"choose from: bs_sweep&50%, fine_tune\."):
        export.select(records, experiments=["nope"])
    with pytest.raises(UsageError, match="choose from: queued, "):
        export.select(records, statuses=["done"])
    with pytest.raises(UsageError, match="choose from: csv, md, latex, json"):
        export.render(records, "xlsx")
    assert len(export.select(records, statuses=["crashed", "queued"])) == 2


# -- through argparse, as `tuiexp export` ----------------------------------------


def parse(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--logs", default="./logs")
    common.add_argument("--config", default="./experiments.toml")
    parser = argparse.ArgumentParser(prog="tuiexp")
    cli_results.add_parsers(parser.add_subparsers(dest="cmd", required=True), common)
    return parser.parse_args(argv)


def test_cli_export_to_file_and_stdout(logs, tmp_path, capsys):
    out = tmp_path / "t" / "results.tex"
    args = parse(["export", "--logs", str(logs.root), "-e", SWEEP, "--status", "finished,crashed",
                  "--sort=-best_val_acc", "-o", str(out)])
    assert args.func(args) == 0
    tex = out.read_text()
    assert tex.startswith("% requires \\usepackage{booktabs}") and "bs128" not in tex
    assert tex.index("bs64-s0") < tex.index("bs32-s0")  # sorted descending
    args = parse(["export", "--logs", str(logs.root), "--format", "csv", "--no-group",
                  "--columns", "run,status", "--run", "bs64-s1"])
    assert args.func(args) == 0
    assert capsys.readouterr().out == "run,status\nbs64-s1,crashed\n"


def test_cli_bad_input_is_a_usage_error(logs):
    args = parse(["export", "--logs", str(logs.root), "--group-by", "nope"])
    with pytest.raises(UsageError) as e:
        args.func(args)
    assert e.value.exit_code == 2
