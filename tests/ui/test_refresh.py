"""The refresh path: the poller's tick reads only what changed (histories and resources
come from its chores), and the table's row-by-row repaint draws what a fresh table would."""

from __future__ import annotations

import math
from dataclasses import replace

from textual.app import App, ComposeResult

from tuiexp.store import events, runstore
from tuiexp.store.index import Index, RunRow
from tuiexp.store.metrics import KeySummary
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec
from tuiexp.ui.data import Poller, RunState, Spark
from tuiexp.ui.widgets.runs_table import RunsTable


def row(rid: str, created: float, status: str = "finished", step: int | None = None) -> RunRow:
    return RunRow(id=rid, experiment="x", created=created, queue_pos=created, status=status,
                  epoch=1, epochs=4, step=step, metric="val_acc", mode="max", best=0.5, best_at=1,
                  summaries={("lr", "step"): KeySummary("lr", "step", 1, 0.1, 1)},
                  started=100.0, ended=None if status == "running" else 160.0,
                  spec={"params": {"batch_size": 32}}, seq=1)


def state(r: RunRow, points: int) -> RunState:
    st = RunState(r)
    st.sparks[0] = Spark("train_loss", "step")
    st.sparks[0].buckets.extend((i, math.sin(i / 3)) for i in range(points))
    return st


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunsTable()


def lines(table: RunsTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_row_repaint_matches_a_fresh_table():
    states = [state(row(f"r{i:02d}", i, "running" if i % 3 == 0 else "finished", 5), 5)
              for i in range(30)]
    app, fresh = TableApp(), TableApp()
    async with app.run_test(size=(160, 20)) as pilot:
        table = app.query_one(RunsTable)
        table.apply(states, [], 200.0)
        await pilot.pause()
        before = lines(table)  # fills the render caches the repaint must not reuse
        later = [state(replace(st.row, epoch=3, best=0.75, step=9), 9)
                 for st in states[::3]]
        written = table.apply(later, [], 203.5)
        assert 0 < written < len(states) * 13  # cells, not the whole table
        await pilot.pause()
        after = lines(table)
        assert after != before
    async with fresh.run_test(size=(160, 20)) as pilot:
        other = fresh.query_one(RunsTable)
        by_id = {st.id: st for st in states} | {st.id: st for st in later}
        other.apply(list(by_id.values()), [], 203.5)
        await pilot.pause()
        assert lines(other) == after


def seed(logs: LogsDir, n: int, points: int) -> None:
    """`n` finished runs, each with `points` step losses and one epoch, indexed for real."""
    with Index(logs) as index:
        for i in range(n):
            spec = RunSpec(id=f"run-{i}", experiment="x", params={"epochs": 3}, created=1e9 + i)
            paths = runstore.create(logs, spec)
            lines = [events.encode("step", 0.0, {"step": s, "train_loss": 1 / s, "lr": 0.1})
                     for s in range(1, points + 1)]
            lines.append(events.encode("epoch", 0.0, {"epoch": 1, "val_acc": 0.5}))
            lines.append(events.encode("status", 0.0, {"status": "finished"}))
            paths.events.write_bytes(b"".join(lines))
            index.reindex_run(spec.id)


def test_tick_reads_changes_and_chores_bring_histories(tmp_path):
    logs = LogsDir.at(tmp_path / "logs").ensure()
    seed(logs, 5, 300)
    poller = Poller(logs, backfill_batch=2)
    try:
        first = poller.poll()
        assert first.first and len(first.changed) == 5 and first.resources is None
        assert not any(st.sparks[0] for st in first.changed)  # the table first, no history
        assert poller.poll().changed == []  # nothing changed, nothing read
        poller.chores()
        second = poller.poll()
        assert len(second.changed) == 2 and second.resources is not None
        assert all(st.backfilled and st.values(0) and st.values(1) for st in second.changed)
        assert second.changed[0] is not first.changed[0]  # a new state: the UI's is untouched
        while poller.backfilling:
            poller.chores()
        assert {st.id for st in poller.poll().changed} == {"run-2", "run-3", "run-4"}
        assert all(len(sp.buckets) <= sp.buckets.size for st in poller.states.values()
                   for sp in st.sparks if sp)
    finally:
        poller.close()


def test_a_deleted_newest_run_does_not_hide_later_changes(tmp_path):
    """Deleting the row with the highest seq hands that seq to the next write; the
    poller must still see the write (it reads every row again)."""
    logs = LogsDir.at(tmp_path / "logs").ensure()
    seed(logs, 3, 10)
    poller = Poller(logs)
    try:
        poller.poll()
        with Index(logs) as index:
            newest = max(index.runs(), key=lambda r: r.seq)
            index.delete(newest.id)
            other = next(r.id for r in index.runs())
            index.set_status(other, "failed", "boom")
            index.set_status(other, "crashed", "boom")  # both below the old max seq
        polled = {st.id: st.row.status for st in poller.poll().changed}
        assert polled.get(other) == "crashed"
        poller.chores()
        assert newest.id not in poller.states
    finally:
        poller.close()


def test_a_run_first_seen_queued_gets_its_sparklines_as_its_points_arrive(tmp_path):
    """Issue 18.1: a run queued while the dashboard is open has no history when first
    seen; its sparklines must appear with its first points and grow with the next."""
    from tuiexp.store.ingest import Fold

    logs = LogsDir.at(tmp_path / "logs").ensure()
    spec = RunSpec(id="late-run", experiment="x", params={"epochs": 3}, created=1e9)
    paths = runstore.create(logs, spec)
    poller = Poller(logs)
    fold, offset = Fold(), 0
    try:
        with Index(logs) as index:
            index.add_run(spec)
            poller.poll()
            while poller.backfilling:
                poller.chores()
            assert poller.poll().changed[0].sparks == [None, None]  # nothing logged yet
            seen = []
            for epoch in (1, 2, 3):
                with open(paths.events, "ab") as f:
                    f.write(b"".join(events.encode("step", 0.0, {"step": s, "train_loss": 1 / s})
                                     for s in range(epoch * 10 - 9, epoch * 10 + 1)))
                    f.write(events.encode("epoch", 0.0, {"epoch": epoch, "val_acc": epoch / 4}))
                offset, _ = index.ingest(spec.id, paths, fold, offset)
                (st,) = poller.poll().changed
                seen.append((len(st.values(0)), len(st.values(1))))
        assert seen == [(10, 1), (20, 2), (30, 3)]
    finally:
        poller.close()
