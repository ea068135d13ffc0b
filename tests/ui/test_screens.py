"""Pilot tests: each screen and key, against a real supervisor and the fake run script."""

from __future__ import annotations

from textual.widgets import DataTable, Input, OptionList, Select, Static, TextArea

from tests.ui.conftest import until
from tuiexp.queue.client import Client
from tuiexp.store.index import Index
from tuiexp.ui.screens.compare import CompareScreen
from tuiexp.ui.screens.detail import DetailScreen
from tuiexp.ui.screens.dialogs import ConfirmScreen, ExportScreen
from tuiexp.ui.screens.fork import ForkScreen
from tuiexp.ui.screens.help import HelpScreen
from tuiexp.ui.screens.new import NewScreen
from tuiexp.ui.widgets.runs_table import RunsTable

SIZE = (160, 48)


def table(app) -> RunsTable:
    return app.screen_stack[1].query_one(RunsTable)


async def on_run(pilot, app, rid: str) -> None:
    """Wait until the run is in the table, then put the cursor on it."""
    await until(pilot, lambda: rid in table(app).states)
    table(app).select_run(rid)


def cell(app, rid: str, col: str) -> str:
    return str(table(app).get_cell(rid, col))


def indexed_ids(ws) -> set[str]:
    with Index(ws.logs) as index:
        return {r.id for r in index.runs()}


async def test_table_shows_runs_and_updates_live(ws, wait_until):
    (rid,) = ws.enqueue("fake", sleep=0.15)
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: rid in table(app).states)
        await wait_until(pilot, lambda: table(app).states[rid].row.status == "finished", 30)
        await wait_until(pilot, lambda: cell(app, rid, "best") == "88.8%")
        assert "3/3" in cell(app, rid, "epoch")
        assert "finished" in cell(app, rid, "status")
        assert cell(app, rid, "bs") == "32"
        assert cell(app, rid, "loss").strip() and cell(app, rid, "best") == "88.8%"
        assert "CPU" in str(app.screen.query_one("#resources", Static).render())


async def test_new_queues_an_experiment_and_q_quits(ws, wait_until):
    """`n` queues; `q` closes the app with status 0 and stops nothing: the run finishes."""
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewScreen))
        options = app.screen.query_one(OptionList)
        assert options.option_count == 3
        await pilot.press("tab")
        app.screen.query_one(TextArea).text = "epochs = 2\n"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(table(app).states) == 1)
        (st,) = table(app).states.values()
        assert st.row.experiment == "fake" and st.row.params["epochs"] == 2
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0
    ws.wait(st.id)  # closing the dashboard stopped nothing


async def test_new_with_bad_override_stays_open(ws, wait_until):
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewScreen))
        app.screen.query_one(TextArea).text = "this is not an override"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "key=value" in str(
            app.screen.query_one("#verdict", Static).render()))
        assert isinstance(app.screen, NewScreen) and not table(app).states


async def test_the_new_form_says_its_verdict_as_typed_and_drops_a_fixed_error(ws, wait_until):
    """Issue 18.12: the verdict follows the text (an error goes with its line) and is
    plain text (a `[` in the message is no markup: no literal `[/]`)."""
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewScreen))
        verdict = lambda: str(app.screen.query_one("#verdict", Static).render())  # noqa: E731
        area = app.screen.query_one(TextArea)
        area.text = "epochs = ["
        await wait_until(pilot, lambda: "not a TOML value" in verdict())
        assert "[/]" not in verdict() and "'['" in verdict()
        area.text = ""
        await wait_until(pilot, lambda: "not a TOML value" not in verdict())
        assert "run of fake" in verdict() or "runs of fake" in verdict(), verdict()
        assert not table(app).states  # nothing queued by typing


async def test_broken_config_is_a_notification(ws, wait_until):
    ws.config_path.write_text("[experiments.x\n")
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: any("not valid TOML" in n.message for n in app._notifications))
        assert not isinstance(app.screen, NewScreen)


async def test_fork_form_validates_and_queues_child_under_parent(finished, wait_until):
    app = finished.app()
    rid = finished.run_id
    async with app.run_test(size=SIZE) as pilot:
        await on_run(pilot, app, rid)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ForkScreen))
        form = app.screen
        labels = [str(p[0]) for p in form.query_one("#epoch", Select)._options]
        assert any("(best, last)" in t for t in labels) and len(labels) == 3
        form.query_one("#epoch", Select).value = 1
        form.query_one("#epochs", Input).value = "1"
        await wait_until(pilot, lambda: "nothing to train" in str(
            form.query_one("#verdict", Static).render()))
        form.query_one("#epochs", Input).value = "3"
        form.query_one("#batch_size", Input).value = "64"
        await wait_until(pilot, lambda: "batch_size" in str(form.query_one("#diff", Static).render()))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any(s.row.parent == rid for s in table(app).states.values()))
        child = next(s for s in table(app).states.values() if s.row.parent == rid)
        assert child.row.fork_epoch == 1 and child.row.params["batch_size"] == 64
        ids = [r for r, _ in table(app).order]
        assert ids.index(child.id) == ids.index(rid) + 1
        assert dict(table(app).order)[child.id] == 1
        await pilot.press("t")
        assert all(depth == 0 for _, depth in table(app).order)


async def test_detail_screen_and_confusion_epochs(finished, wait_until, text_of):
    app = finished.app()
    rid = finished.run_id
    async with app.run_test(size=SIZE) as pilot:
        await on_run(pilot, app, rid)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.detail)
        text = str(app.screen.query_one("#confusion", Static).render())
        assert "epoch 3" in text and "worst classes" in text and "heatmap" in text
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: "epoch 2" in str(app.screen.query_one("#confusion", Static).render()))
        shown = text_of(app)
        assert " spec " in shown and "batch_size" in shown and "loss" in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_compare_export_help_and_palette(finished, tmp_path, wait_until, text_of):

    with Client(finished.logs) as client:  # two runs to compare, whatever ran before
        if len(client.index.runs()) < 2:
            finished.wait(client.fork(finished.run_id, {"batch_size": 64}, 1))
    app = finished.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(table(app).states) >= 2)
        n = len(table(app).order)
        table(app).move_cursor(row=0)
        await pilot.press(*["space"] * n)
        assert len(table(app).marked) == n
        await pilot.press("C")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count > 0)
        assert "batch_size" in text_of(app)
        await pilot.press("escape")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen))
        app.screen.query_one("#format", Select).value = "md"
        box = app.screen.query_one("#path", Input)
        await wait_until(pilot, lambda: box.value == "runs.md")
        box.value = str(tmp_path / "table.md")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: (tmp_path / "table.md").exists())
        assert "|" in (tmp_path / "table.md").read_text()
        await wait_until(pilot, lambda: any("Markdown" in n.message for n in app._notifications))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for word in ("Fork", "New", "Compare", "Export", "Archive", "Move up", "Keys"):
            assert any(word in t for t in titles), word


async def cancel(pilot, app, rid: str) -> None:
    """`c`, and `y` if it asks (it asks before stopping a running run): waits until it
    asked or the run is cancelled."""
    await pilot.press("c")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen)
                or table(app).states[rid].row.status == "cancelled")
    if isinstance(app.screen, ConfirmScreen):
        await pilot.press("y")


async def test_cancel_resume_move_and_archive(ws, wait_until):
    a, = ws.enqueue("slow")
    ws.wait(a, ("running",))
    b, = ws.enqueue("fake", epochs=50, sleep=1.0)
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: {a, b} <= table(app).states.keys())
        table(app).select_run(a)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))  # it runs: asks
        await pilot.press("y")
        await wait_until(pilot, lambda: table(app).states[a].row.status == "cancelled", 20)
        await pilot.press("r")
        await wait_until(pilot, lambda: table(app).states[a].row.status in ("queued", "starting", "running"))
        await cancel(pilot, app, a)
        await wait_until(pilot, lambda: table(app).states[a].row.status == "cancelled", 20)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: a not in table(app).states, 10)
        table(app).select_run(b)
        await pilot.press("K")  # not movable: a notification, no crash
        await wait_until(pilot, lambda: any("not queued" in n.message for n in app._notifications))
        table(app).select_run(b)
        await cancel(pilot, app, b)
        try:
            await wait_until(pilot, lambda: table(app).states[b].row.status == "cancelled", 20)
        except AssertionError:
            raise AssertionError([n.message for n in app._notifications], table(app).states[b].row) from None
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("q")  # in a dialog q answers no: it never quits the dashboard
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.is_running and app.return_code is None
        assert b in table(app).states and b in indexed_ids(ws)


async def test_refused_command_is_one_sentence(finished, wait_until):
    app = finished.app()
    async with app.run_test(size=SIZE) as pilot:
        await on_run(pilot, app, finished.run_id)
        await pilot.press("c")  # already finished
        await wait_until(pilot, lambda: any("already finished" in n.message for n in app._notifications))
        assert app.is_running


async def test_queue_keys_export_and_bulk_actions_on_marked_runs(ws, wait_until, text_of):
    ws.config_path.write_text(ws.config_path.read_text().replace("cpu_jobs = 4", "cpu_jobs = 1"))
    (blocker,) = ws.enqueue("slow")
    ws.wait(blocker, ("running",))
    b, c, d = (ws.enqueue("fake")[0] for _ in range(3))
    app = ws.app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: {b, c, d} <= table(app).states.keys())
            await wait_until(pilot, lambda: [cell(app, r, "pos") for r in (b, c, d)] == ["1", "2", "3"])
            assert " q# " in text_of(app)
            table(app).select_run(d)
            await pilot.press("K")
            await wait_until(pilot, lambda: [cell(app, r, "pos") for r in (b, c, d)] == ["1", "3", "2"])
            await pilot.press("J")
            await wait_until(pilot, lambda: [cell(app, r, "pos") for r in (b, c, d)] == ["1", "2", "3"])
            with Index(ws.logs) as index:  # the supervisor's queue moved, not only the view
                queued = sorted(index.runs(status=("queued",)),
                                key=lambda r: (-r.priority, r.queue_pos, r.id))
                assert [r.id for r in queued] == [b, c, d]
            # export what the filter shows, nothing else
            await pilot.press("slash", *d[-4:], "enter")
            await wait_until(pilot, lambda: [rid for rid, _ in table(app).order] == [d])
            await pilot.press("e")
            await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen))
            assert f"the 1 runs matching '{d[-4:]}'" in text_of(app)
            app.screen.query_one("#path", Input).value = str(ws.root / "shown.csv")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: (ws.root / "shown.csv").exists())
            lines = (ws.root / "shown.csv").read_text().splitlines()
            assert len(lines) == 2 and d in lines[1]
            await pilot.press("escape")
            await wait_until(pilot, lambda: len(table(app).order) == 4)
            # mark three, cancel them at once: the dialog says what happens to each
            for rid in (blocker, b, c):
                table(app).select_run(rid)
                await pilot.press("space")
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            question = app.screen.question
            names = table(app).names  # the dialog names runs as the table does
            assert f"Stop 1 running run: {names[blocker]} (no checkpoint" in question
            assert f"Take 2 queued runs off the queue: {names[c]}, {names[b]}." in question
            await pilot.press("y")
            await wait_until(pilot, lambda: all(table(app).states[r].row.status == "cancelled"
                                                for r in (blocker, b, c)), 20)
            assert table(app).states[d].row.status != "cancelled"  # not marked: it takes the slot
            await pilot.press("r")  # the same marks: asks before queueing three runs again
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert app.screen.question.startswith("Queue 3 runs again:")
            await pilot.press("n")
            await pilot.press("u")
            await wait_until(pilot, lambda: not table(app).marked)
        ws.wait(d)
    finally:  # a failed step must not leave the hanging run behind
        with Client(ws.logs) as client:
            for rid in (d, c, b, blocker):
                if client.index.run(rid).status in ("queued", "starting", "running"):
                    client.cancel(rid)


async def test_f_on_the_detail_screen_forks_that_run(finished, wait_until):
    app = finished.app()
    rid = finished.run_id
    async with app.run_test(size=SIZE) as pilot:
        await on_run(pilot, app, rid)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ForkScreen))
        assert app.screen.row.id == rid


async def test_export_with_an_emptied_file_name_stays_up(finished, wait_until):
    app = finished.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(table(app).states) >= 1)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen))
        app.screen.query_one("#path", Input).value = ""
        app.screen.query_one("#format", Select).value = "latex"
        await wait_until(pilot, lambda: app.screen.query_one("#path", Input).value == "runs.tex")
        app.screen.query_one("#path", Input).value = "  "
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any("Give the file" in n.message for n in app._notifications))
        assert isinstance(app.screen, ExportScreen)


async def test_a_run_that_ends_is_told_on_any_screen_with_the_bell(ws, wait_until):
    ws.config_path.write_text(ws.config_path.read_text() + "\n[ui]\nbell = true\n")
    app = ws.app()
    rang: list[float] = []
    app.bell = lambda: rang.append(1)  # the terminal's bell cannot be heard headless
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).drawn)  # queued after the app opened
        (ok,) = ws.enqueue("fake", sleep=0.1)
        (bad,) = ws.enqueue("fake", sleep=0.1, crash_at_epoch=1)
        await wait_until(pilot, lambda: {ok, bad} <= table(app).states.keys())
        await pilot.press("question_mark")  # another screen hides the runs
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        names = table(app).names  # a notification names a run as the table does
        told = lambda: [n for n in app._notifications  # noqa: E731
                        if n.message.startswith((names[ok], names[bad]))]
        await wait_until(pilot, lambda: len(told()) == 2, 40)
        by_run = {ok if n.message.startswith(f"{names[ok]} ") else bad: n for n in told()}
        assert f"{names[ok]} finished." == by_run[ok].message
        assert by_run[ok].severity == "information"
        assert by_run[bad].severity == "error" and ("failed" in by_run[bad].message
                                                   or "crashed" in by_run[bad].message)
        assert len(rang) >= 1 and isinstance(app.screen, HelpScreen)


async def test_open_metric_names_in_the_table_and_the_detail_grid(ws, wait_until):
    """A run that logs `val/acc` and `Loss/train` (no built-in names): the best column
    and both sparklines show them, `[ui] columns` adds one, and the detail screen has
    a chart per metric with the primary one first."""
    import json
    import math

    from tuiexp.store import events, runstore
    from tuiexp.store.spec import RunSpec

    ws.config_path.write_text(ws.config_path.read_text() + '\n[ui]\ncolumns = ["min:val/loss"]\n')
    spec = RunSpec(id="20261201-000000-mine-aaaa", experiment="mine", params={},
                   command=("true",), metric="val/acc", mode="max")
    paths = runstore.create(ws.logs, spec)
    paths.proc.write_text(json.dumps({"pid": 2**22 + 7, "attempt": 1}))
    paths.exit.write_text(json.dumps({"returncode": 0, "attempt": 1}))
    lines = [events.encode("step", 1.0, {"step": s, "Loss/train": 2 * math.exp(-s / 9)})
             for s in range(30)]
    lines += [events.encode("epoch", 2.0, {"epoch": e, "val/acc": 0.5 + 0.1 * e,
                                           "val/loss": 1.5 - 0.2 * e}) for e in (1, 2, 3)]
    paths.events.write_bytes(b"".join(lines))  # found by the dashboard, no reindex
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        rid = spec.id
        await wait_until(pilot, lambda: rid in table(app).states
                         and table(app).states[rid].backfilled)
        await wait_until(pilot, lambda: "80.0%" in cell(app, rid, "best"))
        assert cell(app, rid, "min:val/loss") == "0.9"
        st = table(app).states[rid]
        assert st.sparks[0].name == "Loss/train" and len(st.values(0)) > 1
        assert st.sparks[1].name == "val/acc" and st.values(1) == [0.6, 0.7, 0.8]
        await on_run(pilot, app, rid)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.detail)
        charts = [(c.name, c.scope) for c in app.screen.detail.charts]
        # the primary metric, the training loss, the held-out loss (issue 18.9)
        assert charts == [("val/acc", "epoch"), ("Loss/train", "step"), ("val/loss", "epoch")]
