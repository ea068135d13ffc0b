"""The queue on a real one-node Slurm: real sbatch, squeue, sacct, scancel; no stand-ins.

Most runs are the fake run script (no torch: fast to start); the trainer runs where
its metrics and checkpoints matter. Job states come from squeue unless a test asks
for accounting (sacct).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.slurm.conftest import (
    KILL_WAIT,
    TINY_TOML,
    cli,
    config,
    job_id,
    job_state,
    ok,
    run_dir,
    show,
    status,
    wait_for,
)
from tests.trainer.conftest import TINY, make_run, read_events, run_trainer
from tuiexp.queue import slurm
from tuiexp.store import events, lock
from tuiexp.store.index import Index
from tuiexp.store.paths import LogsDir

FAKE = """
[queue]
executor = "slurm"
[queue.slurm]
cpus_per_task = 1

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2

[experiments.slow]
command = "python FAKE_RUN"
epochs = 25
steps_per_epoch = 5
sleep = 0.05

[experiments.medium]
command = "python FAKE_RUN"
epochs = 20
steps_per_epoch = 5
sleep = 0.05

[experiments.hang]
command = "python FAKE_RUN"
hang = true

[experiments.sweep]
command = "python FAKE_RUN"
epochs = 10
steps_per_epoch = 5
sleep = 0.1
seeds = [1, 2, 3, 4]

[experiments.badpart]
command = "python FAKE_RUN"
slurm = { partition = "nosuchpartition" }

[experiments.held]
command = "python FAKE_RUN"
epochs = 1
slurm = { sbatch = ["--hold"] }
"""


def queue(where, name: str) -> list[str]:
    return ok(where, "run", name).split()


def test_trainer_run_finishes_with_metrics_through_sacct(project, monkeypatch):
    """A real tiny trainer run as a Slurm job, seen through squeue and sacct (accounting)."""
    monkeypatch.setenv("TUIEXP_SLURM_ACCOUNTING", "auto")
    if not slurm.accounting():
        pytest.skip("Slurm accounting is off (scripts/slurm-up.sh --accounting turns it on)")
    config(project, "[queue]\nexecutor = \"slurm\"\n[queue.slurm]\ncpus_per_task = 1\n"
           "time = \"10\"\n\n[experiments.tiny]\nepochs = 2\n" + TINY_TOML)
    (rid,) = queue(project, "tiny")
    job = job_id(project, rid)
    wait_for(lambda: status(project, rid) in events.TERMINAL, timeout=120, every=0.5)
    row = show(project, rid)
    assert row["status"] == "finished", row["message"]
    assert row["epoch"] == 2 and isinstance(row["metrics"]["val_acc@epoch"]["last"], float)
    proc = json.loads((run_dir(project, rid) / "proc.json").read_text())
    assert proc["executor"] == "slurm" and proc["job_id"] == job and proc["node"]
    exit_rec = json.loads((run_dir(project, rid) / "exit.json").read_text())
    assert exit_rec["slurm_state"] == "COMPLETED" and exit_rec["slurm_exit_code"] == "0:0"
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"],
                         capture_output=True, text=True, timeout=30).stdout
    assert out.strip() == "COMPLETED"
    assert "squeue + sacct" in ok(project, "daemon", "status")


def test_sweep_of_four_on_two_cpus_pends_then_runs(project):
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                          timeout=30).stdout.split()[0]
    if cpus != "2":
        pytest.skip(f"wants a node of two CPUs; this Slurm's has {cpus}")
    config(project, FAKE)
    ids = queue(project, "sweep")
    assert len(ids) == 4

    seen = set()

    def split() -> bool:
        with Index(LogsDir.at(project / "logs")) as index:  # one read, all four rows at once
            rows = [index.run(r) for r in ids]
        pending = sum(r.status == "starting" and "pending" in r.message for r in rows)
        running = sum(r.status == "running" for r in rows)
        seen.add((pending, running))
        return all(r.status == "finished" for r in rows)

    wait_for(split, timeout=120, every=0.1)
    # one job per CPU at once, and a job seen pending while the node was full (the fourth
    # may still be on its way to sbatch under load, so not always two pending)
    assert max(running for _, running in seen) == 2, sorted(seen)
    assert any(pending >= 1 and running == 2 for pending, running in seen), sorted(seen)
    assert "squeue" in ok(project, "daemon", "status")


def test_cancel_from_the_cli_ends_the_job_within_killwait(project):
    config(project, FAKE)
    (rid,) = queue(project, "hang")
    job = job_id(project, rid)
    wait_for(lambda: (show(project, rid)["epoch"] or 0) >= 1, timeout=60, every=0.3)
    ok(project, "cancel", rid)
    wait_for(lambda: job_state(job) not in ("RUNNING", "COMPLETING", "PENDING", ""),
             timeout=KILL_WAIT + 2 + slurm.POLL_EVERY, every=0.1)
    wait_for(lambda: status(project, rid) == "cancelled", timeout=10, every=0.2)


def test_killed_supervisor_readopts_running_jobs(project):
    config(project, FAKE)
    ids = queue(project, "slow") + queue(project, "slow")
    logs = LogsDir.at(project / "logs")
    wait_for(lambda: all(status(project, r) == "running" for r in ids), timeout=60, every=0.3)
    pid = int(lock.info(logs)["pid"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not lock.is_running(logs), timeout=10)
    jobs = [job_id(project, r) for r in ids]
    assert all(job_state(j) == "RUNNING" for j in jobs)  # the jobs never needed it
    ok(project, "daemon", "start")
    wait_for(lambda: all(status(project, r) == "finished" for r in ids), timeout=90, every=0.5)
    assert "adopted" in (project / "logs" / "daemon.log").read_text()


def test_scancel_kill_shows_crashed_and_resumes(project):
    config(project, FAKE)
    (rid,) = queue(project, "medium")
    job = job_id(project, rid)
    wait_for(lambda: (show(project, rid)["epoch"] or 0) >= 1, timeout=60, every=0.3)
    # --batch: a real SIGKILL (without it, Slurm 22.05 turns --signal=KILL into a cancel:
    # TERM first, which the run answers with its own "cancelled")
    subprocess.run(["scancel", "--batch", "--signal=KILL", job], check=True, timeout=30)
    wait_for(lambda: status(project, rid) == "crashed", timeout=30, every=0.3)
    assert job in show(project, rid)["message"]
    ok(project, "resume", rid)
    wait_for(lambda: status(project, rid) == "finished", timeout=90, every=0.5)
    assert show(project, rid)["attempt"] == 2


def test_no_sbatch_is_one_sentence_and_queues_nothing(project):
    config(project, FAKE)
    empty = project / "bin"
    empty.mkdir()
    for args in (("check",), ("run", "quick")):
        proc = cli(project, *args, env={"PATH": str(empty)})
        assert proc.returncode == 2, proc
        assert proc.stderr.count("\n") == 1 and "sbatch" in proc.stderr, proc.stderr
        assert "experiments.toml" in proc.stderr
    assert not list((project / "logs" / "runs").glob("*")) if (project / "logs").exists() else True


def test_slurm_refusal_fails_that_run_only(project):
    config(project, FAKE)
    (bad,) = queue(project, "badpart")
    (good,) = queue(project, "quick")
    wait_for(lambda: status(project, bad) == "failed", timeout=30, every=0.3)
    msg = show(project, bad)["message"]
    assert "'badpart'" in msg and "partition" in msg.lower() and msg.count(".") >= 1, msg
    assert "\n" not in msg
    wait_for(lambda: status(project, good) == "finished", timeout=60, every=0.3)


def test_a_node_that_cannot_see_the_logs_dir_fails_with_a_message(project):
    config(project, FAKE)
    (rid,) = queue(project, "held")
    job = job_id(project, rid)
    wait_for(lambda: "pending" in show(project, rid)["message"], timeout=30, every=0.3)
    # what a node without the shared filesystem sees: no marker file
    (run_dir(project, rid) / slurm.MARKER).unlink()
    subprocess.run(["scontrol", "release", job], check=True, timeout=30)
    wait_for(lambda: status(project, rid) == "failed", timeout=60, every=0.3)
    msg = show(project, rid)["message"]
    assert "could not see its run directory" in msg and "compute nodes share" in msg, msg
    assert "cannot see the run directory" in (run_dir(project, rid) / "stdout.log").read_text()


def test_time_limit_signal_checkpoints_requeues_and_matches_the_uninterrupted_run(project, tmp_path):
    """SIGUSR1 to the batch shell is what Slurm sends `signal_before` seconds before the
    time limit; the trainer stops at its next step, says preempted, is submitted again
    as a new job, resumes from its last epoch checkpoint (the interrupted epoch is run
    again from its start) and ends with the same numbers as a run never interrupted."""
    epochs = 30  # seconds of training left after epoch 1, so the signal lands mid-run even
    # when the scancel and the wrapper's stop file are slow under load (8 epochs, ~1 s, were not)
    config(project, "[queue]\nexecutor = \"slurm\"\n[queue.slurm]\ncpus_per_task = 1\n"
           f"time = \"10\"\n\n[experiments.tiny]\nepochs = {epochs}\n" + TINY_TOML)
    (rid,) = queue(project, "tiny")
    first = job_id(project, rid)
    log = run_dir(project, rid) / "events.jsonl"
    wait_for(lambda: any(e["kind"] == "epoch" for e in events.read_all(log)), timeout=120)
    subprocess.run(["scancel", "--batch", "--signal=USR1", first], check=True, timeout=30)
    # the reference, never interrupted, on the other CPU meanwhile
    ref = make_run(tmp_path / "ref", {**TINY, "epochs": epochs})
    done = run_trainer(ref, timeout=180)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: status(project, rid) in events.TERMINAL, timeout=150, every=0.5)
    row = show(project, rid)
    assert row["status"] == "finished", row["message"]
    assert row["attempt"] >= 2 and job_id(project, rid) != first
    evs = events.read_all(run_dir(project, rid) / "events.jsonl")
    said = [e["status"] for e in evs if e["kind"] == "status"]
    assert said[0] == "preempted" and said[-1] == "finished"
    want = read_events(ref, "epoch")[-1]
    got = [e for e in evs if e["kind"] == "epoch" and e["epoch"] == epochs][-1]
    for key in ("train_loss", "val_loss", "val_acc", "train_acc"):
        assert got[key] == want[key], key


def test_stop_request_file_and_should_stop(tmp_path):
    """track.should_stop(): False, then True once stop.request appears (checked at most
    every STOP_CHECK_EVERY seconds), and True at once after SIGUSR1."""
    script = (
        "import os, signal, sys, time\n"
        "from tuiexp import track\n"
        "run = track.init()\n"
        "assert not track.should_stop()\n"
        "open(os.path.join(run.dir, 'stop.request'), 'w').close()\n"
        "deadline = time.monotonic() + 10\n"
        "while not track.should_stop():\n"
        "    assert time.monotonic() < deadline\n"
        "    time.sleep(0.05)\n"
        "os.unlink(os.path.join(run.dir, 'stop.request'))\n"
        "run.stop_asked = False\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "assert track.should_stop()\n"
        "track.finish('preempted', 'asked')\n"
    )
    paths = make_run(tmp_path, {"epochs": 1})
    env = {**os.environ, "TUIEXP_RUN_DIR": str(paths.dir)}
    proc = subprocess.run([sys.executable, "-c", script],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert read_events(paths, "status")[-1]["status"] == "preempted"


def test_cancel_a_pending_job(project):
    config(project, FAKE)
    (rid,) = queue(project, "held")
    job = job_id(project, rid)
    wait_for(lambda: "pending" in show(project, rid)["message"], timeout=30, every=0.3)
    ok(project, "cancel", rid)
    wait_for(lambda: status(project, rid) == "cancelled", timeout=30, every=0.3)
    assert job_state(job) == "CANCELLED"
    assert not (run_dir(project, rid) / "job.json").exists()  # it never ran


def test_partitions_for_the_cluster_panel():
    (part,) = [p for p in slurm.partitions() if p.default]
    assert part.available == "up" and part.nodes >= 1 and part.cpus_total >= 1
