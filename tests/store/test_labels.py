"""Run labels (issue 18.2): one function (`query.labels`) for the dashboard, its dialogs,
`ls` and the refs the CLI takes. Labels compare resolved params, stay short, always end
with the seed where there are several, and a fork is named by what it changed."""

from __future__ import annotations

from typing import Any

from tuiexp.config.params import defaults_for
from tuiexp.store import query
from tuiexp.store.index import RunRow


def run(rid: str, params: dict[str, Any], seed: int | None = 0, experiment: str = "dropout",
        logged: dict[str, Any] | None = None, **kw: Any) -> RunRow:
    return RunRow(id=f"20261118-000000-{experiment}-{rid}", experiment=experiment,
                  status="finished", spec={"seed": seed, "params": params},
                  logged_params=logged or {}, **kw)


def sweep() -> list[RunRow]:
    """`sweep.dropout = [0.0, 0.3]`, two seeds; params as run.json holds them."""
    base = {"augment": {"flip": True, "crop_padding": 4}, "epochs": 3, "schedule_start": 0}
    return [run(f"{d}{s}", {**base, "dropout": d}, s) for d in (0.0, 0.3) for s in (0, 1)]


def texts(rows: list[RunRow]) -> list[str]:
    return sorted(query.run_labels(rows, defaults_for).values())


def test_a_sweep_is_named_by_what_varies_and_ends_with_the_seed():
    assert texts(sweep()) == ["dropout d=0 s0", "dropout d=0 s1", "dropout d=0.3 s0",
                              "dropout d=0.3 s1"]


def test_equal_values_written_differently_are_no_difference():
    rows = sweep()
    # one run's table in another key order, a default written out, 3 against 3.0
    rows[0] = run("x", {"augment": {"crop_padding": 4, "flip": True}, "epochs": 3.0,
                        "dropout": 0.0, "lr": defaults_for({"command": None})["lr"]}, 0)
    assert texts(rows) == ["dropout d=0 s0", "dropout d=0 s1", "dropout d=0.3 s0",
                           "dropout d=0.3 s1"]


def test_a_fork_is_named_by_its_change_and_leaves_its_siblings_as_they_were():
    rows = sweep()
    before = query.run_labels(rows, defaults_for)
    parent = rows[2]  # d=0.3 s0
    fork = run("f1", {**parent.spec["params"], "dropout": 0.2, "schedule_start": 1,
                      "schedule": [{"epochs": 2, "lr": 0.05}]}, 0,
               parent=parent.id, fork_epoch=1)
    labels = query.labels([*rows, fork], defaults_for)
    assert {rid: label.text for rid, label in labels.items() if rid != fork.id} == before
    assert labels[fork.id].under_parent == "fork@1 d=0.2 sched"
    assert labels[fork.id].text == "dropout fork@1 d=0.2 sched s0"


def test_labels_are_capped_and_keep_the_seed():
    rows = [run(f"{i}{s}", {"lr": lr, "weight_decay": wd, "optimizer": opt, "model": "resnet"}, s)
            for i, (lr, wd, opt) in enumerate([(0.1, 1e-4, "sgd"), (0.0123456, 5e-4, "adamw_long")])
            for s in (0, 1)]
    for text in texts(rows):
        assert len(text) <= query.LABEL_WIDTH and text.split()[-1] in ("s0", "s1"), text
    assert len(set(texts(rows))) == 4


def test_a_label_names_a_run_or_lists_the_runs_it_could_mean():
    labels = query.run_labels(sweep(), defaults_for)
    one = query.runs_labelled(labels, "dropout d=0.3 s1")
    assert [labels[rid] for rid in one] == ["dropout d=0.3 s1"]
    assert sorted(labels[rid] for rid in query.runs_labelled(labels, "dropout d=0.3")) == [
        "dropout d=0.3 s0", "dropout d=0.3 s1"]
    assert query.runs_labelled(labels, "dropout d=0.") == []  # whole words only


def test_runs_that_read_alike_get_the_ids_tail():
    rows = [run("aaaa", {"lr": 0.1}, None, "smoke"), run("bbbb", {"lr": 0.1}, None, "smoke")]
    assert texts(rows) == ["smoke #aaaa", "smoke #bbbb"]
