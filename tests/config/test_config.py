from pathlib import Path

import pytest

from tests.conftest import tuiexp, write_config
from tuiexp.config import loader, model, values
from tuiexp.errors import ConfigError
from tuiexp.store.metrics import default_mode

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


def load(tmp_path: Path, body: str) -> model.Config:
    return loader.load(write_config(tmp_path, body))


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
    # the built-in trainer's params are its schema's (a command's: whatever its table names)
    msg = error(tmp_path, "[experiments.a]\nlr = 0.1\nsweep.lrr = [1, 2]\n")
    assert "sweep over `lrr`, a key that does not exist — did you mean `lr`?" in msg
    assert "line 3" in msg


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
    over = values.parse_overrides(["lr=0.05", "optimizer=adam", "augment.flip=false",
                                   'schedule=[{epochs=2, optimizer="adam", lr=1e-3}]'])
    assert over == {"lr": 0.05, "optimizer": "adam", "augment": {"flip": False},
                    "schedule": [{"epochs": 2, "optimizer": "adam", "lr": 1e-3}]}
    runs = load(tmp_path, BASE).expand("sweep", {"batch_size": 64})
    assert len(runs) == 6 and {r["batch_size"] for r in runs} == {64}
    with pytest.raises(ConfigError, match="key=value"):
        values.parse_overrides(["lr"])


def test_model_args_are_replaced_not_merged_when_inherited(tmp_path):
    body = ("[defaults]\nmodel_args = { widths = [8, 8], depths = [1, 1] }\n"
            "[experiments.m]\nmodel = \"mbconv\"\nmodel_args = { width_mult = 0.5 }\n")
    assert load(tmp_path, body).expand("m")[0]["model_args"] == {"width_mult": 0.5}


def test_shipped_config_is_valid():
    cfg = loader.load(Path(__file__).resolve().parents[2] / "experiments.toml")
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
    runs = cfg.expand("a", values.parse_overrides(["augment.flip=false", "seed=7"]))
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


def test_metric_mode_and_run_keys_from_defaults(tmp_path):
    body = ("[defaults]\nmetric = \"val/acc\"\nscalars = \"stdout\"\nargs = \"flags\"\nepochs = 2\n"
            "[experiments.a]\ncommand = \"python x.py\"\nlr = 1\n"
            "[experiments.b]\nextends = \"a\"\nmetric = \"Loss/train\"\n"
            "[experiments.c]\ncommand = \"python x.py\"\nmetric = \"f1_macro\"\nmode = \"min\"\n"
            "[experiments.t]\nlr = 0.1\n")
    cfg = load(tmp_path, body)
    a, b, c, t = (cfg.experiments[k] for k in "abct")
    assert (a.metric, a.mode, a.args, a.scalars) == ("val/acc", "max", "flags", "stdout")
    assert (b.metric, b.mode) == ("Loss/train", "min") and (c.metric, c.mode) == ("f1_macro", "min")
    assert a.params == {"lr": 1}  # [defaults] params stay the trainer's
    assert (t.metric, t.mode, t.args, t.scalars) == ("val/acc", "max", None, None)
    assert "metric" not in t.params and cfg.expand("t")[0]["epochs"] == 2
    body = ("[defaults]\nmetric = \"val/loss\"\nmode = \"min\"\n"
            "[experiments.p]\ncommand = \"x\"\nmetric = \"err\"\nmode = \"max\"\n"
            "[experiments.q]\nextends = \"p\"\nmetric = \"f1\"\n"
            "[experiments.r]\nextends = \"p\"\nmode = \"min\"\n"
            "[experiments.s]\ncommand = \"x\"\nmetric = \"acc\"\n[experiments.u]\ncommand = \"x\"\n")
    got = {k: (e.metric, e.mode) for k, e in load(tmp_path, body).experiments.items()}
    # a mode goes with the metric of its own table or a nearer one, never a farther one
    assert got == {"p": ("err", "max"), "q": ("f1", "max"), "r": ("err", "min"), "s": ("acc", "max"),
                   "u": ("val/loss", "min")}
    assert [default_mode(m) for m in ("val_acc", "val/loss", "error_rate", "mse", "lossy",
                                              "train.nll", "closs", "top5_err")] == [
        "max", "min", "min", "min", "max", "min", "min", "min"]


def test_bad_run_keys_name_their_line(tmp_path):
    head = "[experiments.a]\ncommand = \"python x.py\"\nlr = 1\n"
    assert error(tmp_path, head + "metric = \"val acc\"\n").startswith("experiments.toml, line 4: `metric`")
    assert "line 4: `mode` must be \"max\" or \"min\"" in error(tmp_path, head + "mode = \"best\"\n")
    assert "line 4: `args` must be \"flags\"" in error(tmp_path, head + "args = \"all\"\n")
    msg = error(tmp_path, head + "scalars = \"(?P<key>\\\\w+\"\n")
    assert "line 4: `scalars` is not a valid regex" in msg
    assert "named groups" in error(tmp_path, head + "scalars = '(\\w+)=(\\S+)'\n")
    assert "line 2: `args` applies to a `command`" in error(tmp_path, "[experiments.t]\nargs = \"flags\"\n")
    assert "line 2: `mode`" in error(tmp_path, "[defaults]\nmode = 1\n[experiments.t]\n")
    assert error(tmp_path, "[defaults]\nlr = 1\ncommand = \"python x.py\"\n[experiments.t]\n") == (
        "experiments.toml, line 3: `command` belongs in each experiment's table; [defaults] holds "
        "the built-in trainer's params and metric, mode, args, scalars.")


def test_ui_table(tmp_path):
    cfg = load(tmp_path, "[ui]\ncolumns = [\"val/acc\", \"lr\"]\nsparklines = [\"loss\"]\nbell = true\n"
                         "[experiments.t]\n")
    assert cfg.ui == model.UiSettings(columns=("val/acc", "lr"), sparklines=("loss",), bell=True)
    assert load(tmp_path, "[experiments.t]\n").ui == model.UiSettings()
    msg = error(tmp_path, "[ui]\nbell = true\ncolumn = [\"a\"]\n")
    assert msg == "experiments.toml, line 3: unknown key `column` in [ui] — did you mean `columns`?"
    assert "line 2: `sparklines` must be a list" in error(tmp_path, "[ui]\nsparklines = \"loss\"\n")
    assert "line 2: `bell` must be true or false" in error(tmp_path, "[ui]\nbell = 1\n")


def test_template_names_a_missing_param_with_its_line(tmp_path):
    head = "[experiments.a]\nlr = 1\nmodel_args = { width = 8 }\n"
    ok = load(tmp_path, head + "command = \"python x.py {lr} {model_args.width} {{x}} {seed}\"\n"
                              "seeds = [1, 2]\n")
    assert ok.experiments["a"].command == ("python", "x.py", "{lr}", "{model_args.width}", "{{x}}", "{seed}")
    msg = error(tmp_path, head + "command = \"python x.py --lr {lrr}\"\n")
    assert msg == ("experiments.toml, line 4: `command` names `{lrr}`, a param this experiment does "
                   "not have — did you mean `lr`?")
    assert "line 4: `command` names `{model_args.depth}`" in error(
        tmp_path, head + "command = \"python x.py {model_args.depth}\"\n")
    assert "a lone `{`" in error(tmp_path, head + "command = \"python x.py {lr\"\n")


def test_names_seeds_non_finite_and_log_uniform_have_lines(tmp_path):
    for name in ("../../etc", "a/b", ".hidden"):
        msg = error(tmp_path, f"[experiments.ok]\n[experiments.\"{name}\"]\nlr = 1\n")
        assert msg.startswith("experiments.toml, line 2:") and "not a valid experiment name" in msg, msg
    assert "line 3: `seeds` lists 1 twice" in error(tmp_path, "[experiments.a]\nlr = 1\nseeds = [0, 1, 1]\n")
    msg = error(tmp_path, "[experiments.a]\ncommand = \"python x.py\"\nx = 1\nlr = nan\n")
    assert msg.startswith("experiments.toml, line 4: `lr` is not a finite number")
    msg = error(tmp_path, "[experiments.a]\ncommand = \"python x.py\"\nm = { w = [1, inf] }\n")
    assert "line 3: `m.w[1]` is not a finite number" in msg
    msg = error(tmp_path, "[experiments.a]\ncommand = \"python x.py\"\nlr = 1\nsweep.lr = [0.1, -inf]\n")
    assert "line 4: `sweep.lr[1]` is not a finite number" in msg
    msg = error(tmp_path, "[experiments.a]\ncommand = \"python x.py\"\nlr = 1\n"
                          "random = { trials = 2, lr = { log_uniform = [-1, 1] } }\n")
    assert msg.startswith("experiments.toml, line 4: `random.lr.log_uniform` needs positive bounds")
    msg = error(tmp_path, "[experiments.a]\nlr = 1\n[experiments.a.random]\nlr = { log_uniform = [0, 1] }\n")
    assert msg.startswith("experiments.toml, line 4:")


def test_a_bom_is_read(tmp_path):
    (tmp_path / "experiments.toml").write_bytes("\ufeff[experiments.a]\nlr = 0.1\n".encode())
    assert loader.load(tmp_path / "experiments.toml").expand("a")[0]["lr"] == 0.1


CHECKED = """\
[queue]
gpus = [99]

[experiments.fine]
command = "python ok.py --lr {lr}"
lr = 0.1

[experiments.no_script]
command = "python missing.py --lr {lr}"
lr = 0.1

[experiments.no_exe]
command = "no-such-tool-xyz --lr 1"

[experiments.no_cwd]
cwd = "nowhere"
command = "python ok.py"

[experiments.not_executable]
command = "./ok.py"

[experiments.module]
command = "python -m json.tool"
"""


def test_cli_check_reports_every_problem_with_file_and_line(workdir):
    (workdir / "ok.py").write_text("print('hi')\n")
    write_config(workdir, CHECKED)
    out = tuiexp(workdir, "check")
    assert out.returncode == 2, out.stderr
    problems = out.stderr.splitlines()
    assert problems[:4] == [
        "tuiexp: experiments.toml, line 9: `command` runs missing.py, which does not exist in "
        f"{workdir.resolve()}. (in [experiments.no_script])",
        "tuiexp: experiments.toml, line 13: `command` runs `no-such-tool-xyz`, which is not on PATH. "
        "(in [experiments.no_exe])",
        f"tuiexp: experiments.toml, line 16: `cwd` {workdir.resolve() / 'nowhere'} does not exist. "
        "(in [experiments.no_cwd])",
        "tuiexp: experiments.toml, line 20: `command` runs ./ok.py, which is not executable "
        "(chmod +x ./ok.py). (in [experiments.not_executable])",
    ]
    assert len(problems) == 5 and problems[4].startswith("tuiexp: experiments.toml, line 2: `gpus`")
    assert "99" in problems[4] and "Traceback" not in out.stderr
    write_config(workdir, "# nothing yet\n")
    out = tuiexp(workdir, "check")
    assert out.returncode == 2 and "experiments.toml: no experiments" in out.stderr
    write_config(workdir, CHECKED.replace("[99]", "\"none\"").split("[experiments.no_script]")[0])
    assert tuiexp(workdir, "check").returncode == 0
