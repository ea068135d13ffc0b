"""The runs table on its own: columns by priority, run labels, queue places, the
cursor keys, the sort arrow and the empty-state hint."""

from __future__ import annotations

from dataclasses import replace

from textual.app import App, ComposeResult

from tests.ui.test_refresh import row, state
from tuiexp.store.index import RunRow
from tuiexp.ui.data import RunState
from tuiexp.ui.widgets.runs_table import RunsTable, columns_for, layout, queue_positions, run_labels


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunsTable()


def sweep_row(i: int, lr: float, dropout: float, seed: int) -> RunRow:
    return replace(row(f"20261118-0000{i:02d}-dropout-{i:04x}", i),
                   experiment="dropout",
                   spec={"seed": seed, "params": {"lr": lr, "dropout": dropout, "epochs": 4,
                                                  "schedule_start": 0}})


def test_columns_hide_by_priority_and_the_label_takes_the_rest():
    cols = columns_for(("best:val/f1",))
    narrow = [c.key for c, _ in layout(cols, 79, grow_to=26)]
    # at 80 columns one sparkline stays; lr, seed and elapsed hide before it (issue 18.1)
    assert {"run", "status", "epoch", "loss", "best", "eta"} <= set(narrow)
    assert not {"id", "lr", "seed", "elapsed"} & set(narrow)
    assert sum(w + 1 for _, w in layout(cols, 79, grow_to=26)) <= 79
    wide = layout(cols, 239, grow_to=30)
    assert [c.key for c, _ in wide][:2] == ["run", "id"] and "best:val/f1" in dict(
        (c.key, w) for c, w in wide)
    assert dict((c.key, w) for c, w in wide)["run"] == 30  # no wider than its cells
    assert [c.key for c, _ in layout(cols, 79, hidden=("pos", "eta"))].count("pos") == 0


def test_sweep_runs_get_readable_labels():
    rows = {r.id: r for r in (sweep_row(i, lr, d, s) for i, (lr, d, s) in enumerate(
        [(0.1, 0.1, 0), (0.1, 0.3, 0), (0.1, 0.3, 2), (0.01, 0.3, 2)]))}
    labels = run_labels(rows)
    assert sorted(labels.values()) == ["dropout d=0.1 lr=0.1 s0", "dropout d=0.3 lr=0.01 s2",
                                       "dropout d=0.3 lr=0.1 s0", "dropout d=0.3 lr=0.1 s2"]
    same = {r.id: r for r in (sweep_row(i, 0.1, 0.1, 0) for i in range(2))}
    assert all(text.startswith("dropout #") for text in run_labels(same).values())


def test_queue_places_follow_priority_then_queue_order():
    rows = [replace(row(f"q{i}", i, "queued"), priority=p, queue_pos=pos)
            for i, (p, pos) in enumerate([(0, 1.0), (0, 0.5), (5, 9.0)])]
    rows.append(row("done", 9))
    assert queue_positions(rows) == {"q2": 1, "q1": 2, "q0": 3}


def lines(table: RunsTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_keys_move_the_cursor_and_the_header_shows_the_sort():
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(RunsTable)
        table.focus()
        table.apply([state(row(f"r{i:02d}", i), 3) for i in range(30)], [], 200.0)
        await pilot.pause()
        assert "run ▼age" in lines(table)[0]
        await pilot.press("j", "j", "k")  # newest first
        assert table.current_id == "r28"
        await pilot.press("G")
        assert table.current_id == "r00"
        assert "r00" in table.get_cell("r00", "run") and int(table.scroll_offset.y) > 0
        await pilot.press("g")
        assert table.current_id == "r29" and int(table.scroll_offset.y) == 0
        await pilot.press("pagedown")
        assert table.cursor_row == 10
        table.sort_by = "status"
        table.show(201.0)
        await pilot.pause()
        assert "status ▼" in lines(table)[0]


async def test_an_empty_table_says_which_key_queues_a_run():
    app = TableApp()
    async with app.run_test(size=(80, 8)) as pilot:
        table = app.query_one(RunsTable)
        table.apply([], [], 200.0)
        await pilot.pause()
        assert "press n to queue" in "\n".join(lines(table))
        table.apply([state(row("r1", 1), 3)], [], 200.0)
        table.filter_text = "zzz"
        table.show(201.0)
        await pilot.pause()
        assert "No run matches 'zzz'" in "\n".join(lines(table))


def test_compare_lists_only_real_differences():
    from tuiexp.ui.screens.compare import differing, with_defaults

    a = {"schedule": [{"kind": "step", "every": 2, "gamma": 0.5}], "lr": 0.1, "schedule_start": 0}
    b = {"schedule": [{"gamma": 0.5, "kind": "step", "every": 2}], "lr": 0.2, "schedule_start": 3}
    assert differing({"a": a, "b": b}) == [("lr", ["0.1", "0.2"])]
    # the built-in trainer's default written out or left unset is no difference
    builtin = {"command": None}
    left = with_defaults({**builtin, "params": {"lr": 0.1}})
    right = with_defaults({**builtin, "params": {"lr": 0.1, "dropout": left["dropout"]}})
    assert differing({"a": left, "b": right}) == []


def test_the_spec_panel_puts_the_params_that_matter_first():
    from tuiexp.ui.screens.detail import param_order

    params = {"amp": False, "zeta": 1, "schedule_start": 2, "dropout": 0.1, "lr": 0.1,
              "optimizer": "sgd", "schedule": [], "batch_size": 32, "epochs": 3, "model": "m"}
    assert param_order(params) == ["optimizer", "lr", "schedule", "batch_size", "dropout",
                                   "epochs", "model", "amp", "zeta", "schedule_start"]


def test_bulk_plans_say_which_runs_and_whether_a_checkpoint_exists():
    from tuiexp.ui.actions import archive_plan, cancel_plan, resume_plan

    running = replace(row("r-run", 1, "running"), checkpoints=[1, 2])
    fresh = replace(row("r-new", 2, "running"), checkpoints=[])
    queued = row("r-q", 3, "queued")
    done = row("r-done", 4, "finished")
    failed = replace(row("r-fail", 5, "failed"), checkpoints=[3])
    fork = replace(row("r-fork", 6, "cancelled"), parent="r-done", fork_epoch=1)
    labels = {"r-run": "sw d=0.1 s0", "r-q": "sw d=0.3 s1"}  # the table's names; ids else
    plan = cancel_plan([running, fresh, queued, done], labels)
    assert plan.ids == ["r-q", "r-run", "r-new"]  # the queue first: no cancelled run starts
    assert "sw d=0.1 s0 (checkpoint at epoch 2: r resumes from there)" in plan.question
    assert "r-new (no checkpoint: r starts it again from the beginning)" in plan.question
    assert "Take 1 queued run off the queue: sw d=0.3 s1." in plan.question
    assert "Leave 1 run that already ended: r-done." in plan.question
    assert cancel_plan([queued], labels).question is None  # nothing to lose: no question
    plan = resume_plan([failed, done, replace(fresh, status="cancelled"), fork], {})
    assert plan.ids == ["r-fail", "r-new", "r-fork"]
    assert "r-fail (checkpoint at epoch 3: resumes from there)" in plan.question
    assert "r-new (no checkpoint: starts it again from the beginning)" in plan.question
    assert "r-fork (forked at epoch 1: resumes from there)" in plan.question
    plan = archive_plan([done, failed, running], labels)
    assert plan.ids == ["r-done", "r-fail"] and "cancel them first): sw d=0.1 s0." in plan.question
    assert archive_plan([running], labels).ids == []


def test_the_new_run_form_speaks_of_overrides_not_cli_flags():
    from tuiexp.config import values
    from tuiexp.errors import TuiexpError
    from tuiexp.ui.screens.new import form_wording

    try:
        values.parse_overrides(["lr"])
    except TuiexpError as e:
        text = form_wording(str(e))
    assert "--set" not in text and "key=value" in text
    assert form_wording("--set: param `dropuot`: unknown key — did you mean `dropout`?.") == (
        "override: param `dropuot`: unknown key — did you mean `dropout`?")


def test_ui_columns_add_metric_columns_once():
    cols = [c.key for c in columns_for(("best:val/f1", "best", "best:val/f1"))]
    assert cols.count("best") == 1 and cols.count("best:val/f1") == 1


async def test_columns_stay_while_a_run_fills_them_in():
    """Issue 18.1: a run just started has no loss, best, LR or ETA yet; the columns it
    will fill are there from its start (a sparkline column among them at 80 columns),
    so none comes or goes as its values arrive."""
    from tests.ui.test_refresh import state

    fresh = replace(row("r-live", 1, "running"), epoch=None, best=None, best_at=None,
                    summaries={}, spec={"seed": 0, "params": {}})
    app = TableApp()
    async with app.run_test(size=(80, 8)) as pilot:
        table = app.query_one(RunsTable)
        table.apply([RunState(fresh)], [], 200.0)
        await pilot.pause()
        before = lines(table)[0].split()
        assert "loss" in before and "eta" in before, before
        later = replace(fresh, epoch=2, best=0.6, best_at=2, lr=0.1, epoch_secs=10.0,
                        epoch_gaps=1, epoch_at=195.0)
        table.apply([state(later, 20)], [], 201.0)
        await pilot.pause()
        assert lines(table)[0].split() == before
        assert "▁" in lines(table)[1] or "█" in lines(table)[1]  # the loss is drawn
