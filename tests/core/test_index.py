from tuiexp.core import runstore
from tuiexp.core.index import Index
from tuiexp.core.paths import LogsDir
from tuiexp.core.spec import RunSpec


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
