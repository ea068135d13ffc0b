from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config
from tuiexp.core import config
from tuiexp.core.errors import ConfigError

BASE = """
[defaults]
epochs = 3

[experiments.base]
lr = 0.1

[experiments.sweep]
extends = "base"
sweep.batch_size = [16, 32]
sweep.dropout = [0.0, 0.5]
seeds = [0, 1, 2]
"""


def load(tmp_path: Path, body: str) -> config.Config:
    return config.load(write_config(tmp_path, body))


def error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as e:
        cfg = load(tmp_path, body)
        for name in cfg.experiments:
            cfg.expand(name)
    return str(e.value)


def test_sweep_times_seeds_expands_in_order(tmp_path):
    cfg = load(tmp_path, BASE)
    runs = cfg.expand("sweep")
    assert len(runs) == cfg.experiments["sweep"].num_runs == 12
    assert [(r["batch_size"], r["dropout"], r["seed"]) for r in runs[:4]] == [
        (16, 0.0, 0), (16, 0.0, 1), (16, 0.0, 2), (16, 0.5, 0)]
    assert all(r["lr"] == 0.1 and r["epochs"] == 3 for r in runs)


def test_typo_names_file_line_key_and_suggestion(tmp_path):
    msg = error(tmp_path, BASE + "\n[experiments.typo]\nextends = \"base\"\ndrpout = 0.2\n")
    assert msg.startswith("experiments.toml, line 16:")
    assert "`drpout`" in msg and "did you mean `dropout`" in msg and "[experiments.typo]" in msg


def test_wrong_type_and_bad_value(tmp_path):
    assert "`lr` must be" in error(tmp_path, "[experiments.a]\nlr = \"fast\"\n")
    assert "`dropout`" in error(tmp_path, "[experiments.a]\ndropout = 1.5\n")
    assert "optimizer" in error(tmp_path, "[experiments.a]\noptimizer = \"adamm\"\n")


def test_extends_cycle_and_unknown_parent(tmp_path):
    msg = error(tmp_path, "[experiments.a]\nextends = \"b\"\n[experiments.b]\nextends = \"a\"\n")
    assert "cycle: a → b → a" in msg and "line 4" in msg
    msg = error(tmp_path, "[experiments.a]\nextends = \"bsae\"\n[experiments.base]\n")
    assert "did you mean `base`" in msg


def test_sweep_over_missing_key(tmp_path):
    msg = error(tmp_path, "[experiments.a]\ncommand = \"python x.py\"\nlr = 1\nsweep.lrr = [1, 2]\n")
    assert "sweep over `lrr`, a key that does not exist — did you mean `lr`?" in msg
    assert "line 4" in msg


def test_unknown_experiment_and_table(tmp_path):
    cfg = load(tmp_path, BASE)
    with pytest.raises(ConfigError, match="did you mean `sweep`"):
        cfg.experiment("swep")
    assert "did you mean `experiments`" in error(tmp_path, "[experiment.a]\nlr = 1\n")


def test_random_sweep_is_seeded(tmp_path):
    body = ("[experiments.r]\nrandom = { trials = 4, seed = 3, lr = { log_uniform = [1e-3, 1e-1] },"
            " batch_size = { choice = [16, 32] } }\n")
    a, b = load(tmp_path, body).expand("r"), load(tmp_path, body).expand("r")
    assert a == b and len(a) == 4
    assert all(1e-3 <= r["lr"] <= 1e-1 and r["batch_size"] in (16, 32) for r in a)


def test_set_values_are_toml_and_override_sweeps(tmp_path):
    over = config.parse_overrides(["lr=0.05", "optimizer=adam", "augment.flip=false",
                                   'schedule=[{epochs=2, optimizer="adam", lr=1e-3}]'])
    assert over == {"lr": 0.05, "optimizer": "adam", "augment": {"flip": False},
                    "schedule": [{"epochs": 2, "optimizer": "adam", "lr": 1e-3}]}
    runs = load(tmp_path, BASE).expand("sweep", {"batch_size": 64})
    assert len(runs) == 6 and {r["batch_size"] for r in runs} == {64}
    with pytest.raises(ConfigError, match="key=value"):
        config.parse_overrides(["lr"])


def test_model_args_are_replaced_not_merged_when_inherited(tmp_path):
    body = ("[defaults]\nmodel_args = { widths = [8, 8], depths = [1, 1] }\n"
            "[experiments.m]\nmodel = \"mbconv\"\nmodel_args = { width_mult = 0.5 }\n")
    assert load(tmp_path, body).expand("m")[0]["model_args"] == {"width_mult": 0.5}


def test_shipped_config_is_valid():
    cfg = config.load(Path(__file__).resolve().parents[2] / "experiments.toml")
    assert "smoke" in cfg.experiments
    assert sum(len(cfg.expand(n)) for n in cfg.experiments) > 40


def test_cli_check_and_bad_config_queue_nothing(workdir):
    write_config(workdir, BASE)
    out = tuiexp(workdir, "check")
    assert out.returncode == 0 and "sweep" in out.stdout and "12 runs" in out.stdout
    write_config(workdir, BASE + "\n[experiments.bad]\nextends = \"base\"\nlr = -1\n")
    out = tuiexp(workdir, "run", "bad")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "line 16" in out.stderr and "Traceback" not in out.stderr
    assert not (workdir / "logs" / "runs").exists() or not any((workdir / "logs" / "runs").iterdir())
    out = tuiexp(workdir, "run", "nope")
    assert out.returncode == 2 and "no experiment 'nope'" in out.stderr


def test_set_fixes_a_dotted_sweep_key_and_the_seed(tmp_path):
    body = ("[experiments.a]\ncommand = \"python x.py\"\naugment = { flip = true, pad = 4 }\n"
            "sweep.\"augment.flip\" = [true, false]\nsweep.\"augment.pad\" = [2, 4]\nseeds = [0, 1]\n")
    cfg = load(tmp_path, body)
    assert len(cfg.expand("a")) == 8
    runs = cfg.expand("a", config.parse_overrides(["augment.flip=false", "seed=7"]))
    assert [(r["augment"]["flip"], r["augment"]["pad"], r["seed"]) for r in runs] == [
        (False, 2, 7), (False, 4, 7)]


def test_unreadable_config_paths_are_one_sentence(workdir):
    out = tuiexp(workdir, "run", "x", "--config", str(workdir))
    assert out.returncode == 2 and "is a directory" in out.stderr and "Traceback" not in out.stderr
    (workdir / "bad.toml").write_bytes(b"\xff\xfe[experiments]")
    out = tuiexp(workdir, "check", str(workdir / "bad.toml"))
    assert out.returncode == 2 and "cannot be read" in out.stderr
    (workdir / "file").write_text("")
    out = tuiexp(workdir, "ls", "--logs", str(workdir / "file"))
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1
