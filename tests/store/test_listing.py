"""A listing's metric columns are read straight from the summaries and formatted column
by column (issue 21.5): the same values and cells as the row-by-row way, which every
other view uses."""

from __future__ import annotations

import math
import random

from tuiexp.store import events, query, runstore
from tuiexp.store.index import Index
from tuiexp.store.metrics import fmt_value, fmt_values
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


def test_a_column_formatted_at_once_reads_as_cell_by_cell():
    rng = random.Random(1)
    columns = [[rng.random() for _ in range(300)], [rng.gauss(0, 1e3) for _ in range(300)],
               [1.0, 2.0, 12345.0, 0.5], [math.nan, math.inf, -math.inf, 0.25, -0.0],
               [0.0, 1.0, 0.5, -0.0], [1e-9, 123456789.0, 3.0], [None, 0.5, 3, "x", True],
               [], [-0.0, -3.0, 1234.0, -1e-5, 1e20]]
    for name in ("val/loss", "val/acc", "lr"):
        for values in columns:
            assert fmt_values(name, values) == [fmt_value(name, v) for v in values]


def test_column_values_are_what_value_reads_from_summaries(tmp_path):
    """last/best/min/max of every run, epoch level first, a run's own mode for its
    primary metric, NaN as the last value, and None where a run never logged the name."""
    logs = LogsDir.at(tmp_path)
    specs = [RunSpec(id="a", experiment="x", params={}, metric="val/loss", mode="max"),
             RunSpec(id="b", experiment="x", params={}),
             RunSpec(id="c", experiment="x", params={})]
    lines = {
        "a": [("epoch", {"epoch": 1, "val/loss": 0.5, "acc": 0.2}),
              ("epoch", {"epoch": 2, "val/loss": 0.7, "acc": math.nan})],
        "b": [("step", {"step": 1, "val/loss": 0.9, "acc": 0.1}),
              ("step", {"step": 2, "val/loss": 0.3, "acc": 0.4}),
              ("epoch", {"epoch": 1, "acc": 0.35})],
        "c": [("step", {"step": 1, "other": 1.0})],
    }
    for spec in specs:
        paths = runstore.create(logs, spec)
        paths.events.write_bytes(b"".join(events.encode(k, 1.0, f) for k, f in lines[spec.id]))
    with Index(logs) as index:
        index.rebuild()
        columns = [f"{agg}:{name}" for agg in query.AGGREGATES for name in ("val/loss", "acc")]
        columns += ["acc", "best", "best_epoch", "epochs_run"]
        rows = query.load_runs(index)
        got = query.column_values(index, rows, columns)
        for c, values in zip(columns, got, strict=True):
            assert [repr(v) for v in values] == [repr(query.value(r, c)) for r in rows], c
        best_loss = dict(zip([r.id for r in rows], got[columns.index("best:val/loss")],
                             strict=True))
        assert best_loss == {"a": 0.7, "b": 0.3, "c": None}  # a's own mode: max
