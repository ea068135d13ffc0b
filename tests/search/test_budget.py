"""Parameter budgets end to end: a real tiny sweep through the queue, and bad input refused
at `tuiexp check` and `tuiexp run` with nothing queued."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuiexp.config import loader, values
from tuiexp.errors import ConfigError
from tuiexp.store import runstore
from tuiexp.store.events import TERMINAL
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

from ..conftest import tuiexp, wait_for, write_config

#: the trainer tests' tiny data (tests/trainer/conftest.py): one epoch in about a second
TINY = """
dataset = "shapes"
num_train = 288
val_split = 0.125
image_size = 16
batch_size = 32
epochs = 1
optimizer = "adam"
lr = 0.01
weight_decay = 0.0
threads = 1
device = "cpu"
"""


def config(where: Path, body: str, cpu_jobs: int = 2) -> Path:
    return write_config(where, f'[queue]\ngpus = "none"\ncpu_jobs = {cpu_jobs}\n\n'
                        f"[experiments.size]\n{TINY}{body}\n")


@pytest.mark.slow
def test_a_budget_sweep_runs_and_each_model_lands_within_five_percent(workdir: Path) -> None:
    budgets = [2e3, 1e4, 5e4]
    config(workdir, 'model = "resnet"\nparam_budget = [2e3, 1e4, 5e4]')
    out = tuiexp(workdir, "run", "size", check=True)
    logs = LogsDir.at(workdir / "logs")
    ids = runstore.run_ids(logs)
    assert len(ids) == 3, out.stdout

    def done() -> bool:
        with Index(logs) as index:
            return all((r := index.run(rid)) is not None and r.status in TERMINAL for rid in ids)

    wait_for(done, timeout=300, every=0.2)
    rows = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
    assert {r["status"] for r in rows} == {"finished"}, rows
    by_budget = {}
    for rid in ids:
        spec = runstore.load_spec(logs.run(rid))
        meta = next(e for e in _events(logs, rid) if e["kind"] == "meta")
        by_budget[spec.params["param_budget"]] = (meta["num_params"], spec.params["model_args"])
        assert not [e for e in _events(logs, rid) if e["kind"] == "warning"]
    assert sorted(by_budget) == budgets
    for budget, (count, _) in by_budget.items():
        assert abs(count - budget) <= 0.05 * budget, (budget, count)
    assert by_budget[2e3][1]["widths"] != by_budget[5e4][1]["widths"]
    # the exact count reaches the listing and the table
    listing = tuiexp(workdir, "ls", "--columns", "num_params", check=True).stdout
    for count, _ in by_budget.values():
        assert str(count) in listing.replace(",", "")
    table = tuiexp(workdir, "export", "--format", "csv", check=True).stdout
    header = table.splitlines()[0].split(",")
    assert "param_budget" in header and "num_params" in header
    # and the params plot draws one point per budget
    tuiexp(workdir, "plot", "params", "-o", "params.png", check=True)
    assert (workdir / "params.png").stat().st_size > 10_000


def _events(logs: LogsDir, rid: str) -> list[dict]:
    from tuiexp.store import events

    return events.read_all(logs.run(rid).events)


def test_budgets_expand_like_a_sweep(tmp_path: Path) -> None:
    path = config(tmp_path, 'model = "vgg"\nparam_budget = [1e3, 5e3]\nseeds = [0, 1]\n'
                  'sweep = { dropout = [0.0, 0.2] }')
    cfg = loader.load(path)
    runs = cfg.expand("size")
    assert len(runs) == cfg.experiments["size"].num_runs == 8
    assert [r["param_budget"] for r in runs[:4]] == [1000, 1000, 5000, 5000]
    assert {r["seed"] for r in runs} == {0, 1} and {r["dropout"] for r in runs} == {0.0, 0.2}
    assert all(isinstance(r["param_budget"], int) for r in runs)  # 1e3 reads 1000 in labels
    assert runs[0]["model_args"] == runs[1]["model_args"] != runs[2]["model_args"]
    # --set fixes one budget
    one = cfg.expand("size", values.parse_overrides(["param_budget=2e4"]))
    assert {r["param_budget"] for r in one} == {20000} and len(one) == 4


@pytest.mark.parametrize(("body", "said"), [
    ('param_budget = [1e3, 0]', "line 18: `param_budget` holds 0; a budget must be a positive number"),
    ('param_budget = [-5.0]', "`param_budget` holds -5.0; a budget must be a positive number"),
    ('param_budget = ["1k"]', "`param_budget` must be a parameter count or a list of them"),
    ('param_budget = [true]', "`param_budget` must be a parameter count or a list of them"),
    ('param_budget = []', "`param_budget` is an empty list"),
    ('param_budget = [1e4, 1e4]', "`param_budget` lists 10,000 twice"),
    ('param_budget = nan', "`param_budget` holds nan"),
    ('model = "mbconv"\nparam_budget = [1e3, 1e4]',
     "line 19: `param_budget` 1,000 is below the smallest mbconv model for these data"),
    ('model = "resnet"\nmodel_args = { widths = [64, 64, 64, 64], depths = [3, 3, 3, 3] }\n'
     'param_budget = [1e3]', "`param_budget` 1,000 cannot be reached: no resnet width lands within ±5 %"),
    ('model = "tv:resnet18"\nparam_budget = [1e4]', "model 'tv:resnet18' has no sizing rule"),
    ('command = "python x.py"\nparam_budget = [1e4]',
     "an experiment with a `command` has no sizing rule"),
    ('param_budget = [1e4]\nsearch = { trials = 2, lr = { log_uniform = [1e-3, 1e-1] } }',
     "`param_budget` cannot be combined with `search` or `pbt`"),
])
def test_bad_budgets_are_one_sentence_at_check_and_nothing_is_queued(
        workdir: Path, body: str, said: str) -> None:
    config(workdir, body)
    with pytest.raises(ConfigError) as e:
        loader.load(workdir / "experiments.toml")
    assert said in str(e.value) and "experiments.toml" in str(e.value)
    check = tuiexp(workdir, "check")
    assert check.returncode == 2 and said in check.stderr
    assert len(check.stderr.strip().splitlines()) == 1, check.stderr
    run = tuiexp(workdir, "run", "size")
    assert run.returncode == 2 and said in run.stderr
    assert not (workdir / "logs" / "runs").exists() or not runstore.run_ids(LogsDir.at(workdir / "logs"))


def test_a_sweep_over_the_family_is_checked_per_point(workdir: Path) -> None:
    config(workdir, 'param_budget = [1.5e3]\nsweep = { model = ["vgg", "mbconv"] }')
    check = tuiexp(workdir, "check")
    assert check.returncode == 2
    assert "`param_budget` 1,500 is below the smallest mbconv model" in check.stderr


def test_the_dashboard_label_names_the_budget_not_the_widths(tmp_path: Path) -> None:
    from tuiexp.store.index import RunRow
    from tuiexp.ui.widgets.runs_table import run_labels

    path = config(tmp_path, 'model = "vgg"\nparam_budget = [1e3, 5e3]\nseeds = [0, 1]')
    runs = loader.load(path).expand("size")
    rows = {f"r{i}": RunRow(id=f"r{i}", experiment="size", status="queued",
                            spec={"seed": p["seed"], "params": p}) for i, p in enumerate(runs)}
    assert sorted(run_labels(rows).values()) == ["size budget=1000 s0", "size budget=1000 s1",
                                                 "size budget=5000 s0", "size budget=5000 s1"]
