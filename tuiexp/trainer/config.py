"""The built-in trainer's params: defaults, validation with kind errors, the typed config.

This module must not import torch: the core imports it to check experiments.toml
(and fork requests) in processes that never train.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigError, ForkError

DATASETS = ("shapes", "cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "imagefolder")
#: classes and channels per dataset (None where only the disk knows)
DATASET_SHAPES: dict[str, tuple[int | None, int | None]] = {
    "shapes": (10, 3),
    "cifar10": (10, 3),
    "cifar100": (100, 3),
    "mnist": (10, 1),
    "fashion_mnist": (10, 1),
    "svhn": (10, 3),
    "imagefolder": (None, 3),
}
FAMILIES = ("vgg", "resnet", "mbconv")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = (
    "cosine", "constant", "step", "multistep", "exponential",
    "cosine_restarts", "onecycle", "cyclic", "plateau",
)
#: scheduler_args each scheduler understands (see optim.py for their defaults)
SCHEDULER_ARGS: dict[str, tuple[str, ...]] = {
    "cosine": ("eta_min",),
    "constant": (),
    "step": ("step_size", "gamma"),
    "multistep": ("milestones", "gamma"),
    "exponential": ("gamma",),
    "cosine_restarts": ("T_0", "T_mult", "eta_min"),
    "onecycle": ("max_lr", "pct_start", "div_factor", "final_div_factor"),
    "cyclic": ("base_lr", "max_lr", "step_size_up", "step_size_down"),
    "plateau": ("factor", "patience", "threshold", "min_lr"),
}
#: model_args each built-in family understands (see models.py)
MODEL_ARGS: dict[str, tuple[str, ...]] = {
    "vgg": ("widths", "blocks_per_stage"),
    "resnet": ("stem_kernel", "widths", "depths", "block_dropout"),
    "mbconv": ("width_mult", "depth_mult", "base_width", "expand", "se", "head_width"),
}
#: model_args that hold no weights: a fork may change them
WEIGHTLESS_MODEL_ARGS = frozenset({"block_dropout"})
EARLY_STOP_METRICS = ("val_acc", "val_loss", "val_top5", "train_loss", "train_acc")

AUGMENT_DEFAULTS: dict[str, Any] = {
    "crop_padding": 4, "flip": True, "color_jitter": 0.0, "rotation": 0.0, "erasing": 0.0,
}
EARLY_STOP_DEFAULTS: dict[str, Any] = {"metric": "val_acc", "patience": 0}

DEFAULTS: dict[str, Any] = {
    # data
    "dataset": "shapes",
    "data_root": "data",
    "download": False,
    "val_split": 0.05,
    "image_size": 32,
    "num_train": 5000,
    "num_test": 1000,
    "data_seed": 0,
    "normalize": "auto",
    "num_workers": 2,
    "data_on_device": "auto",
    # model
    "model": "resnet",
    "model_args": {},
    "dropout": 0.0,
    # optimisation
    "epochs": 10,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "scheduler": "cosine",
    "scheduler_args": {},
    "warmup_epochs": 0,
    "schedule": [],
    "schedule_start": 0,
    "grad_clip": 0.0,
    "label_smoothing": 0.0,
    # regularisation
    "mixup": 0.0,
    "cutmix": 0.0,
    "mix_prob": 1.0,
    "mix_off_epoch": 0,
    "augment": AUGMENT_DEFAULTS,
    "ema": 0.0,
    "early_stop": EARLY_STOP_DEFAULTS,
    # run
    "seed": 0,
    "device": "auto",
    "compile": False,
    "amp": "auto",
    "channels_last": "auto",
    "log_every": 50,
    "checkpoint_every": 1,
    "auto_batch_size": False,
    "threads": 0,
}

#: params whose change in a fork restarts the schedule at the fork epoch
SCHEDULE_KEYS = frozenset({
    "schedule", "optimizer", "lr", "scheduler", "scheduler_args", "warmup_epochs",
    "epochs", "momentum", "nesterov", "weight_decay",
})
PHASE_KEYS = (
    "epochs", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
    "scheduler", "scheduler_args", "warmup_epochs",
)


class ParamError(ConfigError):
    """A param that is unknown, of the wrong type or out of range."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"param `{key}`: {reason}")
        self.key = key
        self.reason = reason


# -- the typed config ----------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs [start+1, end] trained with one optimizer and scheduler."""

    start: int  # epochs done before the phase
    end: int  # last epoch of the phase
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    scheduler: str
    scheduler_args: dict[str, Any]
    warmup_epochs: float

    @property
    def epochs(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Augment:
    crop_padding: int
    flip: bool
    color_jitter: float
    rotation: float
    erasing: float


@dataclass(frozen=True)
class EarlyStop:
    metric: str
    patience: int

    @property
    def lower_is_better(self) -> bool:
        return self.metric.endswith("loss")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str
    data_root: str
    download: bool
    val_split: float | str
    image_size: int
    num_train: int
    num_test: int
    data_seed: int
    normalize: str | dict[str, list[float]]
    num_workers: int
    data_on_device: str | bool
    model: str
    model_args: dict[str, Any]
    dropout: float
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    scheduler: str
    scheduler_args: dict[str, Any]
    warmup_epochs: float
    schedule: list[dict[str, Any]]
    schedule_start: int
    grad_clip: float
    label_smoothing: float
    mixup: float
    cutmix: float
    mix_prob: float
    mix_off_epoch: int
    augment: Augment
    ema: float
    early_stop: EarlyStop
    seed: int
    device: str
    compile: bool
    amp: str | bool
    channels_last: str | bool
    log_every: int
    checkpoint_every: int
    auto_batch_size: bool
    threads: int
    phases: tuple[Phase, ...]

    def phase_at(self, epoch: int) -> Phase:
        """The phase that trains `epoch` (1-based); epochs before the schedule use the first."""
        for phase in self.phases:
            if epoch <= phase.end:
                return phase
        return self.phases[-1]


def from_params(params: dict[str, Any]) -> TrainConfig:
    """Validate `params` and fill in defaults; raises ParamError."""
    validate(params)
    p = {**DEFAULTS, **params}
    p["augment"] = Augment(**{**AUGMENT_DEFAULTS, **p["augment"]})
    p["early_stop"] = EarlyStop(**{**EARLY_STOP_DEFAULTS, **p["early_stop"]})
    p["phases"] = _phases(p)
    for key in ("lr", "momentum", "weight_decay", "dropout", "grad_clip", "label_smoothing",
                "mixup", "cutmix", "mix_prob", "ema", "warmup_epochs"):
        p[key] = float(p[key])
    return TrainConfig(**p)


def _phases(p: dict[str, Any]) -> tuple[Phase, ...]:
    tables = p["schedule"] or [{}]
    start = p["schedule_start"]
    out = []
    for i, table in enumerate(tables):
        t = {k: p[k] for k in PHASE_KEYS}
        t.update(table)
        last = i == len(tables) - 1
        span = p["epochs"] - start if last and "epochs" not in table else int(t["epochs"])
        t.pop("epochs")
        t["lr"], t["momentum"] = float(t["lr"]), float(t["momentum"])
        t["weight_decay"], t["warmup_epochs"] = float(t["weight_decay"]), float(t["warmup_epochs"])
        out.append(Phase(start=start, end=start + span, **t))
        start += span
    return tuple(out)


# -- validation ------------------------------------------------------------------

_MODULE_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_TV_NAME = re.compile(r"^tv:[a-z_][a-z0-9_]*$")


def validate(params: dict[str, Any]) -> None:
    """Raise ParamError for the first wrong param (unknown, mistyped or out of range)."""
    _known(params, DEFAULTS, "")
    for key, value in params.items():
        _check_type(key, value, DEFAULTS[key])
    p = {**DEFAULTS, **params}
    _check_data(p)
    _check_model(p)
    _check_optim(p, "", p)
    _check_schedule(p)
    _check_regularisation(p)
    _check_run(p)


def _known(table: dict[str, Any], allowed: Any, prefix: str) -> None:
    if not isinstance(table, dict):
        raise ParamError(prefix.rstrip(".") or "params", f"must be a table, got {table!r}")
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), list(allowed), n=1)
            reason = "unknown key" + (f" — did you mean `{hint[0]}`?" if hint else "")
            raise ParamError(prefix + str(key), reason)


def _check_type(key: str, value: Any, default: Any) -> None:
    """Check `value` has the kind of `default` (an int passes for a float)."""
    if key in _LOOSE:  # params that take a string or another kind: checked by hand
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, kind = _is_number(value), "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, dict):
        ok, kind = isinstance(value, dict), "a table"
    elif isinstance(default, list):
        ok, kind = isinstance(value, list), "a list"
    else:  # pragma: no cover - every default is one of the above
        ok, kind = True, ""
    if not ok:
        raise ParamError(key, f"must be {kind}, got {value!r}")


_LOOSE = {"val_split", "normalize", "data_on_device", "amp", "channels_last", "warmup_epochs"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(key: str, value: Any, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, hi_open: bool = False) -> None:
    if not _is_number(value):
        raise ParamError(key, f"must be a number, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ParamError(key, f"must be {'>' if lo_open else '≥'} {lo}, got {value}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ParamError(key, f"must be {'<' if hi_open else '≤'} {hi}, got {value}")


def _integer(key: str, value: Any, lo: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParamError(key, f"must be an integer, got {value!r}")
    if value < lo:
        raise ParamError(key, f"must be ≥ {lo}, got {value}")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParamError(key, f"must be one of {', '.join(choices)}")


def _auto_or_bool(key: str, value: Any) -> None:
    if value != "auto" and not isinstance(value, bool):
        raise ParamError(key, f"must be \"auto\", true or false, got {value!r}")


def _check_data(p: dict[str, Any]) -> None:
    _choice("dataset", p["dataset"], DATASETS)
    v = p["val_split"]
    if v != "test":
        if not _is_number(v):
            raise ParamError("val_split", f"must be a fraction or \"test\", got {v!r}")
        _number("val_split", v, 0, 1, lo_open=True, hi_open=True)
    _integer("image_size", p["image_size"], 8)
    _integer("num_train", p["num_train"], 10)
    _integer("num_test", p["num_test"], 10)
    _integer("num_workers", p["num_workers"], 0)
    _auto_or_bool("data_on_device", p["data_on_device"])
    norm = p["normalize"]
    if norm != "auto":
        if not isinstance(norm, dict):
            raise ParamError("normalize", f"must be \"auto\" or a table {{mean=[..], std=[..]}}, got {norm!r}")
        _known(norm, ("mean", "std"), "normalize.")
        for k in ("mean", "std"):
            vals = norm.get(k)
            if not isinstance(vals, list) or not vals or not all(_is_number(x) for x in vals):
                raise ParamError(f"normalize.{k}", f"must be a list of numbers, got {vals!r}")
        if any(x <= 0 for x in norm["std"]):
            raise ParamError("normalize.std", "must be positive")


def _check_model(p: dict[str, Any]) -> None:
    model = p["model"]
    if model in FAMILIES:
        _known(p["model_args"], MODEL_ARGS[model], "model_args.")
        _check_model_args(model, p["model_args"])
    elif not (_TV_NAME.match(model) or _MODULE_FACTORY.match(model)):
        hint = difflib.get_close_matches(model, FAMILIES, n=1)
        raise ParamError(
            "model",
            f"unknown model {model!r} — use one of {', '.join(FAMILIES)}, "
            "\"tv:<torchvision name>\" or \"package.module:factory\""
            + (f" (did you mean `{hint[0]}`?)" if hint else ""),
        )
    _number("dropout", p["dropout"], 0, 1, hi_open=True)


def _check_model_args(family: str, args: dict[str, Any]) -> None:
    for key in ("widths", "depths"):
        if key in args:
            v = args[key]
            if not isinstance(v, list) or not v or not all(isinstance(x, int) and x > 0 for x in v):
                raise ParamError(f"model_args.{key}", f"must be a list of positive integers, got {v!r}")
    if "widths" in args and "depths" in args and len(args["widths"]) != len(args["depths"]):
        raise ParamError("model_args.depths", "must have as many entries as model_args.widths")
    if "stem_kernel" in args and args["stem_kernel"] not in (3, 5, 7):
        raise ParamError("model_args.stem_kernel", "must be 3, 5 or 7")
    if "block_dropout" in args:
        _number("model_args.block_dropout", args["block_dropout"], 0, 1, hi_open=True)
    if "blocks_per_stage" in args:
        _integer("model_args.blocks_per_stage", args["blocks_per_stage"], 1)
    for key in ("width_mult", "depth_mult"):
        if key in args:
            _number(f"model_args.{key}", args[key], 0, lo_open=True)
    for key in ("base_width", "expand", "head_width"):
        if key in args:
            _integer(f"model_args.{key}", args[key], 1)
    if "se" in args and not isinstance(args["se"], bool):
        raise ParamError("model_args.se", f"must be true or false, got {args['se']!r}")


def _check_optim(t: dict[str, Any], prefix: str, top: dict[str, Any]) -> None:
    """Check the optimizer keys of the top level or of one schedule phase."""
    if "optimizer" in t:
        _choice(prefix + "optimizer", t["optimizer"], OPTIMIZERS)
    if "lr" in t:
        _number(prefix + "lr", t["lr"], 0, lo_open=True)
    if "momentum" in t:
        _number(prefix + "momentum", t["momentum"], 0, 1, hi_open=True)
    if "nesterov" in t and not isinstance(t["nesterov"], bool):
        raise ParamError(prefix + "nesterov", f"must be true or false, got {t['nesterov']!r}")
    if "weight_decay" in t:
        _number(prefix + "weight_decay", t["weight_decay"], 0)
    if "warmup_epochs" in t:
        _number(prefix + "warmup_epochs", t["warmup_epochs"], 0)
    if "scheduler" in t:
        _choice(prefix + "scheduler", t["scheduler"], SCHEDULERS)
    if "scheduler_args" in t:
        args = t["scheduler_args"]
        if not isinstance(args, dict):
            raise ParamError(prefix + "scheduler_args", f"must be a table, got {args!r}")
        sched = t.get("scheduler", top["scheduler"])
        _known(args, SCHEDULER_ARGS[sched], prefix + "scheduler_args.")
        for k, v in args.items():
            if k == "milestones":
                if not isinstance(v, list) or not all(_is_number(x) and x > 0 for x in v):
                    raise ParamError(f"{prefix}scheduler_args.milestones", f"must be a list of epochs, got {v!r}")
            else:
                _number(f"{prefix}scheduler_args.{k}", v, 0)


def _check_schedule(p: dict[str, Any]) -> None:
    _integer("epochs", p["epochs"], 1)
    _integer("batch_size", p["batch_size"], 1)
    _integer("schedule_start", p["schedule_start"], 0)
    if p["schedule_start"] >= p["epochs"]:
        raise ParamError("schedule_start", f"must be below epochs ({p['epochs']}), got {p['schedule_start']}")
    span = p["epochs"] - p["schedule_start"]
    total = 0
    for i, phase in enumerate(p["schedule"]):
        key = f"schedule[{i}]"
        _known(phase, PHASE_KEYS, key + ".")
        last = i == len(p["schedule"]) - 1
        if "epochs" in phase:
            _integer(key + ".epochs", phase["epochs"], 1)
            total += phase["epochs"]
        elif not last:
            raise ParamError(key + ".epochs", "is needed on every phase but the last")
        else:
            total = span if total < span else total + 1
        _check_optim(phase, key + ".", p)
        if "scheduler" in phase and "scheduler_args" not in phase:
            # the phase inherits top-level scheduler_args: they must suit its scheduler
            _known(p["scheduler_args"], SCHEDULER_ARGS[phase["scheduler"]], key + ".scheduler_args.")
    if p["schedule"] and total != span:
        raise ParamError(
            "schedule",
            f"phases cover {total} epochs but {span} remain "
            f"(epochs {p['epochs']} - schedule_start {p['schedule_start']})",
        )
    _number("grad_clip", p["grad_clip"], 0)
    _number("label_smoothing", p["label_smoothing"], 0, 1, hi_open=True)


def _check_regularisation(p: dict[str, Any]) -> None:
    _number("mixup", p["mixup"], 0)
    _number("cutmix", p["cutmix"], 0)
    _number("mix_prob", p["mix_prob"], 0, 1)
    _integer("mix_off_epoch", p["mix_off_epoch"], 0)
    _number("ema", p["ema"], 0, 1, hi_open=True)
    aug = p["augment"]
    _known(aug, AUGMENT_DEFAULTS, "augment.")
    for key, value in aug.items():
        _check_type(f"augment.{key}", value, AUGMENT_DEFAULTS[key])
    _integer("augment.crop_padding", aug.get("crop_padding", 0), 0)
    _number("augment.color_jitter", aug.get("color_jitter", 0), 0, 1)
    _number("augment.rotation", aug.get("rotation", 0), 0, 180)
    _number("augment.erasing", aug.get("erasing", 0), 0, 1)
    es = p["early_stop"]
    _known(es, EARLY_STOP_DEFAULTS, "early_stop.")
    if "metric" in es:
        _choice("early_stop.metric", es["metric"], EARLY_STOP_METRICS)
    _integer("early_stop.patience", es.get("patience", 0), 0)


def _check_run(p: dict[str, Any]) -> None:
    _integer("seed", p["seed"], 0)
    dev = p["device"]
    if not (dev in ("auto", "cpu", "cuda", "mps") or re.match(r"^cuda:\d+$", dev)):
        raise ParamError("device", f"must be \"auto\", \"cpu\", \"cuda\", \"cuda:N\" or \"mps\", got {dev!r}")
    if p["amp"] not in ("auto", "bf16", "fp16") and not isinstance(p["amp"], bool):
        raise ParamError("amp", f"must be \"auto\", \"bf16\", \"fp16\", true or false, got {p['amp']!r}")
    _auto_or_bool("channels_last", p["channels_last"])
    _integer("log_every", p["log_every"], 1)
    _integer("checkpoint_every", p["checkpoint_every"], 1)
    _integer("threads", p["threads"], 0)


# -- forks -------------------------------------------------------------------------


def check_fork(parent_params: dict[str, Any], child_params: dict[str, Any]) -> None:
    """Refuse a fork whose weights could not load: another model or another kind of data."""
    parent, child = {**DEFAULTS, **parent_params}, {**DEFAULTS, **child_params}
    if parent["model"] != child["model"]:
        raise ForkError(
            f"a fork keeps the parent's weights, so it cannot change model "
            f"({parent['model']} → {child['model']}); start a new run instead."
        )
    p_args = {k: v for k, v in parent["model_args"].items() if k not in WEIGHTLESS_MODEL_ARGS}
    c_args = {k: v for k, v in child["model_args"].items() if k not in WEIGHTLESS_MODEL_ARGS}
    if p_args != c_args:
        raise ForkError(
            f"a fork keeps the parent's weights, so it cannot change model_args "
            f"({p_args} → {c_args}); start a new run instead."
        )
    pd, cd = parent["dataset"], child["dataset"]
    if "imagefolder" in (pd, cd) and (pd, parent["data_root"]) != (cd, child["data_root"]):
        raise ForkError(
            "a fork cannot change an imagefolder dataset or its data_root: "
            "the number of classes would not be known to match."
        )
    (p_classes, p_ch), (c_classes, c_ch) = DATASET_SHAPES.get(pd, (None, None)), DATASET_SHAPES.get(cd, (None, None))
    if (p_classes, p_ch) != (c_classes, c_ch):
        raise ForkError(
            f"a fork cannot move from {pd} ({p_classes} classes, {p_ch} channels) to "
            f"{cd} ({c_classes} classes, {c_ch} channels): the weights would not fit."
        )
    if parent["image_size"] != child["image_size"] and cd in ("shapes", "imagefolder"):
        raise ForkError(
            f"a fork cannot change image_size ({parent['image_size']} → {child['image_size']}): "
            "the parent learned on another image size."
        )
