from tuiexp.store import runstore
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


def test_change_numbers_only_go_up_even_after_a_delete(tmp_path):
    logs = LogsDir.at(tmp_path)
    with Index(logs) as index:
        for i in range(3):
            spec = RunSpec(id=f"r{i}", experiment="e", params={}, created=float(i))
            runstore.create(logs, spec)
            index.add_run(spec)
        mark = index.max_seq()
        index.delete("r2")  # the newest
        index.set_status("r1", "running")
        assert [r.id for r in index.runs(since_seq=mark)] == ["r1"]


def test_status_compare_and_set(tmp_path):
    logs = LogsDir.at(tmp_path)
    with Index(logs) as index:
        spec = RunSpec(id="r", experiment="e", params={})
        index.add_run(spec)
        assert index.set_status("r", "starting", expect=("queued",))
        assert not index.set_status("r", "cancelled", expect=("queued",))
        assert index.run("r").status == "starting"
        index.add_run(spec)  # a second add (the supervisor indexed it first) changes nothing
        assert index.run("r").status == "starting"


def test_fork_params_are_what_the_form_and_the_client_both_check():
    from pathlib import Path

    import pytest

    from tuiexp.config import loader
    from tuiexp.config.fork import fork_params
    from tuiexp.errors import ForkError

    parent = loader.load(Path(__file__).resolve().parents[2] / "experiments.toml").expand("smoke")[0]
    phases = [{"epochs": 2, "optimizer": "adam", "lr": 1e-3}]
    child = fork_params(parent, {"schedule": phases}, epoch=1, builtin=True)
    assert child["schedule_start"] == 1 and child["schedule"] == phases  # spans epochs 2..3
    assert fork_params(parent, {"batch_size": 64}, 1, True)["schedule_start"] == 0  # continues
    with pytest.raises(ForkError, match="phases cover 3 epochs but 2 remain"):
        fork_params(parent, {"schedule": [{"epochs": 3, "lr": 0.1}]}, epoch=1, builtin=True)
    with pytest.raises(ForkError, match="leaves nothing to train"):
        fork_params(parent, {"epochs": 1}, epoch=1, builtin=True)
    with pytest.raises(ForkError, match="cannot change model"):
        fork_params(parent, {"model": "vgg"}, epoch=1, builtin=True)
