"""The trainer's params: defaults, kind errors, phases, forks — no torch needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuiexp.errors import ConfigError, ForkError
from tuiexp.trainer import paramdoc
from tuiexp.trainer.config import (
    DEFAULTS,
    EPOCH_METRICS,
    PARAMS,
    SCHEDULE_KEYS,
    ParamError,
    TrainConfig,
    check_fork,
    from_params,
    validate,
)

from .conftest import TINY


def test_config_does_not_import_torch() -> None:
    code = "import sys, tuiexp.trainer.config; print('torch' in sys.modules, 'textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_defaults_and_tiny_params_are_valid() -> None:
    validate({})
    validate(TINY)
    cfg = from_params({})
    assert cfg.epochs == DEFAULTS["epochs"] and cfg.augment.flip is True
    assert cfg.early_stop.metric == "val_acc" and not cfg.early_stop.lower_is_better
    assert len(cfg.phases) == 1 and (cfg.phases[0].start, cfg.phases[0].end) == (0, 10)


def test_schedule_keys_are_params() -> None:
    assert SCHEDULE_KEYS <= DEFAULTS.keys()


@pytest.mark.parametrize(
    ("params", "key", "reason"),
    [
        ({"drpout": 0.1}, "drpout", "unknown key — did you mean `dropout`?"),
        ({"zzz": 1}, "zzz", "unknown key"),
        ({"lr": "abc"}, "lr", "must be a number, got 'abc'"),
        ({"lr": -0.1}, "lr", "must be > 0, got -0.1"),
        ({"epochs": 2.5}, "epochs", "must be an integer, got 2.5"),
        ({"nesterov": 1}, "nesterov", "must be true or false, got 1"),
        ({"dropout": 1.0}, "dropout", "must be < 1, got 1.0"),
        ({"optimizer": "adagrad"}, "optimizer", "must be one of sgd, adam, adamw, rmsprop"),
        ({"scheduler": "linear"}, "scheduler", "must be one of cosine, constant, step, multistep, "
                                               "exponential, cosine_restarts, onecycle, cyclic, plateau"),
        ({"dataset": "imagenet"}, "dataset", "must be one of shapes, cifar10, cifar100, mnist, "
                                             "fashion_mnist, svhn, imagefolder"),
        ({"augment": {"flp": True}}, "augment.flp", None),
        ({"augment": {"flip": "yes"}}, "augment.flip", "must be true or false, got 'yes'"),
        ({"scheduler": "step", "scheduler_args": {"gama": 0.5}}, "scheduler_args.gama", None),
        ({"schedule": [{"epochs": 2, "lr": 0}]}, "schedule[0].lr", "must be > 0, got 0"),
        ({"schedule": [{"epochs": 2, "optimiser": "sgd"}]}, "schedule[0].optimiser", None),
        ({"schedule": [{"lr": 0.1}, {"epochs": 2}]}, "schedule[0].epochs", None),
        ({"epochs": 5, "schedule": [{"epochs": 2}, {"epochs": 2}]}, "schedule", None),
        ({"val_split": 1.5}, "val_split", None),
        ({"val_split": "train"}, "val_split", None),
        ({"model": "resnt"}, "model", None),
        ({"model": "resnet", "model_args": {"width": [8]}}, "model_args.width", None),
        ({"model_args": {"widths": [8, 16], "depths": [1]}}, "model_args.depths", None),
        ({"normalize": {"mean": [0.5], "sd": [0.2]}}, "normalize.sd", None),
        ({"early_stop": {"metric": "val_f1"}}, "early_stop.metric", None),
        ({"device": "gpu"}, "device", None),
        ({"schedule_start": 10}, "schedule_start", None),
        # non-finite numbers, ranges everywhere, imagefolder without a path
        ({"lr": float("nan")}, "lr", "must be a finite number, got nan"),
        ({"grad_clip": float("inf")}, "grad_clip", "must be a finite number, got inf"),
        ({"warmup_epochs": float("-inf")}, "warmup_epochs", "must be a finite number, got -inf"),
        ({"val_split": float("nan")}, "val_split", "must be a finite number, got nan"),
        ({"schedule": [{"epochs": 10, "lr": float("nan")}]}, "schedule[0].lr", "must be a finite number, got nan"),
        ({"scheduler_args": {"eta_min": float("nan")}}, "scheduler_args.eta_min", "must be a finite number, got nan"),
        ({"normalize": {"mean": [float("nan")], "std": [1.0]}}, "normalize.mean", "must be a finite number, got nan"),
        ({"model_args": {"block_dropout": float("nan")}}, "model_args.block_dropout", "must be a finite number, got nan"),
        ({"augment": {"rotation": 200}}, "augment.rotation", "must be ≤ 180, got 200"),
        ({"augment": {"erasing": float("nan")}}, "augment.erasing", "must be a finite number, got nan"),
        ({"seed": 2**64}, "seed", f"must be below 2**63, got {2**64}"),
        ({"seed": -1}, "seed", "must be ≥ 0, got -1"),
        ({"mix_prob": 1.5}, "mix_prob", "must be ≤ 1, got 1.5"),
        ({"ema": 1}, "ema", "must be < 1, got 1"),
        ({"num_workers": -1}, "num_workers", "must be ≥ 0, got -1"),
        ({"scheduler": "step", "scheduler_args": {"step_size": 0}}, "scheduler_args.step_size", "must be > 0, got 0"),
        ({"amp": "fp8"}, "amp", 'must be "auto", "bf16", "fp16", true or false, got \'fp8\''),
        ({"data_on_device": 1}, "data_on_device", 'must be "auto", true or false, got 1'),
        ({"normalize": "none"}, "normalize", 'must be "auto" or a table {mean=[..], std=[..]}, got \'none\''),
        ({"dataset": "imagefolder"}, "dataset", 'is "imagefolder", which needs data_root: the folder '
                                               "that holds train/<class>/… (and optionally val/ or test/)"),
        ({"dataset": "imagefolder", "data_root": ""}, "dataset", None),
        ({"data_root": 3}, "data_root", "must be a path, got 3"),
        ({"early_stop": {"mode": "up"}}, "early_stop.mode", "must be one of auto, max, min"),
        ({"early_stop": {"patience": -1}}, "early_stop.patience", "must be ≥ 0, got -1"),
        ({"early_stop": {"metric": "val/acc"}}, "early_stop.metric", None),
    ],
)
def test_bad_params_name_the_key(params: dict, key: str, reason: str | None) -> None:
    with pytest.raises(ParamError) as info:
        validate(params)
    assert info.value.key == key
    if reason is not None:
        assert info.value.reason == reason
    assert isinstance(info.value, ConfigError) and key in str(info.value)


def test_any_epoch_metric_may_stop_early_and_imagefolder_takes_a_path() -> None:
    for name in EPOCH_METRICS:
        validate({"early_stop": {"metric": name, "patience": 2}})
    validate({"dataset": "imagefolder", "data_root": "/data/pets"})
    assert from_params({}).data_root == "data"  # unset: the named datasets' usual place
    assert from_params({"dataset": "imagefolder", "data_root": "pets"}).data_root == "pets"


@pytest.mark.parametrize(
    ("early_stop", "metric", "mode", "want"),
    [
        ({}, None, None, ("val_acc", "max")),  # nothing said: val_acc, higher is better
        ({}, "val_loss", None, ("val_loss", "min")),  # the run's metric, its usual direction
        ({}, "val_top5", "min", ("val_top5", "min")),  # the run's metric and mode
        ({}, "epoch_time", None, ("epoch_time", "min")),
        ({"metric": "train_acc"}, "val_loss", "min", ("train_acc", "max")),  # explicit wins
        ({"metric": "val_loss", "mode": "max"}, None, None, ("val_loss", "max")),
        ({"mode": "min"}, "val_acc", "max", ("val_acc", "min")),
    ],
)
def test_best_follows_the_runs_primary_metric(early_stop: dict, metric: str | None,
                                              mode: str | None, want: tuple[str, str]) -> None:
    cfg = from_params({"early_stop": early_stop}, metric=metric, mode=mode)
    assert (cfg.early_stop.metric, cfg.early_stop.mode) == want
    assert cfg.early_stop.lower_is_better == (want[1] == "min")


def test_a_primary_metric_the_trainer_does_not_log_is_a_sentence() -> None:
    with pytest.raises(ConfigError, match="the experiment's metric `val/acc` is not one the built-in "
                                          "trainer logs .*set early_stop.metric"):
        from_params({}, metric="val/acc")
    assert from_params({"early_stop": {"metric": "val_acc"}}, metric="val/acc").early_stop.metric == "val_acc"


def test_docs_tables_match_the_declaration() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "TRAINER.md"
    text = doc.read_text(encoding="utf-8")
    assert paramdoc.render(text) == text, (
        "docs/TRAINER.md's params tables are stale: run python -m tuiexp.trainer.paramdoc docs/TRAINER.md")
    for name in DEFAULTS:
        assert f"| `{name}` |" in text


def test_every_param_is_typed_and_documented() -> None:
    fields = TrainConfig.__dataclass_fields__
    assert set(DEFAULTS) == set(fields) - {"phases"}
    for name, spec in PARAMS.items():
        assert spec.doc and spec.section in ("data", "model", "optimisation", "regularisation", "run"), name
        spec.check(name, spec.default)  # every default passes its own declaration


def test_did_you_mean_in_nested_tables() -> None:
    with pytest.raises(ParamError, match="did you mean `flip`"):
        validate({"augment": {"flp": True}})
    with pytest.raises(ParamError, match="did you mean `gamma`"):
        validate({"scheduler": "step", "scheduler_args": {"gama": 0.5}})


def test_model_names_are_checked_loosely() -> None:
    for name in ("vgg", "resnet", "mbconv", "tv:resnet18", "tv:efficientnet_b0", "my.models:tiny_net"):
        validate({"model": name})


def test_phases_fill_the_epochs_from_schedule_start() -> None:
    cfg = from_params({
        "epochs": 10, "lr": 0.1, "optimizer": "sgd",
        "schedule": [{"epochs": 3, "optimizer": "adam", "lr": 1e-3, "scheduler": "constant"},
                     {"scheduler": "onecycle"}],
    })
    a, b = cfg.phases
    assert (a.start, a.end, a.optimizer, a.lr) == (0, 3, "adam", 1e-3)
    assert (b.start, b.end, b.optimizer, b.lr, b.scheduler) == (3, 10, "sgd", 0.1, "onecycle")
    assert cfg.phase_at(3) is a and cfg.phase_at(4) is b
    forked = from_params({"epochs": 10, "schedule_start": 4, "lr": 0.01})
    assert (forked.phases[0].start, forked.phases[0].end) == (4, 10)
    assert forked.phase_at(2) is forked.phases[0]


def test_check_fork_allows_training_changes() -> None:
    parent = {**TINY}
    check_fork(parent, {**parent, "batch_size": 16, "dropout": 0.3, "lr": 0.001, "mixup": 0.2})
    check_fork(parent, {**parent, "model_args": {**TINY["model_args"], "block_dropout": 0.1}})
    check_fork({"dataset": "cifar10"}, {"dataset": "svhn"})  # same classes and channels


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"model": "vgg"}, "cannot change model"),
        ({"model_args": {"widths": [16, 32], "depths": [1, 1]}}, "cannot change model_args"),
        ({"dataset": "cifar100"}, "100 classes"),
        ({"dataset": "mnist"}, "1 channels"),
        ({"image_size": 32}, "image_size"),
        ({"dataset": "imagefolder"}, "imagefolder"),
    ],
)
def test_check_fork_refuses_incompatible_changes(change: dict, words: str) -> None:
    with pytest.raises(ForkError, match=words):
        check_fork(TINY, {**TINY, **change})
