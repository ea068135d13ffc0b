"""The dashboard's `n` refuses what `tuiexp check` refuses (issue 18.5: one validation
path): the form stays open with check's sentence, and nothing is queued."""

from __future__ import annotations

from textual.widgets import OptionList, Static

from tests.conftest import tuiexp
from tuiexp.ui.screens.new import NewScreen

BROKEN = """
[experiments.broken]
command = "python missing.py"
"""


async def test_n_refuses_a_command_whose_script_is_missing(ws, wait_until):
    ws.config_path.write_text(ws.config_path.read_text() + BROKEN)
    said = tuiexp(ws.root, "check").stderr
    sentence = next(x for x in said.splitlines() if "missing.py" in x).removeprefix("tuiexp: ")
    app = ws.app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewScreen))
        options = app.screen.query_one(OptionList)
        options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)
                               ].index("broken")
        await pilot.press("ctrl+s")
        verdict = app.screen.query_one("#verdict", Static)
        await wait_until(pilot, lambda: "missing.py" in str(verdict.render()))
        assert sentence.split(": ", 1)[1] in str(verdict.render()).replace("\n", " ")
        assert isinstance(app.screen, NewScreen)
    assert not [p for p in ws.logs.runs.iterdir() if not p.name.startswith(".")]
