"""SIGKILL at random points, of runs and of the supervisor (real processes throughout)."""

from __future__ import annotations

from tests.faults.harness import kill_runs, kill_supervisor

SEED = 20261201  # the kill points are drawn from this: a failure can be replayed


def test_runs_killed_at_20_random_points_crash_resume_and_end_bit_exact(workdir):
    # 2 kills of a run that saves torch checkpoints (each start imports torch: 2-3 s of
    # CPU), 18 of runs whose checkpoints are tuiexp's atomic JSON writes
    plan = [("victim_torch", 2), ("victim_json", 5), ("victim_json", 5), ("victim_json", 4),
            ("victim_json", 4)]
    stats = kill_runs(workdir, plan, seed=SEED)
    print(f"\n{stats}")
    assert stats.kills == 20
    assert stats.problems == []
    assert stats.corrupt_event_lines == 0 and stats.corrupt_checkpoints == 0
    assert stats.checkpoints > 0
    assert stats.survived == stats.runs == 5  # finished, and equal to an uninterrupted run
    assert stats.events_lost == 0 and stats.events_doubled == 0


def test_supervisor_killed_with_active_and_queued_runs_loses_and_doubles_nothing(workdir):
    stats = kill_supervisor(workdir, kills=3, seed=SEED)
    print(f"\n{stats}")
    assert stats.kills >= 2
    assert stats.finished == stats.runs == 4 and stats.started_twice == 0
    assert stats.events_lost == 0 and stats.events_doubled == 0
    assert stats.queue_order_kept
