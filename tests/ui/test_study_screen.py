"""`S` on a trial's row opens its study: trials, best so far, what mattered."""

from __future__ import annotations

from textual.widgets import Static

from tests.ui.conftest import EXPERIMENTS, until
from tuiexp.config import loader
from tuiexp.search import study as studies
from tuiexp.store.index import Index
from tuiexp.ui.screens.study import StudyScreen
from tuiexp.ui.widgets.runs_table import RunsTable

SEARCH = """
[experiments.fake.search]
sampler = "random"
trials = 2
dropout = { uniform = [0.0, 0.5] }
"""


async def test_s_on_a_trial_opens_its_study(ws, wait_until):
    path = ws.root / "search.toml"
    path.write_text(EXPERIMENTS + SEARCH)
    name = studies.create(ws.logs, loader.load(path), "fake", {})
    definition = studies.load_definition(ws.logs, name)
    with Index(ws.logs) as index:
        studies.Driver(ws.logs, index, definition).step()  # trial 0 queued
    rid = studies.trial_run_id(definition, 0)
    app = ws.app()
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen_stack[1].query_one(RunsTable)
        await until(pilot, lambda: rid in table.states)
        table.select_run(rid)
        await pilot.press("S")
        await wait_until(pilot, lambda: isinstance(app.screen, StudyScreen))

        def text() -> str:
            return str(app.screen.query_one("#study", Static).render())

        await wait_until(pilot, lambda: "parameter importance" in text(), 30)
        assert f"study {name}" in text() and rid in text() and "dropout=" in text()
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, StudyScreen))
