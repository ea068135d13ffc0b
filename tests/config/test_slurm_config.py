"""The Slurm settings and the pure parts of the Slurm executor (no Slurm needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuiexp.config import loader, model
from tuiexp.errors import ConfigError
from tuiexp.queue import slurm
from tuiexp.store import runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec

CONFIG = """\
[queue]
executor = "slurm"

[queue.slurm]
partition = "gpu"
time = "1:00:00"
cpus_per_task = 4
sbatch = ["--exclusive"]

[experiments.a]
command = "python x.py"
lr = 0.1

[experiments.b]
extends = "a"
slurm = { time = "4:00:00", gres = "gpu:1" }
"""


def load(tmp_path: Path, text: str) -> model.Config:
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return loader.load(path)


def test_queue_and_experiment_settings_merge(tmp_path):
    cfg = load(tmp_path, CONFIG)
    assert cfg.queue.executor == "slurm"
    b = cfg.experiment("b")
    assert b.slurm == {"time": "4:00:00", "gres": "gpu:1"} and "slurm" not in b.params
    merged = {**cfg.queue.slurm, **b.slurm}
    assert slurm.sbatch_options(merged) == [
        "--partition=gpu", "--gres=gpu:1", "--cpus-per-task=4", "--time=4:00:00", "--exclusive"]


@pytest.mark.parametrize("text, where, what", [
    ('[queue]\nexecutor = "k8s"\n', "line 2", '`executor` must be "local" or "slurm"'),
    ('[queue.slurm]\npartiton = "gpu"\n', "line 2", "did you mean `partition`?"),
    ('[experiments.a]\ncommand = "x"\nslurm = { cpus_per_task = "4" }\n', "line 3",
     "`cpus_per_task` must be an integer"),
    ('[experiments.a]\ncommand = "x"\nslurm = { sbatch = "--exclusive" }\n', "line 3",
     "`sbatch` must be a list of strings"),
])
def test_bad_settings_are_one_sentence_with_the_line(tmp_path, text, where, what):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    msg = str(e.value)
    assert msg.startswith(f"experiments.toml, {where}:") and what in msg and "\n" not in msg


def test_refusal_keeps_slurms_own_reason():
    err = ("sbatch: error: invalid partition specified: nope\n"
           "sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    assert slurm.refusal(err) == "invalid partition specified: nope"
    assert slurm.refusal("sbatch: error: Batch job submission failed: Invalid generic "
                         "resource (gres) specification\n") == \
        "Invalid generic resource (gres) specification"


def test_job_script_execs_the_wrapper_with_the_runs_argv(tmp_path):
    paths = runstore.create(LogsDir.at(tmp_path), RunSpec(id="r", experiment="e", params={}))
    text = slurm.job_script(paths, ["/usr/bin/python3", "my script.py", "--lr", "0.1"], 2,
                            "tok", "/work dir")
    assert text.startswith("#!/bin/sh\n")
    assert "cd '/work dir' || exit 86" in text
    last = text.strip().splitlines()[-1]
    assert last.startswith("exec ") and "tuiexp.queue.slurm_job" in last
    assert last.endswith("tok 2 -- /usr/bin/python3 'my script.py' --lr 0.1")


def test_verdicts_of_ended_jobs(tmp_path):
    paths = runstore.create(LogsDir.at(tmp_path), RunSpec(id="r", experiment="e", params={}))
    failed = slurm.JobState("FAILED", node="n1")
    status, msg = slurm.verdict_message(paths, 1, failed, "7", cancelled=False)
    assert status == "failed" and "could not see its run directory" in msg and "n1" in msg
    (paths.dir / slurm.JOB_FILE).write_text(json.dumps({"attempt": 1, "returncode": None}))
    for state, want in (("TIMEOUT", "crashed"), ("NODE_FAIL", "crashed"), ("FAILED", "crashed"),
                        ("OUT_OF_MEMORY", "oom"), ("PREEMPTED", "preempted")):
        assert slurm.verdict_message(paths, 1, slurm.JobState(state), "7", False)[0] == want
    assert slurm.verdict_message(paths, 1, slurm.JobState("CANCELLED"), "7", True)[0] == "cancelled"
    (paths.dir / slurm.JOB_FILE).write_text(json.dumps({"attempt": 1, "returncode": 3}))
    assert slurm.verdict_message(paths, 1, slurm.JobState("FAILED"), "7", False) is None


def test_job_states_parse_and_describe():
    states = slurm._parse("12|PENDING|Resources|\n13|RUNNING|None|node7\n14|CANCELLED by 0|None|n\n",
                          ("state", "reason", "node"))
    assert states["12"].describe("12") == "slurm job 12 pending (Resources)"
    assert states["13"].describe("13") == "slurm job 13 running on node7"
    assert states["14"].state == "CANCELLED" and states["14"].done
