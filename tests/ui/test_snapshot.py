"""Snapshots of every screen at 80×24, 100×30 and 120×40: fixed run ids, fixed event times, a
frozen clock and a fixed resource strip (this machine's CPU and RAM are no part of the
layout), so the text is the same on every machine. A layout regression (a column cut,
a dialog clipped) changes the text and fails here.

`UPDATE_GOLDEN=1 pytest tests/ui/test_snapshot.py` rewrites the golden files; read the
diff before committing them.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.ui.conftest import screen_text, until
from tuiexp.store import events, runstore
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec
from tuiexp.ui.app import TuiexpApp, make_app
from tuiexp.ui.data import Resources

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_795_000_000.0  # 2026-11-18, a fixed instant: every time below is relative to it
SIZES = [(80, 24), (100, 30), (120, 40)]  # the SSH terminal, a comfortable one, a large one
RESOURCES = Resources((), 12.0, 2048, 16384, 0, 0, False)


def write_run(logs: LogsDir, spec: RunSpec, epochs: int, first_epoch: int = 1,
              status: str | None = "finished", epochs_total: int = 4) -> None:
    paths = runstore.create(logs, spec)
    atomic_proc = {"pid": 0, "attempt": 1, "start_time": 0, "started": spec.created}
    runstore.atomic.write_json(paths.proc, atomic_proc)
    t = spec.created
    events.append(paths.events, "start", t, {"pid": 0, "host": "box", "argv": []})
    events.append(paths.events, "meta", t, {"classes": ["cat", "dog", "ship"], "num_params": 1234})
    for e in range(first_epoch, first_epoch + epochs):
        for s in range(1, 6):
            step = (e - 1) * 5 + s
            t += 10
            events.append(paths.events, "step", t, {"step": step, "train_loss": 2.0 / step, "lr": 0.1})
        acc = 0.5 + 0.1 * e * spec.params["batch_size"] / 64
        events.append(paths.events, "epoch", t, {"epoch": e, "train_loss": 1.0 / e,
                                                  "val_loss": 1.2 / e, "val_acc": acc,
                                                  "lr": 0.1 / e, "epoch_time": 50.0})
        paths.checkpoint(e).parent.mkdir(exist_ok=True)
        paths.checkpoint(e).write_bytes(b"")  # what the fork form offers
        events.append(paths.events, "checkpoint", t, {"epoch": e, "path": paths.checkpoint(e).name})
    if status:
        events.append(paths.events, "status", t + 1, {"status": status, "message": ""})
    runstore.atomic.write_json(paths.exit, {"returncode": 0, "attempt": 1, "ended": t + 1})


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logs dir with a sweep run, its fork and a failed run; nothing live."""
    root = tmp_path_factory.mktemp("frozen")
    logs = LogsDir.at(root / "logs")
    (root / "experiments.toml").write_text(
        '[experiments.sweep]\ncommand = "true"\nepochs = 4\nbatch_size = 64\n'
        '[experiments.other]\ncommand = "true"\n')
    params = {"epochs": 4, "batch_size": 64, "dropout": 0.1, "optimizer": "sgd", "lr": 0.1,
              "schedule": [{"kind": "cosine"}]}
    parent = RunSpec(id="20261118-000000-sweep-aaaa", experiment="sweep", params=params,
                     command=("true",), created=T0, seed=0)
    write_run(logs, parent, epochs=4)
    child = parent.forked("20261118-001000-sweep-bbbb", 2, {"batch_size": 32})
    child = RunSpec.from_json({**child.to_json(), "created": T0 + 600})
    write_run(logs, child, epochs=2, first_epoch=3)
    other = RunSpec(id="20261118-002000-other-cccc", experiment="other",
                    params={**params, "batch_size": 128}, command=("true",), created=T0 + 1200)
    write_run(logs, other, epochs=1, status="failed")
    with Index(logs) as index:
        index.rebuild()
    return root


def frozen_app(root: Path) -> TuiexpApp:
    """The app on the frozen logs; the config path relative (dialogs show it), so run
    it from `root`."""
    app = make_app(LogsDir.at(root / "logs"), "experiments.toml",
                   clock=lambda: T0 + 3600, spawn_daemon=False, interval=0.2)
    app.poller.resources = lambda: RESOURCES  # type: ignore[method-assign]
    return app


def runs_ready(app: TuiexpApp) -> bool:
    table = app.screen_stack[1].query_one("RunsTable")
    return len(table.states) == 3 and all(s.backfilled for s in table.states.values())


async def open_detail(pilot, app: TuiexpApp) -> None:
    await pilot.press("j", "enter")  # the sweep run: four epochs (the newest, other, has one)
    await until(pilot, lambda: getattr(app.screen, "detail", None) is not None)


async def open_confirm(pilot, app: TuiexpApp) -> None:
    await pilot.press("d")
    await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")


async def open_export(pilot, app: TuiexpApp) -> None:
    await pilot.press("e")
    await until(pilot, lambda: type(app.screen).__name__ == "ExportScreen")


async def open_help(pilot, app: TuiexpApp) -> None:
    await pilot.press("question_mark")
    await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")


async def open_compare(pilot, app: TuiexpApp) -> None:
    await pilot.press("space", "space")
    await pilot.press("C")
    await until(pilot, lambda: type(app.screen).__name__ == "CompareScreen"
                and app.screen.query_one("#params").row_count > 0)


async def open_new(pilot, app: TuiexpApp) -> None:
    await pilot.press("n")
    await until(pilot, lambda: type(app.screen).__name__ == "NewScreen")


async def open_tags(pilot, app: TuiexpApp) -> None:
    await pilot.press("space", "space", "T", *"best -old")
    await until(pilot, lambda: type(app.screen).__name__ == "TagScreen"
                and "remove old" in screen_text(app))


async def open_note(pilot, app: TuiexpApp) -> None:
    await pilot.press("N", *"lr too high")
    await until(pilot, lambda: type(app.screen).__name__ == "NoteScreen"
                and "lr too high" in screen_text(app))


async def open_fork(pilot, app: TuiexpApp) -> None:
    await pilot.press("j", "f")  # the sweep run (the newest, other, is first)
    await until(pilot, lambda: type(app.screen).__name__ == "ForkScreen"
                and "ready to fork" in screen_text(app))


async def stay(pilot, app: TuiexpApp) -> None:
    return None


SCREENS: dict[str, Callable[..., Awaitable[None]]] = {
    "runs": stay, "detail": open_detail, "confirm": open_confirm, "export": open_export,
    "help": open_help, "compare": open_compare, "new": open_new, "tags": open_tags,
    "note": open_note, "fork": open_fork,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SCREENS))
async def test_screen_snapshot(frozen: Path, name: str, size: tuple[int, int],
                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(frozen)
    app = frozen_app(frozen)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: runs_ready(app))
        await until(pilot, lambda: "supervisor" in screen_text(app))
        await SCREENS[name](pilot, app)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        text = "\n".join(line.rstrip() for line in screen_text(app).splitlines()) + "\n"
    golden = GOLDEN / f"{name}_{size[0]}x{size[1]}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no {golden.name}: run with UPDATE_GOLDEN=1 and read it"
    assert text == golden.read_text(), f"{golden.name} changed; the screen now:\n{text}"


async def test_filter_and_sort_change_what_is_shown(frozen: Path, monkeypatch: pytest.MonkeyPatch):
    """`/` narrows the rows by id, experiment or status; `esc` brings them back; `s`
    reorders them and the header's arrow follows the sort."""
    monkeypatch.chdir(frozen)
    app = frozen_app(frozen)
    parent, child, other = ("20261118-000000-sweep-aaaa", "20261118-001000-sweep-bbbb",
                            "20261118-002000-other-cccc")
    async with app.run_test(size=(120, 20)) as pilot:
        await until(pilot, lambda: runs_ready(app))
        table = app.screen.query_one("RunsTable")
        assert [rid for rid, _ in table.order] == [other, parent, child]  # newest first
        await pilot.press("slash", *"failed")
        await until(pilot, lambda: [rid for rid, _ in table.order] == [other])
        await pilot.press("enter", "escape")
        await until(pilot, lambda: len(table.order) == 3)
        await pilot.press("slash", *"zzz")
        await until(pilot, lambda: table.order == [])
        await until(pilot, lambda: "No run matches 'zzz'" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: len(table.order) == 3)
        await pilot.press("s", "s")  # created -> id -> experiment
        await until(pilot, lambda: [rid for rid, _ in table.order] == [other, parent, child])
        # the experiment column is hidden at this width: the run column names the sort
        await until(pilot, lambda: "run ▼experiment" in screen_text(app))
        await pilot.press("t")  # flat: the fork no longer under its parent
        await until(pilot, lambda: all(depth == 0 for _, depth in table.order))
        assert "└" not in screen_text(app)
