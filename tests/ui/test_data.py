"""Pure tests of the data layer: buckets, sparklines, tree order, confusion summary."""

import pytest

from tuiexp.store.index import RunRow
from tuiexp.ui.data import Buckets, sparkline, summarize_confusion, tail, visible_order


def row(rid, parent=None, created=0.0, status="finished", best=None):
    return RunRow(id=rid, experiment="x", parent=parent, fork_epoch=1 if parent else None,
                  created=created, queue_pos=created, status=status, best=best,
                  metric="val_acc" if best is not None else None, mode="max", seq=1)


def test_buckets_stay_bounded_and_keep_extremes():
    b = Buckets(16)
    for i in range(5000):
        b.add(i, float(i % 100))
    assert len(b.items) <= 16 and b.items[-1][0] == 4999
    assert min(x[1] for x in b.items) == 0 and max(x[2] for x in b.items) == 99
    b.add(5000, float("nan"))  # skipped, never a min or max
    assert max(x[2] for x in b.items) == 99


def test_sparkline_width_and_shape():
    assert sparkline([1, 2, 3, 4], 4) == "▁▃▆█"
    assert len(sparkline(list(range(100)), 12)) == 12
    assert sparkline([], 5) == "     "


def test_tree_puts_forks_under_parents_and_filter():
    rows = {r.id: r for r in [row("a", created=1), row("b", created=2), row("a1", "a", 3),
                              row("a1x", "a1", 4)]}
    # newest first (`▼age`), a fork under its parent whatever its age
    assert visible_order(rows) == [("b", 0), ("a", 0), ("a1", 1), ("a1x", 2)]
    assert [r for r, _ in visible_order(rows, tree=False)] == ["a1x", "a1", "b", "a"]
    assert visible_order(rows, text="a1x") == [("a1x", 0)]


def test_confusion_summary():
    cur = {"epoch": 2, "labels": ["cat", "dog"], "matrix": [[8, 2], [5, 5]]}
    prev = {"epoch": 1, "labels": ["cat", "dog"], "matrix": [[5, 5], [5, 5]]}
    s = summarize_confusion(cur, prev)
    assert s.worst[0] == ("dog", 0.5, 10)
    assert s.pairs[0] == ("dog", "cat", 5, 0.5)
    assert [name for name, _ in s.changes] == ["cat"] and s.changes[0][1] == pytest.approx(0.3)


def test_tail_reads_only_the_end(tmp_path):
    p = tmp_path / "out.log"
    p.write_text("".join(f"line {i}\n" for i in range(100_000)))
    text = tail(p, max_bytes=1000, lines=5)
    assert text.splitlines() == [f"line {i}" for i in range(99_995, 100_000)]


def test_live_and_backfilled_series_are_the_same_buckets(tmp_path):
    """A series fed point by point (live) equals the one SQLite aggregates (backfill)."""
    import math

    from tuiexp.store import events, runstore
    from tuiexp.store.index import Index
    from tuiexp.store.paths import LogsDir
    from tuiexp.store.spec import RunSpec

    logs = LogsDir.at(tmp_path)
    spec = RunSpec(id="r", experiment="x", params={})
    paths = runstore.create(logs, spec)
    ys = [math.sin(s / 7) + (5.0 if s == 333 else 0.0) for s in range(1, 1001)]  # one spike
    paths.events.write_bytes(b"".join(events.encode("step", 0.0, {"step": s, "loss": y})
                                      for s, y in zip(range(1, 1001), ys, strict=True)))
    live = Buckets(40)
    live.extend(zip(range(1, 1001), ys, strict=True))
    with Index(logs) as index:
        index.reindex_run("r")
        backfilled = index.buckets(index.run("r").num, "loss", "step", 40)
    assert backfilled.width == live.width and len(live) <= 40
    assert [[round(v, 9) for v in b] for b in backfilled.items] == \
        [[round(v, 9) for v in b] for b in live.items]
    assert max(b[2] for b in live.items) == max(ys)  # the spike stays visible
