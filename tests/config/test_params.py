"""The param-schema registry: the core finds a trainer's schema through entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tuiexp.config import loader, params
from tuiexp.config.model import Experiment
from tuiexp.config.params import GROUP, ParamSchema, SchemaNotFound, schema_for
from tuiexp.errors import ConfigError, ParamError
from tuiexp.store.spec import RunSpec


def test_the_builtin_schema_is_an_installed_entry_point() -> None:
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert found.get("builtin") == "tuiexp.trainer.config:SCHEMA", (
        "the tuiexp.schemas entry point is missing: the install is stale, run `pip install -e .`"
    )
    schema = params.builtin_schema()
    assert isinstance(schema, ParamSchema)
    assert schema.defaults()["epochs"] == 10 and "lr" in schema.schedule_keys
    assert "val_acc" in schema.metrics
    with pytest.raises(ParamError) as info:
        schema.validate({"lr": float("nan")})
    assert (info.value.key, info.value.reason) == ("lr", "must be a finite number, got nan")


def test_schema_for_a_builtin_run_only() -> None:
    builtin = params.builtin_schema()
    assert schema_for(Experiment(name="e", params={})) is builtin
    assert schema_for(RunSpec(id="r", experiment="e", params={})) is builtin
    assert schema_for({"command": None, "params": {}}) is builtin
    assert schema_for(Experiment(name="e", params={}, command=("python", "train.py"))) is None
    assert schema_for({"command": ["python", "train.py"]}) is None


def test_defaults_are_a_fresh_copy() -> None:
    schema = params.builtin_schema()
    schema.defaults()["augment"]["flip"] = False
    assert schema.defaults()["augment"]["flip"] is True


def test_an_unregistered_schema_is_a_sentence() -> None:
    with pytest.raises(SchemaNotFound, match="no param schema `nope` is registered"):
        params.load("nope")


def test_a_third_party_schema_registers_through_its_own_metadata(tmp_path: Path) -> None:
    """A real plugin: a module and a dist-info directory on sys.path, nothing imported by name."""
    (tmp_path / "myplugin.py").write_text(textwrap.dedent("""
        class Schema:
            schedule_keys = frozenset({"lr"})
            metrics = ("f1",)
            def defaults(self): return {"lr": 0.1}
            def validate(self, params): pass
            def check_fork(self, parent, child): pass
        SCHEMA = Schema()
    """))
    info = tmp_path / "myplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nmine = myplugin:SCHEMA\n")
    code = ("import sys; from tuiexp.config import params; s = params.load('mine'); "
            "print(s.defaults(), s.metrics, 'myplugin' in sys.modules, 'tuiexp.trainer' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "{'lr': 0.1} ('f1',) True False"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[experiments.pets]\nepochs = 2\ndataset = "imagefolder"\n',
         'experiments.toml, line 3: `dataset` is "imagefolder", which needs data_root'),
        ("[experiments.a]\nlr = nan\n", "experiments.toml, line 2: `lr` is not a finite number (nan or inf)"),
        ("[experiments.a]\nsweep = {lr = [0.1, inf]}\n", "`sweep.lr[1]` is not a finite number"),
        ('[experiments.a]\nearly_stop = {metric = "val/acc"}\n', "line 2: `early_stop.metric` must be one of auto, val_acc"),
    ],
)
def test_the_config_loader_checks_builtin_params_through_the_registry(tmp_path: Path, body: str,
                                                                       words: str) -> None:
    path = tmp_path / "experiments.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        cfg = loader.load(path)
        for name in cfg.experiments:
            cfg.expand(name)
    assert words in str(info.value)
