"""The dashboard's search keys: `L` runs the LR range test and queues with its suggestion;
`n` on an experiment with a [search] table starts its study as `tuiexp run` does."""

from __future__ import annotations

import json

import pytest
from textual.widgets import OptionList, Static

from tests.trainer.conftest import tiny_toml
from tests.ui.conftest import EXPERIMENTS, until
from tuiexp.search import lrfind
from tuiexp.search import study as studies
from tuiexp.ui.screens.lrfind import ExperimentPicker, LrFindScreen
from tuiexp.ui.screens.new import NewScreen
from tuiexp.ui.screens.runs import RunsScreen
from tuiexp.ui.widgets.runs_table import RunsTable

SIZE = (140, 44)
TINY = "[experiments.tiny]\n" + tiny_toml(epochs=1)
SEARCH = """
[experiments.fake.search]
sampler = "random"
trials = 2
dropout = { uniform = [0.0, 0.5] }
"""


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.mark.slow
async def test_l_runs_the_range_test_and_queues_with_its_suggestion(ws):
    ws.config_path.write_text(EXPERIMENTS + TINY)
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("L")  # no run under the cursor: pick the experiment
        await until(pilot, lambda: isinstance(app.screen, ExperimentPicker))
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index("tiny")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LrFindScreen))
        screen = app.screen
        await until(pilot, lambda: screen.result is not None or not screen.is_current, 300)
        assert screen.result is not None, notes(app)
        [folder] = (ws.logs.root / "lr-find").iterdir()
        result = json.loads((folder / "lr_find.json").read_text())
        shown = str(screen.query_one("#lrf-result", Static).render())
        assert f"suggested lr {result['suggestion']:.3g}." in shown
        assert lrfind.why(result) in shown and str(folder / "lr_find.png") in shown
        await pilot.press("y")
        table = app.screen_stack[1].query_one(RunsTable)
        await until(pilot, lambda: len(table.states) == 1, 30)
        (st,) = table.states.values()
        assert st.row.experiment == "tiny"
        assert st.row.spec["params"]["lr"] == lrfind.queued_lr(result["suggestion"])
        await until(pilot, lambda: f"Queued 1 run of tiny: {st.id}." in notes(app))


async def test_l_on_a_script_run_says_it_needs_the_built_in_trainer(ws):
    (rid,) = ws.enqueue("fake")
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen_stack[1].query_one(RunsTable)
        await until(pilot, lambda: rid in table.states)
        table.select_run(rid)
        await pilot.press("L")
        await until(pilot, lambda: any("built-in trainer" in n for n in notes(app)))
        assert ("experiments.toml: lr-find runs the built-in trainer, but experiment 'fake' has "
                "a `command`.") in notes(app)
        await until(pilot, lambda: not isinstance(app.screen, LrFindScreen))


async def test_n_on_a_search_experiment_starts_its_study(ws):
    ws.config_path.write_text(EXPERIMENTS + SEARCH)
    app = ws.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewScreen))
        await pilot.press("ctrl+s")  # the first experiment: fake, a study now
        await until(pilot, lambda: any(n.startswith("Started study") for n in notes(app)))
        assert ("Started study fake: 2 trials, 1 at a time, random sampler, median pruner; "
                "S on a trial's row opens it.") in notes(app)
        assert studies.names(ws.logs) == ["fake"]
        table = app.screen_stack[1].query_one(RunsTable)
        # the supervisor queues the trials: runs of the study, not plain runs
        await until(pilot, lambda: len(table.states) >= 1, 60)
        assert all(st.row.spec.get("study") == "fake" for st in table.states.values())
