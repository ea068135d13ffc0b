"""The trainer's params: defaults, kind errors, phases, forks — no torch needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tuiexp.core.errors import ConfigError, ForkError
from tuiexp.trainer.config import (
    DEFAULTS,
    SCHEDULE_KEYS,
    ParamError,
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
    ],
)
def test_bad_params_name_the_key(params: dict, key: str, reason: str | None) -> None:
    with pytest.raises(ParamError) as info:
        validate(params)
    assert info.value.key == key
    if reason is not None:
        assert info.value.reason == reason
    assert isinstance(info.value, ConfigError) and key in str(info.value)


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
