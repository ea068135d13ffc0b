"""Pure tests of the data layer: buckets, sparklines, tree order, confusion summary."""

import pytest

from tuiexp.core.index import RunRow
from tuiexp.ui.data import Buckets, sparkline, summarize_confusion, tail, visible_order


def row(rid, parent=None, created=0.0, status="finished", best=None):
    return RunRow(id=rid, experiment="x", parent=parent, fork_epoch=1 if parent else None,
                  created=created, priority=0, queue_pos=created, status=status, message="",
                  epoch=None, epochs=None, step=None, best_val_acc=best, best_epoch=None,
                  last_epoch={}, last_step={}, meta={}, checkpoints=[], started=None, ended=None,
                  gpu=None, pid=None, attempt=0, spec={}, seq=1)


def test_buckets_stay_bounded_and_keep_extremes():
    b = Buckets(16)
    for i in range(5000):
        b.add(i, float(i % 100))
    assert len(b.items) <= 16
    assert min(x[1] for x in b.items) == 0 and max(x[2] for x in b.items) == 99
    assert sum(x[4] for x in b.items) == 5000


def test_sparkline_width_and_shape():
    assert sparkline([1, 2, 3, 4], 4) == "▁▃▆█"
    assert len(sparkline(list(range(100)), 12)) == 12
    assert sparkline([], 5) == "     "


def test_tree_puts_forks_under_parents_and_filter():
    rows = {r.id: r for r in [row("a", created=1), row("b", created=2), row("a1", "a", 3),
                              row("a1x", "a1", 4)]}
    assert visible_order(rows) == [("a", 0), ("a1", 1), ("a1x", 2), ("b", 0)]
    assert [r for r, _ in visible_order(rows, tree=False)] == ["a", "b", "a1", "a1x"]
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


def test_a_forks_steps_span_its_own_epochs():
    from dataclasses import replace

    from tuiexp.ui.data import Detail

    child = replace(row("c", parent="p"), epoch=3, step=100)  # forked at epoch 1, 40 steps since
    steps = [(float(s), 1.0, 1.0, 1.0) for s in range(61, 101)]
    xs = [x for x, *_ in Detail(child, [], [], steps, [], "").steps_as_epochs()]
    assert abs(xs[0] - 1.05) < 0.01 and xs[-1] == 3.0
    parent = replace(row("p"), epoch=2, step=40)
    xs = [x for x, *_ in Detail(parent, [], [], [(20.0, 1, 1, 1), (40.0, 1, 1, 1)], [], "").steps_as_epochs()]
    assert xs == [1.0, 2.0]
