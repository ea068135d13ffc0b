"""Points in chunks (schema 8): whatever way a log is folded — all at once, flush by flush
with the fold kept in memory, or by readers going on from the fold kept with the row —
every view reads the same points, buckets and summaries."""

from __future__ import annotations

import math
import random

import pytest

from tuiexp.store import events, runstore
from tuiexp.store.index import Index
from tuiexp.store.ingest import Fold
from tuiexp.store.paths import LogsDir
from tuiexp.store.series import Buckets, Chunk, bucketize
from tuiexp.store.spec import RunSpec


@pytest.mark.parametrize("xs", [list(range(5, 505)), list(range(0, 5000, 10)), [3],
                                [1, 2, 4, 8, 9, 30], [0, 2**62]])
def test_a_chunk_row_gives_back_its_points(xs):
    vs = [math.nan if i % 7 == 3 else math.inf if i == 1 else -i / 3 for i in range(len(xs))]
    row = Chunk(xs, vs).row()
    back = Chunk.of_row(row[0], row[2], row[3], row[4], row[5])
    assert list(back.xs) == xs
    assert [repr(v) for v in back.vs] == [repr(v) for v in vs]
    assert (row[3] is None) == (xs == [1, 2, 4, 8, 9, 30])  # xs listed only when uneven


@pytest.mark.parametrize("sparse", [False, True])
def test_buckets_made_in_one_go_equal_those_fed_point_by_point(sparse):
    """The backfill's buckets (`bucketize`, at the width that spans the finite points in
    `size` buckets) are those a live `Buckets` makes of the same points at that width;
    for points logged at every x, that is the width the live series has grown to."""
    rng = random.Random(3)
    xs = sorted(rng.sample(range(100_000), 3000)) if sparse else list(range(1, 3001))
    vs = [math.nan if rng.random() < 0.01 else -math.inf if rng.random() < 0.005
          else rng.gauss(0, 1) for _ in xs]
    for size in (1, 16, 48, 5000):
        made = bucketize(xs, vs, size)
        live = Buckets(size, 1 if not sparse else made.width)
        live.extend(zip(xs, vs, strict=True))
        assert made.width == live.width and made.items == live.items


def write_log(paths, steps: int, every: int = 1) -> None:
    lines = [events.encode("start", 1.0, {"pid": 1})]
    for s in range(0, steps, every):
        fields = {"step": s, "loss": 1 / (s + 1), "acc": math.nan if s == 40 else s / steps}
        if s % 100 == 0:  # a second shape, now and then
            fields["lr"] = 0.1
        lines.append(events.encode("step", 2.0 + s, fields))
        if s % 50 == 49:
            lines.append(events.encode("epoch", 2.0 + s, {"epoch": s // 50 + 1, "val": s / 1e3}))
    paths.events.write_bytes(b"".join(lines))


def views(index: Index, run: str) -> dict:
    row = index.run(run)
    assert row is not None
    sums = index.attach_summaries([row])[0].summaries
    return {"points": repr([index.points(row.num, n, sc) for n, sc in sorted(sums)]),  # NaN
            "after": index.points(row.num, "loss", "step", after=777, limit=300),
            "buckets": [index.buckets(row.num, n, sc, 48).items for n, sc in sorted(sums)],
            "curves": list(index.curves([row.num], ["val"]).values()),
            # (a sum of floats depends on how it was split: to the 12th digit)
            "summaries": {k: (v.count, v.last, v.last_at, v.min, v.min_at, v.max, v.max_at,
                              round(v.total, 12)) for k, v in sums.items()},
            "row": (row.epoch, row.step, row.best, row.lr, row.epoch_secs, row.epoch_gaps)}


def test_every_way_of_folding_a_log_gives_the_same_views(tmp_path):
    """All at once (reindex); by a follower that reads a few lines at a time with its fold
    in memory (the supervisor); by readers that each go on from the fold kept in the
    index (`follow`): the same points, buckets, curves and summaries."""
    logs = LogsDir.at(tmp_path)
    for rid in ("whole", "live", "readers"):
        runstore.create(logs, RunSpec(id=rid, experiment="x", params={}))
        write_log(logs.run(rid), 1200)
    with Index(logs) as index:
        index.reindex_run("whole")
        index.reindex_run("live")
        index.reindex_run("readers")
        data = logs.run("live").events.read_bytes()
        for rid in ("live", "readers"):  # the same log, arriving a few lines at a time
            logs.run(rid).events.write_bytes(data[:data.index(b"\n") + 1])
            index.reindex_run(rid)
        fold, offset = index.resume("live")
        cut = data.index(b"\n") + 1
        while cut < len(data):
            cut = data.index(b"\n", cut + 700) + 1 if data.find(b"\n", cut + 700) > 0 else len(data)
            for rid in ("live", "readers"):
                logs.run(rid).events.write_bytes(data[:cut])
            offset, _ = index.ingest("live", logs.run("live"), fold, offset)
            index.follow("readers")
        whole = views(index, "whole")
        assert views(index, "live") == whole
        assert views(index, "readers") == whole
        assert len(whole["after"]) == 300 and whole["after"][0][0] == 778


def test_a_resumed_run_that_repeats_steps_keeps_the_later_values(tmp_path):
    logs = LogsDir.at(tmp_path)
    paths = runstore.create(logs, RunSpec(id="r", experiment="x", params={}))
    first = [events.encode("step", 1.0 + s, {"step": s, "loss": 1.0}) for s in range(700)]
    again = [events.encode("start", 900.0, {"pid": 2})] + [
        events.encode("step", 1000.0 + s, {"step": s, "loss": 2.0}) for s in range(600, 800)]
    paths.events.write_bytes(b"".join(first))
    with Index(logs) as index:
        index.reindex_run("r")
        fold, offset = Fold(), 0
        fold, offset = index.resume("r")
        paths.events.write_bytes(b"".join(first + again))
        index.ingest("r", paths, fold, offset)
        num = index.run("r").num
        points = index.points(num, "loss", "step")
        assert [x for x, _ in points] == list(range(800))
        assert {v for x, v in points if x < 600} == {1.0} and {v for x, v in points if x >= 600} == {2.0}
        summary = index.attach_summaries([index.run("r")])[0].summaries[("loss", "step")]
        assert (summary.count, summary.last, summary.total) == (800, 2.0, 600 + 400.0)
        index.reindex_run("r")
        assert index.points(num, "loss", "step") == points


def test_a_rebuild_in_worker_processes_equals_one_in_process(tmp_path):
    """`tuiexp reindex` folds run directories in worker processes: the same index."""
    from tuiexp.store import ingest

    logs = LogsDir.at(tmp_path)
    for i in range(ingest.PARALLEL_FROM + 6):
        paths = runstore.create(logs, RunSpec(id=f"r{i:03d}", experiment="x", params={}))
        write_log(paths, 60 + i)
    (logs.runs / "stray").mkdir()  # a directory that cannot be a run: said, left out
    with Index(logs) as index:
        assert index.rebuild(workers=1) == ingest.PARALLEL_FROM + 6
        alone = {rid: views(index, rid) for rid in index.ids()}
        problems = list(index.problems)
        assert index.rebuild(workers=2) == ingest.PARALLEL_FROM + 6
        assert {rid: views(index, rid) for rid in index.ids()} == alone
        assert index.problems == problems and "stray" in problems[0]
