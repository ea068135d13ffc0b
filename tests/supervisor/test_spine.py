"""The spine end to end: real CLI, real supervisor, real run processes, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from tests.conftest import show, tuiexp, wait_for, write_config
from tuiexp.queue import daemon
from tuiexp.store import events, lock
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

CONFIG = """
[queue]
gpus = "none"  # the fake runs need no GPU: the same slots on every machine
cpu_jobs = 4

[experiments.fake]
command = "python FAKE_RUN"
epochs = 3
steps_per_epoch = 4
checkpoint = true
batch_size = 64

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2

[experiments.slow]
command = "python FAKE_RUN"
epochs = 50
steps_per_epoch = 10
sleep = 0.02

[experiments.hang]
command = "python FAKE_RUN"
epochs = 3
hang = true

[experiments.crash]
command = "python FAKE_RUN"
crash_at_epoch = 2

[experiments.missing]
command = "no-such-command --flag"

[experiments.missing_later]  # a templated program: only its start can find it missing
command = "{prog} --flag"
prog = "no-such-command"
"""


def queue(where, *args) -> list[str]:
    return tuiexp(where, "run", *args, check=True).stdout.split()


def test_user_script_metrics_and_fork_record_lineage(workdir):
    write_config(workdir, CONFIG)
    out = tuiexp(workdir, "run", "fake", "--wait", check=True)
    run_id = out.stdout.split()[0]
    data = show(workdir, run_id)
    assert data["status"] == "finished"
    assert data["epoch"] == 3 and data["metrics"]["val_acc@epoch"]["last"] > 0.5
    assert data["metric"] == "val_acc" and data["best"] == data["metrics"]["val_acc@epoch"]["max"]
    assert data["meta"]["classes"] == ["cat", "dog", "ship"]
    assert data["checkpoints"] == [1, 2, 3]

    out = tuiexp(workdir, "fork", run_id, "--epoch", "1", "--set", "batch_size=32", "--wait", check=True)
    child_id = out.stdout.split()[0]
    child = show(workdir, child_id)
    assert child["parent"] == run_id and child["fork_epoch"] == 1
    assert child["params"]["batch_size"] == 32 and child["status"] == "finished"
    # the child started from the parent's epoch-1 checkpoint: its first epoch is 2
    logs = LogsDir.at(workdir / "logs")
    epochs = [e["epoch"] for e in events.read_all(logs.run(child_id).events) if e["kind"] == "epoch"]
    assert epochs == [2, 3]
    assert show(workdir, run_id)["children"] == [child_id]
    listed = tuiexp(workdir, "ls", check=True).stdout.splitlines()
    child_line = next(line for line in listed if line.startswith(child_id))
    assert "finished" in child_line and child_line.endswith(f"{run_id}@1")


def test_fork_to_an_epoch_without_checkpoint_queues_nothing(workdir):
    write_config(workdir, CONFIG)
    run_id = tuiexp(workdir, "run", "quick", "--wait", check=True).stdout.split()[0]
    before = tuiexp(workdir, "ls", "--json", check=True).stdout
    out = tuiexp(workdir, "fork", run_id, "--epoch", "1", "--set", "epochs=4")
    assert out.returncode == 2 and "has no checkpoint" in out.stderr and "Traceback" not in out.stderr
    assert tuiexp(workdir, "ls", "--json", check=True).stdout == before
    assert len(list((workdir / "logs" / "runs").iterdir())) == 1


def test_missing_command_and_raising_script_fail_with_a_sentence(workdir):
    write_config(workdir, CONFIG)
    out = tuiexp(workdir, "run", "missing", "--wait")  # refused as `check` refuses it
    assert out.returncode == 2 and "`no-such-command`, which is not on PATH" in out.stderr
    out = tuiexp(workdir, "run", "missing_later", "--wait")
    assert out.returncode == 1 and "command `no-such-command` was not found" in out.stdout
    out = tuiexp(workdir, "run", "crash", "--wait")
    assert out.returncode == 1
    run_id = out.stdout.split()[0]
    data = show(workdir, run_id)
    assert data["status"] == "failed" and "ValueError: boom at epoch 2" in data["message"]
    assert data["epoch"] == 1  # what was logged before the crash is kept


def test_sigkill_mid_epoch_shows_crashed_and_keeps_flushed_metrics(workdir):
    write_config(workdir, CONFIG)
    (run_id,) = queue(workdir, "slow")
    logs = LogsDir.at(workdir / "logs")
    with Index(logs) as index:
        row = wait_for(lambda: (r := index.run(run_id)) and r.epoch and r.epoch >= 1 and r)
        os.kill(row.pid, signal.SIGKILL)
        row = wait_for(lambda: (r := index.run(run_id)) and r.status == "crashed" and r)
    assert "SIGKILL" in row.message
    assert row.epoch >= 1
    assert show(workdir, run_id)["status"] == "crashed"


def test_cancel_kills_the_process_group(workdir):
    write_config(workdir, CONFIG)
    (run_id,) = queue(workdir, "hang")
    logs = LogsDir.at(workdir / "logs")
    with Index(logs) as index:
        wait_for(lambda: (r := index.run(run_id)) and r.epoch == 1)
        tuiexp(workdir, "cancel", run_id, check=True)
        row = wait_for(lambda: (r := index.run(run_id)) and r.status == "cancelled" and r, timeout=20)
    assert not os.path.exists(f"/proc/{row.pid}") or "Z" in open(f"/proc/{row.pid}/stat").read().split()[2]


def test_cancel_kills_children_that_ignore_sigterm(workdir):
    write_config(workdir, CONFIG)
    (run_id,) = queue(workdir, "hang", "--set", "stubborn_child=true")
    logs = LogsDir.at(workdir / "logs")
    pid_file = logs.run(run_id).dir / "child.pid"
    with Index(logs) as index:
        wait_for(lambda: (r := index.run(run_id)) and r.epoch == 1 and pid_file.exists())
        child = int(pid_file.read_text())
        tuiexp(workdir, "cancel", run_id, check=True)
        wait_for(lambda: (r := index.run(run_id)) and r.status == "cancelled", timeout=20)
    wait_for(lambda: not os.path.exists(f"/proc/{child}")
             or open(f"/proc/{child}/stat").read().split()[2] == "Z", timeout=5)


def test_nan_metrics_do_not_break_listing(workdir):
    write_config(workdir, CONFIG)
    out = tuiexp(workdir, "run", "quick", "--set", "nan_loss=true", "--wait", check=True)
    run_id = out.stdout.split()[0]
    listed = tuiexp(workdir, "ls", "--columns", "last:val_acc,last:train_loss")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line.split() for line in listed.stdout.splitlines() if line.startswith(run_id)]
    # the NaN values are listed as such; no best is made up from them
    assert row[2] == "finished" and row[4:] == ["-", "nan", "nan"], listed.stdout  # id, label
    data = show(workdir, run_id)
    assert data["status"] == "finished" and data["best"] is None
    text = tuiexp(workdir, "show", run_id, check=True).stdout
    assert "best val_acc - (max, no finite value yet)" in text


def test_a_resumed_attempt_that_dies_before_init_is_not_shown_as_the_old_status(workdir):
    write_config(workdir, CONFIG)
    gate = workdir / "die"
    (run_id,) = queue(workdir, "hang", "--set", f'exit_before_init=[3, "{gate}"]')
    logs = LogsDir.at(workdir / "logs")
    with Index(logs) as index:
        wait_for(lambda: (r := index.run(run_id)) and r.epoch == 1)
        tuiexp(workdir, "cancel", run_id, check=True)
        wait_for(lambda: (r := index.run(run_id)) and r.status == "cancelled", timeout=20)
    gate.write_text("")
    out = tuiexp(workdir, "resume", run_id, "--wait")
    assert out.returncode == 1
    data = show(workdir, run_id)
    assert (data["status"], data["message"]) == ("failed", "exited with code 3")


def test_no_supervisor_no_stale_running(workdir):
    write_config(workdir, CONFIG)
    (run_id,) = queue(workdir, "hang")
    logs = LogsDir.at(workdir / "logs")
    with Index(logs) as index:
        row = wait_for(lambda: (r := index.run(run_id)) and r.epoch == 1 and r)
    assert daemon.stop(logs)
    os.kill(row.pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{row.pid}")
             or open(f"/proc/{row.pid}/stat").read().split()[2] == "Z")
    assert f"{run_id}" in tuiexp(workdir, "ls", check=True).stdout
    assert show(workdir, run_id)["status"] == "crashed"


def test_a_half_made_run_directory_is_never_dispatched(workdir):
    write_config(workdir, CONFIG)
    logs = LogsDir.at(workdir / "logs").ensure()
    staging = logs.runs / ".new-20261122-000000-fake-0000-1"
    staging.mkdir()
    (staging / "run.json").write_text(json.dumps({"id": "x", "experiment": "fake", "params": {},
                                                  "command": ["python", "-c", "pass"]}))
    (run_id,) = queue(workdir, "quick")
    assert tuiexp(workdir, "wait", run_id).returncode == 0
    with Index(logs) as index:
        index.rebuild()
        assert [r.id for r in index.runs()] == [run_id]


def test_daemon_killed_with_three_active_runs_readopts_them(workdir):
    write_config(workdir, CONFIG)
    ids = [queue(workdir, "slow", "--set", "epochs=8", "--set", "sleep=0.1")[0]
           for _ in range(3)]
    logs = LogsDir.at(workdir / "logs")
    with Index(logs) as index:
        wait_for(lambda: all((r := index.run(i)) and r.status == "running" and r.step for i in ids))
        pid = lock.info(logs)["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not lock.is_running(logs))
        assert daemon.spawn(logs)
        rows = wait_for(lambda: (rs := [index.run(i) for i in ids]) and
                        all(r.status == "finished" for r in rs) and rs, timeout=60)
        for row in rows:
            steps = [s for s, _ in index.points(row.num, "train_loss", "step")]
            # every step each run flushed reached the index exactly once
            on_disk = [e["step"] for e in events.read_all(logs.run(row.id).events) if e["kind"] == "step"]
            assert steps == sorted(set(on_disk)) and len(on_disk) == len(set(on_disk)) == 80
            assert [e for e, _ in index.points(row.num, "val_acc", "epoch")] == list(range(1, 9))


def test_torn_last_line_is_skipped_then_completed(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"v":1,"t":1,"kind":"epoch","epoch":1}\n{"v":1,"t":2,"kind":"ep')
    chunk = events.read_from(path, 0)
    assert [e["epoch"] for e in chunk.events] == [1] and chunk.offset == path.read_bytes().index(b"\n") + 1
    events.append(path, "epoch", 3.0, {"epoch": 2})  # a resumed writer ends the torn line first
    rest = events.read_from(path, chunk.offset)
    assert [e["epoch"] for e in rest.events] == [2] and rest.skipped == 1


def test_two_clis_queueing_at_once(workdir):
    write_config(workdir, CONFIG)
    procs = [subprocess.Popen([sys.executable, "-m", "tuiexp.cli", "run", "quick"], cwd=workdir,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    ids = [p.communicate(timeout=60)[0].split()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and len(set(ids)) == 4
    listed = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
    assert sorted(r["id"] for r in listed) == sorted(ids)
    # the set of runs to wait for, by filter: it ends when every one of them has ended
    out = tuiexp(workdir, "wait", "--filter", "exp:quick")
    assert out.returncode == 0, out.stderr
    assert {line.split()[0] for line in out.stdout.splitlines() if " epoch " in line} == set(ids)
    assert all(show(workdir, r)["status"] == "finished" for r in ids)
    out = tuiexp(workdir, "wait", "--filter", "exp:nothing")
    assert out.returncode == 2 and "'exp:nothing' selects none" in out.stderr


def test_run_ids_cannot_escape_the_logs_directory(workdir):
    write_config(workdir, CONFIG + '\n[experiments."../../evil"]\ncommand = "true"\n')
    out = tuiexp(workdir, "run", "../../evil")
    assert out.returncode == 2 and "not a valid experiment name" in out.stderr
    out = tuiexp(workdir, "show", "../../etc")
    assert out.returncode == 2 and "not a valid run id" in out.stderr
    assert not (workdir.parent / "evil").exists()


def test_reindex_rebuilds_the_same_index(workdir):
    write_config(workdir, CONFIG)
    a = queue(workdir, "quick")[0]
    tuiexp(workdir, "run", "crash", "--wait")
    tuiexp(workdir, "wait", a, check=True)
    before = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
    (workdir / "logs" / "index.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (workdir / "logs" / f"index.sqlite{suffix}").unlink(missing_ok=True)
    daemon.stop(LogsDir.at(workdir / "logs"))
    tuiexp(workdir, "reindex", check=True)
    after = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
    keys = ("id", "status", "message", "epoch", "best", "parent", "metrics")
    assert [{k: r[k] for k in keys} for r in after] == [{k: r[k] for k in keys} for r in before]


def test_resume_continues_a_cancelled_run(workdir):
    write_config(workdir, CONFIG)
    (run_id,) = queue(workdir, "fake", "--set", "sleep=0.2", "--set", "epochs=4")
    logs = LogsDir.at(workdir / "logs")
    with Index(logs) as index:
        wait_for(lambda: (r := index.run(run_id)) and 1 in r.checkpoints, timeout=30)
        tuiexp(workdir, "cancel", run_id, check=True)
        wait_for(lambda: (r := index.run(run_id)) and r.status == "cancelled", timeout=30)
    out = tuiexp(workdir, "resume", run_id, "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    evs = events.read_all(logs.run(run_id).events)
    assert [e["status"] for e in evs if e["kind"] == "status"] == ["cancelled", "finished"]
    assert max(e["epoch"] for e in evs if e["kind"] == "epoch") == 4


def test_concurrent_writers_do_not_block_readers(workdir):
    """A reader sees a consistent index while the supervisor writes (WAL): readers
    poll from before the runs start until after they end, so they overlap the writes."""
    write_config(workdir, CONFIG)
    logs = LogsDir.at(workdir / "logs").ensure()
    errors: list[Exception] = []
    seen: set[tuple[str, str, int | None]] = set()
    done = threading.Event()

    def read() -> None:
        try:
            with Index(logs) as index:
                while not done.is_set():
                    seen.update((r.id, r.status, r.epoch) for r in index.runs())
        except Exception as e:  # noqa: BLE001 - any error fails the test below
            errors.append(e)

    with Index(logs):
        pass  # the index exists before the readers open it
    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        # an epoch takes about a second: epoch 1 is in the index for a while, whatever the load
        ids = [queue(workdir, "slow", "--set", "epochs=2", "--set", "sleep=0.1")[0] for _ in range(2)]
        assert tuiexp(workdir, "wait", *ids).returncode == 0
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors
    # the readers saw the runs while they were written: running mid-way, then finished
    assert any(status == "running" and epoch == 1 for _, status, epoch in seen), seen
    assert {status for _, status, _ in seen} >= {"running", "finished"}
