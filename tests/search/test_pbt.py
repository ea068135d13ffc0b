"""Population-based training on forks: a real population of 4 for 4 epochs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tuiexp.config import loader
from tuiexp.errors import ConfigError
from tuiexp.search import study as studies
from tuiexp.store import runstore
from tuiexp.store.paths import LogsDir

from ..conftest import tuiexp, wait_for, write_config

SCRIPT = Path(__file__).with_name("pbt_script.py")


def config(where: Path, pbt: str = 'population = 4, interval = 2, perturb = ["lr"], quantile = 0.25') -> Path:
    return write_config(where, f"""
[queue]
gpus = "none"
cpu_jobs = 4

[experiments.pop]
command = ["{sys.executable}", "{SCRIPT}"]
metric = "val/score"
lr = 0.02
epochs = 4
sleep = 0.5
pbt = {{ {pbt} }}
""")


def test_a_population_replaces_its_worst_by_perturbed_forks(workdir: Path) -> None:
    config(workdir)
    out = tuiexp(workdir, "run", "pop", check=True).stdout
    assert out.startswith("population pop: 4 members, every 2 epochs the bottom 25%")
    logs = LogsDir.at(workdir / "logs")
    done = lambda: (runstore.read_json(studies.definition_path(logs, "pop")) or {}).get("done")  # noqa: E731
    wait_for(done, timeout=240, every=0.2)

    definition = studies.load_definition(logs, "pop")
    prefix = definition["prefix"]
    ids = sorted(runstore.run_ids(logs))
    members = [f"{prefix}-m{i}" for i in range(4)]
    forks = [r for r in ids if r not in members]
    assert set(members) <= set(ids) and forks, ids
    specs = {r: runstore.load_spec(logs.run(r)) for r in ids}
    lrs = {specs[m].params["lr"] for m in members}
    assert len(lrs) > 1  # the members start perturbed
    for fork in forks:
        spec = specs[fork]
        parent = specs[spec.parent]
        assert spec.parent in ids and spec.fork_epoch and spec.study == "pop"
        assert spec.params["lr"] in (pytest.approx(parent.params["lr"] * 0.8),
                                     pytest.approx(parent.params["lr"] * 1.2))
        assert (logs.run(fork).ckpt / "init.pt").exists()  # the lineage's weights, linked
        slot, boundary = fork[len(prefix) + 2:].split("-e")
        assert boundary == "2" and spec.fork_epoch == 2 and spec.trial == int(slot)
        # the member it replaced was asked to stop (it stops at its next epoch, if any is left)
        assert logs.run(f"{prefix}-m{slot}").prune.exists()
    decisions = [json.loads(line) for line in
                 (logs.root / "studies" / "pop.pbt.jsonl").read_text().splitlines()]
    keys = [(d["slot"], d["epoch"]) for d in decisions]
    assert len(keys) == len(set(keys))  # each member judged once per boundary
    shown = tuiexp(workdir, "study", "show", "pop", check=True).stdout
    assert "member 0:" in shown and "member 3:" in shown and "←" in shown


@pytest.mark.parametrize(("pbt", "said"), [
    ('population = 4, perturb = ["lrr"]', "`pbt.perturb` names `lrr`, a param this experiment does not have — did you mean `lr`?"),
    ('population = 1, perturb = ["lr"]', "`pbt.population` must be an integer of at least 2"),
    ('perturb = ["lr"], quantile = 0.75', "`pbt.quantile` must be a fraction in (0, 0.5]"),
    ('perturb = []', "`pbt.perturb` must be a non-empty list of param names"),
    ('perturb = ["lr"], intervall = 2', "unknown key `intervall` in `pbt` — did you mean `interval`?"),
])
def test_bad_pbt_tables_say_what_and_where(tmp_path: Path, pbt: str, said: str) -> None:
    with pytest.raises(ConfigError) as e:
        loader.load(config(tmp_path, pbt))
    assert str(e.value).startswith("experiments.toml, line 12: ") and said in str(e.value)
