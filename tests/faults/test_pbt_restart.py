"""Issue 19, case 5: a PBT population whose supervisor is SIGKILLed once every member
started, and started again after the members trained on alone.

The restarted supervisor finds several boundaries decidable at once. Each decision
must judge the lineage as it is at that moment (a slot replaced at epoch 2 is judged
at epoch 4 by its replacement, which must have got there), and the population ends
only when every one of its runs has ended. Checked from the run directories: a fork
`PREFIX-m{slot}-e{E}` is a decision at E, made when its run.json was created.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.faults.outside import (
    TERMINAL,
    alive,
    cli,
    events,
    ok,
    read_json,
    script,
    supervisor_pid,
    until,
)

# A member without torch: its checkpoints are JSON files under the names a fork links
# (ckpt/epoch-NNNN.pt, announced by `checkpoint` events); a fork starts from ckpt/init.pt.
MEMBER = """
import json, math, os, time
from tuiexp import track

run = track.init()
p = run.params
while not os.path.exists(p["gate"]):  # every member waits until the test lets it train
    time.sleep(0.05)
ckpt = os.path.join(run.dir, "ckpt")
own = sorted(int(n[6:-3]) for n in os.listdir(ckpt)
             if n.startswith("epoch-") and n.endswith(".pt") and n[6:-3].isdigit())
source = os.path.join(ckpt, f"epoch-{own[-1]:04d}.pt") if own else os.path.join(ckpt, "init.pt")
state = json.load(open(source)) if os.path.exists(source) else {"epoch": 0, "score": 0.0}
lr, epochs = float(p["lr"]), int(p["epochs"])
score = state["score"]
for epoch in range(state["epoch"] + 1, epochs + 1):
    score += 1.0 - abs(math.log10(lr / 0.1))
    track.log({"val/score": score}, epoch=epoch)
    path = os.path.join(ckpt, f"epoch-{epoch:04d}.pt")
    with open(path + ".part", "w") as f:
        json.dump({"epoch": epoch, "score": score}, f)
    os.replace(path + ".part", path)
    run.event("checkpoint", epoch=epoch, path=f"ckpt/epoch-{epoch:04d}.pt", tags=[])
    if track.should_prune() and epoch < epochs:  # waits up to 0.5 s for a verdict
        track.finish("pruned", f"replaced after epoch {epoch}")
        break
else:
    track.finish()
"""

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 4

[experiments.pop]
command = ["PYTHON", "MEMBER"]
metric = "val/score"
lr = 0.02
epochs = 6
gate = "GATE"
pbt = { population = 4, interval = 2, perturb = ["lr"], quantile = 0.25 }
"""

MEMBER_ID = re.compile(r"-m(\d+)(?:-e(\d+))?$")


def population(logs: Path) -> dict[str, dict]:
    """The population's runs: id -> {slot, boundary, created, dir}."""
    out = {}
    for d in (logs / "runs").iterdir():
        m = MEMBER_ID.search(d.name)
        spec = read_json(d / "run.json")
        if m and spec:
            out[d.name] = {"slot": int(m[1]), "boundary": int(m[2]) if m[2] else 0,
                           "created": spec["created"], "dir": d}
    return out


def reached(run_dir: Path, epoch: int) -> float | None:
    """When the run logged `epoch`, or ended without getting there; None if neither."""
    for ev in events(run_dir / "events.jsonl"):
        if ev.get("kind") == "epoch" and ev.get("epoch") == epoch:
            return float(ev["t"])
        if ev.get("kind") == "status" and ev.get("status") in TERMINAL:
            return float(ev["t"])
    return None


def ended_at(run_dir: Path) -> float | None:
    for ev in reversed(events(run_dir / "events.jsonl")):
        if ev.get("kind") == "status" and ev.get("status") in TERMINAL:
            return float(ev["t"])
    return None


@pytest.mark.slow
def test_case5_pbt_judges_each_boundary_on_the_lineage_of_that_moment(workdir):
    gate = setup(workdir)
    logs = workdir / "logs"
    try:
        ok(workdir, "run", "pop")
        members = until(lambda: (p := population(logs)) and len(p) == 4 and all(
            any(e.get("kind") == "start" for e in events(r["dir"] / "events.jsonl"))
            for r in p.values()) and p, "4 members started")
        pid = until(lambda: supervisor_pid(logs), "the supervisor's pid")
        os.kill(pid, signal.SIGKILL)  # before any boundary: nothing decided yet
        until(lambda: not alive(pid), "the supervisor gone")
        gate.touch()  # the members train on alone, to their last epoch
        until(lambda: all(ended_at(r["dir"]) for r in members.values()), "every member ended")
        ok(workdir, "daemon", "start")  # boundaries 2 and 4 are now decidable at once
        until(lambda: (read_json(logs / "studies" / "pop.json") or {}).get("done"),
              "the population done", timeout=120)
    finally:
        gate.touch()
    check_population(logs)


#: every step of a decision (tuiexp/search/pbt.py): making a run's directory, ranking a
#: boundary, a loser pruned, its replacement made, a kept member recorded and after it
FAULT_POINTS = ("pbt.create.directory", "pbt.decide", "pbt.replace.pruned",
                "pbt.replace.created", "pbt.record", "pbt.recorded")


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_case5_a_supervisor_killed_at_any_step_of_a_decision_makes_it_once(workdir, point,
                                                                           monkeypatch):
    """The supervisor dies (os._exit, as a SIGKILL) at one step of a decision; started
    again, it finishes that decision without making any of it twice."""
    gate = setup(workdir)
    gate.touch()  # the members train at once
    logs = workdir / "logs"
    monkeypatch.setenv("TUIEXP_FAULT", point)
    started = cli(workdir, "run", "pop")  # the supervisor it starts inherits the fault
    monkeypatch.delenv("TUIEXP_FAULT")
    # (it may die before `run` saw it hold its lock: "the supervisor did not start")
    assert started.returncode == 0 or "did not start" in started.stderr, started.stderr
    pid = until(lambda: (read_json(logs / "daemon.json") or {}).get("pid"), "the supervisor's pid")
    until(lambda: not alive(pid), f"the supervisor dead at {point}", timeout=120)
    assert not (read_json(logs / "studies" / "pop.json") or {}).get("done"), \
        f"the supervisor never passed {point}: it ended idle after the population"
    ok(workdir, "daemon", "start")
    until(lambda: (read_json(logs / "studies" / "pop.json") or {}).get("done"),
          "the population done", timeout=120)
    check_population(logs)


def setup(workdir: Path) -> Path:
    """experiments.toml with the population; the gate file its members wait for."""
    member = script(workdir, "member.py", MEMBER)
    gate = workdir / "train"
    write_config(workdir, CONFIG.replace("PYTHON", sys.executable).replace("MEMBER", str(member))
                 .replace("GATE", str(gate)))
    return gate


def judge(logs: Path) -> dict[str, list[str]]:
    """What went wrong with a finished population, from the run directories: decisions
    made before the run covering the boundary in some slot had logged it (or ended),
    runs that ended after the population was declared done, (slot, boundary) pairs
    decided twice, and runs started more than once."""
    ended = read_json(logs / "studies" / "pop.json")["ended"]
    runs = population(logs)
    forks = {rid: r for rid, r in runs.items() if r["boundary"]}
    late = []
    for fid, fork in sorted(forks.items(), key=lambda kv: kv[1]["created"]):
        e = fork["boundary"]
        for slot in range(4):
            lineage = [r for r in runs.values() if r["slot"] == slot and r["boundary"] < e
                       and r["created"] < fork["created"]]
            covering = max(lineage, key=lambda r: (r["boundary"], r["created"]))
            t = reached(covering["dir"], e)
            if t is None or t > fork["created"]:
                late.append(f"{fid} decided at epoch {e} before {covering['dir'].name} got there")
    still = [rid for rid, r in runs.items() if (ended_at(r["dir"]) or float("inf")) > ended]
    decisions = [json.loads(line) for line in
                 (logs / "studies" / "pop.pbt.jsonl").read_text().splitlines() if line.strip()]
    keys = [(d["slot"], d["epoch"]) for d in decisions] + [
        (r["slot"], r["boundary"]) for r in forks.values()]
    twice = [f"slot {k[0]} at epoch {k[1]}" for k in set(keys) if keys.count(k) > 1]
    started = [rid for rid, r in runs.items()
               if sum(e.get("kind") == "start" for e in events(r["dir"] / "events.jsonl")) > 1]
    return {"late": late, "done early": still, "judged twice": twice, "started twice": started,
            "forks": sorted(forks), "slots": sorted({r["slot"] for r in runs.values()})}


def check_population(logs: Path) -> None:
    """Every decision judged, in each slot, the run covering its boundary after that run
    logged it (or ended); the population ended after its last run; no (slot, boundary)
    decided twice; every run started once."""
    found = judge(logs)
    assert found["forks"], "no member was ever replaced"
    assert not found["late"], found["late"]
    assert not found["done early"], \
        f"the population was declared done while {found['done early']} ran on"
    assert found["slots"] == [0, 1, 2, 3]
    assert not found["judged twice"], f"a member was judged twice: {found['judged twice']}"
    assert not found["started twice"], f"started more than once: {found['started twice']}"
