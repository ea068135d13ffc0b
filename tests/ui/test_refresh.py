"""The refresh path: the poller's tick reads only what changed (histories and resources
come from its chores), and the table's row-by-row repaint draws what a fresh table would."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from textual.app import App, ComposeResult

from tuiexp.core.index import Index, RunRow
from tuiexp.core.paths import LogsDir
from tuiexp.core.spec import RunSpec
from tuiexp.ui.data import Poller, RunState
from tuiexp.ui.widgets.runs_table import RunsTable


def row(rid: str, created: float, status: str = "finished", step: int | None = None) -> RunRow:
    return RunRow(id=rid, experiment="x", parent=None, fork_epoch=None, created=created,
                  priority=0, queue_pos=created, status=status, message="", epoch=1, epochs=4,
                  step=step, best_val_acc=0.5, best_epoch=1, last_epoch={}, last_step={"lr": 0.1},
                  meta={}, checkpoints=[], started=100.0, ended=None if status == "running" else 160.0,
                  gpu=None, pid=None, attempt=0, spec={"params": {"batch_size": 32}}, seq=1)


def state(r: RunRow, points: int) -> RunState:
    st = RunState(r)
    st.loss.extend((i, math.sin(i / 3)) for i in range(points))
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
        later = [state(replace(st.row, epoch=3, best_val_acc=0.75, step=9), 9)
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
    with Index(logs) as index:
        for i in range(n):
            spec = RunSpec(id=f"run-{i}", experiment="x", params={"epochs": 3}, created=1e9 + i)
            index.add_run(spec)
            with index.tx() as db:
                db.executemany("INSERT INTO steps VALUES (?,?,?,?,?)",
                               [(spec.id, s, 0.0, 1 / s, 0.1) for s in range(1, points + 1)])
                db.execute("INSERT INTO epochs VALUES (?,?,?,?)", (spec.id, 1, 0.0, json.dumps(
                    {"kind": "epoch", "epoch": 1, "val_acc": 0.5})))
                db.execute("UPDATE runs SET status='finished', epoch=1, step=?, seq=seq+1000 "
                           "WHERE id=?", (points, spec.id))


def test_tick_reads_changes_and_chores_bring_histories(tmp_path):
    logs = LogsDir.at(tmp_path / "logs").ensure()
    seed(logs, 5, 300)
    poller = Poller(logs, backfill_batch=2)
    try:
        first = poller.poll()
        assert first.first and len(first.changed) == 5 and first.resources is None
        assert not any(st.loss.items for st in first.changed)  # the table first, no history
        assert poller.poll().changed == []  # nothing changed, nothing read
        poller.chores()
        second = poller.poll()
        assert len(second.changed) == 2 and second.resources is not None
        assert all(st.backfilled and st.loss.items and st.acc.items for st in second.changed)
        assert second.changed[0] is not first.changed[0]  # a new state: the UI's is untouched
        while poller.backfilling:
            poller.chores()
        assert {st.id for st in poller.poll().changed} == {"run-2", "run-3", "run-4"}
        assert all(len(st.loss.items) <= st.loss.size for st in poller.states.values())
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
