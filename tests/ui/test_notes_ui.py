"""`T` and `N` on the runs screen, and `/tag:NAME`: the edit goes through the client into
the run directory and the index, and the table, the filter and the detail screen show
it. At 80×24, the smallest terminal the dashboard is built for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ui.conftest import screen_text, until
from tests.ui.test_snapshot import T0, frozen_app, write_run
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec
from tuiexp.ui.app import TuiexpApp

IDS = [f"20261118-00{i}000-sweep-aaa{i}" for i in range(3)]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three finished runs of a dropout sweep, no tags, no notes yet."""
    logs = LogsDir.at(tmp_path / "logs")
    (tmp_path / "experiments.toml").write_text('[experiments.sweep]\ncommand = "true"\n')
    params = {"epochs": 4, "batch_size": 64, "optimizer": "sgd", "lr": 0.1}
    for i, rid in enumerate(IDS):
        write_run(logs, RunSpec(id=rid, experiment="sweep", params={**params, "dropout": i / 10},
                                command=("true",), created=T0 + 600 * i, seed=0), epochs=2)
    with Index(logs) as index:
        index.rebuild()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ready(app: TuiexpApp) -> bool:
    if len(app.screen_stack) < 2:
        return False
    table = app.screen_stack[1].query_one("RunsTable")
    return len(table.states) == 3


def table_of(app: TuiexpApp):
    return app.screen_stack[1].query_one("RunsTable")


def on_disk(root: Path, rid: str) -> dict:
    path = LogsDir.at(root / "logs").run(rid).annotations
    return json.loads(path.read_text()) if path.exists() else {}


async def test_T_tags_the_marked_runs_and_the_filter_finds_them(root: Path):
    app = frozen_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ready(app))
        table = table_of(app)
        await pilot.press("space", "space", "T")  # mark the top two (the newest), tag them
        await until(pilot, lambda: type(app.screen).__name__ == "TagScreen")
        assert "Tags of 2 runs" in screen_text(app) and "now: (none)" in screen_text(app)
        await pilot.press(*"best", "enter")
        await until(pilot, lambda: [table.states[r].row.tags for r in IDS] == [[], ["best"], ["best"]])
        assert type(app.screen).__name__ == "RunsScreen"
        assert [on_disk(root, r) for r in IDS] == [{}] + [{"note": "", "tags": ["best"]}] * 2
        # the tags column shows, even at 80 columns
        await until(pilot, lambda: " tags " in screen_text(app).splitlines()[2])
        lines = {line.split()[1]: line for line in screen_text(app).splitlines()[3:6]}
        assert "best" in lines["d=0.2"] and "best" in lines["d=0.1"] and "best" not in lines["d=0"]

        await pilot.press("slash", *"tag:best")
        await until(pilot, lambda: [rid for rid, _ in table.order] == IDS[:0:-1])
        await pilot.press("enter", "escape")
        await until(pilot, lambda: len(table.order) == 3)
        await pilot.press("slash", *"-tag:best")
        await until(pilot, lambda: [rid for rid, _ in table.order] == IDS[:1])
        await pilot.press("escape")
        await until(pilot, lambda: len(table.order) == 3)

        await pilot.press("u", "T")  # no marks: the run under the cursor (the third)
        await until(pilot, lambda: type(app.screen).__name__ == "TagScreen")
        await pilot.press(*"paper", "space", *"-best")
        await pilot.press("enter")
        await until(pilot, lambda: table.states[IDS[0]].row.tags == ["paper"])
        assert table.states[IDS[2]].row.tags == ["best"]


async def test_a_bad_tag_name_keeps_the_dialog_open_and_writes_nothing(root: Path):
    app = frozen_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ready(app))
        await pilot.press("T")
        await until(pilot, lambda: type(app.screen).__name__ == "TagScreen")
        await pilot.press(*"b@d")
        await until(pilot, lambda: "'b@d' is not a valid tag name" in screen_text(app))
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "TagScreen"
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
    assert all(on_disk(root, r) == {} for r in IDS)


async def test_a_filter_term_it_does_not_know_is_said_in_the_table(root: Path):
    app = frozen_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ready(app))
        table = table_of(app)
        await pilot.press("slash", *"colour:red")
        await until(pilot, lambda: table.order == [])
        await until(pilot, lambda: "Filter: Unknown filter 'colour:'" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: len(table.order) == 3)


async def test_N_writes_the_note_and_the_detail_screen_shows_it(root: Path):
    app = frozen_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ready(app))
        table = table_of(app)
        await pilot.press("j", "N")  # the second run
        await until(pilot, lambda: type(app.screen).__name__ == "NoteScreen")
        await pilot.press(*"lr too high", "enter", *"try 0.05", "ctrl+s")
        await until(pilot, lambda: table.states[IDS[1]].row.note == "lr too high\ntry 0.05")
        assert on_disk(root, IDS[1]) == {"note": "lr too high\ntry 0.05"}
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "detail", None) is not None)
        text = screen_text(app)
        assert "note lr too high" in text and "     try 0.05" in text
        await pilot.press("escape", "N")  # the note is there to edit; emptied, it is cleared
        await until(pilot, lambda: type(app.screen).__name__ == "NoteScreen")
        assert app.screen.query_one("#note").text == "lr too high\ntry 0.05"
        await pilot.press("f7", "backspace", "ctrl+s")  # select all, delete, save
        await until(pilot, lambda: table.states[IDS[1]].row.note == "")
