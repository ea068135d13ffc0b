"""A snapshot of the runs screen: fixed run ids, fixed event times and a frozen clock,
so the text is the same on every machine. `UPDATE_GOLDEN=1 pytest tests/ui` rewrites it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.ui.conftest import screen_text, until
from tuiexp.core import events, runstore
from tuiexp.core.index import Index
from tuiexp.core.paths import LogsDir
from tuiexp.core.spec import RunSpec
from tuiexp.ui.app import make_app

GOLDEN = Path(__file__).parent / "golden" / "runs_screen.txt"
T0 = 1_795_000_000.0  # 2026-11-18, a fixed instant: every time below is relative to it


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
    if status:
        events.append(paths.events, "status", t + 1, {"status": status, "message": ""})
    runstore.atomic.write_json(paths.exit, {"returncode": 0, "attempt": 1, "ended": t + 1})


async def test_runs_screen_snapshot(tmp_path: Path):
    logs = LogsDir.at(tmp_path / "logs")
    (tmp_path / "experiments.toml").write_text('[experiments.x]\ncommand = "true"\n')
    params = {"epochs": 4, "batch_size": 64, "dropout": 0.1}
    parent = RunSpec(id="20261118-000000-sweep-aaaa", experiment="sweep", params=params,
                     command=("true",), created=T0)
    write_run(logs, parent, epochs=4)
    child = parent.forked("20261118-001000-sweep-bbbb", 2, {"batch_size": 32})
    child = RunSpec.from_json({**child.to_json(), "created": T0 + 600})
    write_run(logs, child, epochs=2, first_epoch=3)
    other = RunSpec(id="20261118-002000-other-cccc", experiment="other",
                    params={**params, "batch_size": 128}, command=("true",), created=T0 + 1200)
    write_run(logs, other, epochs=1, status="failed")
    with Index(logs) as index:
        index.rebuild()

    app = make_app(logs, tmp_path / "experiments.toml", clock=lambda: T0 + 3600,
                   spawn_daemon=False, interval=0.2)
    async with app.run_test(size=(150, 12)) as pilot:
        table = app.screen.query_one("RunsTable")
        await until(pilot, lambda: len(table.states) == 3
                    and all(s.backfilled for s in table.states.values()))
        await pilot.pause(0.5)
        lines = screen_text(app).splitlines()
    # the strip's CPU and RAM figures are this machine's: the snapshot starts below it
    below = lines[next(i for i, line in enumerate(lines) if "supervisor" in line) + 1:]
    text = "\n".join(line.rstrip() for line in below).strip("\n") + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
