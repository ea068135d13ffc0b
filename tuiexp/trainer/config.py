"""The built-in trainer's params, declared once: `TrainConfig`'s fields carry each param's
default, kind, range and meaning; defaults, validation (kind errors, did-you-mean), the
docs table (docs/TRAINER.md, `python -m tuiexp.trainer.paramdoc`) and the typed config
all come from them.

This module must not import torch: the core reaches it (through the `tuiexp.schemas`
entry point, see tuiexp/config/params.py) to check experiments.toml and fork requests in
processes that never train.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError, ForkError, ParamError

__all__ = [
    "DEFAULTS", "EPOCH_METRICS", "SCHEDULE_KEYS", "SCHEMA", "Augment", "EarlyStop", "ParamError",
    "Phase", "Spec", "TrainConfig", "check_fork", "from_params", "unused_params", "validate",
]

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
#: where the named datasets live when data_root is not set (imagefolder needs it set)
DEFAULT_DATA_ROOT = "data"
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
#: every metric an `epoch` event of the trainer holds (peak_mem_mb on CUDA only): any of
#: them may be a run's primary metric or early_stop.metric
EPOCH_METRICS = (
    "val_acc", "val_loss", "val_top5", "train_loss", "train_acc", "lr",
    "epoch_time", "images_per_s", "batch_size", "peak_mem_mb",
)
EARLY_STOP_METRICS = EPOCH_METRICS  # the old name
#: of EPOCH_METRICS, those where lower is better (the mode when none is given)
LOWER_IS_BETTER = frozenset({"val_loss", "train_loss", "epoch_time", "peak_mem_mb"})
#: the largest integer an event, the index (SQLite INTEGER) and torch seeds all hold
MAX_INT = 2**63 - 1


# -- the declaration ---------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One param: its default (in TOML terms), kind, accepted range and meaning."""

    default: Any
    section: str
    doc: str
    kind: str  # bool, int, float, str, table, list
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    #: literal values accepted besides the kind ("auto", "test")
    also: tuple[str, ...] = ()
    #: how errors and the docs say what is accepted, where the kind alone does not
    accepts: str = ""

    def check(self, key: str, value: Any) -> None:
        """Raise ParamError unless `value` suits this param."""
        if value is None and self.default is None:  # unset (run.json writes the default)
            return
        if isinstance(value, str) and value in self.also:
            return
        if not _has_kind(value, self.kind):
            raise ParamError(key, f"must be {self.accepts or self._kind_words()}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ParamError(key, f"must be one of {', '.join(self.choices)}")
        if self.kind in ("int", "float"):
            _range(key, value, self.lo, self.hi, self.lo_open, self.hi_open)

    def _kind_words(self) -> str:
        words = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
                 "table": "a table", "list": "a list"}[self.kind]
        if not self.also:
            return words
        return ", ".join(f'"{a}"' for a in self.also) + (" or " if self.kind != "bool" else ", ") + words


def param(default: Any, section: str, doc: str, *, kind: str | None = None, **kw: Any) -> Any:
    """A dataclass field that declares a param (no dataclass default: configs are built
    by from_params, which fills in every default)."""
    spec = Spec(default, section, doc, kind or _kind_of(default), **kw)
    return field(metadata={"param": spec})


def _kind_of(default: Any) -> str:
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str),
                        ("table", dict), ("list", list)):
        if isinstance(default, types):
            return kind
    raise TypeError(f"no param kind for default {default!r}")  # pragma: no cover


def specs(cls: type) -> dict[str, Spec]:
    """The declared params of a config dataclass, in declaration order."""
    return {f.name: f.metadata["param"] for f in fields(cls) if "param" in f.metadata}


def _has_kind(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return _is_number(value)
    return isinstance(value, {"str": str, "table": dict, "list": list}[kind])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range(key: str, value: float, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ParamError unless `value` is finite and within the bounds."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(key, f"must be a finite number, got {value}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise ParamError(key, f"must be below 2**63, got {value}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ParamError(key, f"must be {'>' if lo_open else '≥'} {lo}, got {value}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ParamError(key, f"must be {'<' if hi_open else '≤'} {hi}, got {value}")


# -- the typed config: one field per param -------------------------------------------

DATA, MODEL, OPTIM, REG, RUN = "data", "model", "optimisation", "regularisation", "run"


@dataclass(frozen=True)
class Augment:
    """Per-image augmentation (the `augment` table)."""

    crop_padding: int = param(4, REG, "random crop of the zero-padded image (pixels; 0 = off)", lo=0)
    flip: bool = param(True, REG, "random horizontal flip")
    color_jitter: float = param(0.0, REG, "brightness/contrast/saturation by ±strength", lo=0, hi=1)
    rotation: float = param(0.0, REG, "rotation by ±degrees", lo=0, hi=180)
    erasing: float = param(0.0, REG, "random erasing with this probability", lo=0, hi=1)


@dataclass(frozen=True)
class EarlyStop:
    """The metric that picks the `best` checkpoint and stops a run early (resolved)."""

    metric: str = param("auto", REG, "auto: the experiment's primary metric (`metric`, val_acc when "
                        "unset); or any metric of the `epoch` events",
                        choices=("auto", *EPOCH_METRICS))
    patience: int = param(0, REG, "epochs without a better metric before stopping; 0 = off", lo=0)
    mode: str = param("auto", REG, "max or min; auto: the experiment's `mode` for its metric, "
                      "else min for losses, times and memory", choices=("auto", "max", "min"))

    @property
    def lower_is_better(self) -> bool:
        return self.mode == "min"


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


def _table_text(cls: type) -> str:
    return "{" + ", ".join(f"{k}={_toml(s.default)}" for k, s in specs(cls).items()) + "}"


def _toml(v: Any) -> str:
    """A default as one writes it in experiments.toml."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_toml(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


@dataclass(frozen=True)
class TrainConfig:
    """Every param of the built-in trainer, typed; built by `from_params`."""

    # data
    dataset: str = param("shapes", DATA, "the images (files under `data_root`, below)", choices=DATASETS)
    data_root: str = param(None, DATA, f"where the dataset's files are (see below); unset: "
                           f"`{DEFAULT_DATA_ROOT}`, except imagefolder, which needs it",
                           kind="str", accepts="a path")
    download: bool = param(False, DATA, "let torchvision fetch a missing dataset (needs internet)")
    val_split: float | str = param(0.05, DATA, "fraction of train held out (seeded by `data_seed`), "
                                   "or `\"test\"` to validate on the test split",
                                   lo=0, hi=1, lo_open=True, hi_open=True, also=("test",),
                                   accepts='a fraction or "test"')
    image_size: int = param(32, DATA, "shapes: image side; imagefolder: resize to this", lo=8)
    num_train: int = param(5000, DATA, "shapes only: train images generated (`val_split` of "
                           "them held out for validation)", lo=10)
    num_test: int = param(1000, DATA, "shapes only: test images generated, the validation set "
                          "when `val_split = \"test\"` (else unused: the trainer warns)", lo=10)
    data_seed: int = param(0, DATA, "shapes generation and the validation split", lo=0)
    normalize: str | dict[str, list[float]] = param(
        "auto", DATA, "per-channel mean/std from the train set, or `{mean=[..], std=[..]}`",
        kind="table", also=("auto",), accepts='"auto" or a table {mean=[..], std=[..]}')
    num_workers: int = param(2, DATA, "imagefolder DataLoader workers", lo=0)
    data_on_device: str | bool = param("auto", DATA, "hold tensor datasets on the GPU "
                                       "(auto: when under 4 GiB)", kind="bool", also=("auto",))
    # model
    model: str = param("resnet", MODEL, "`vgg`, `resnet`, `mbconv`, `tv:<torchvision name>` "
                       "(e.g. `tv:resnet18`, random init), or `package.module:factory`")
    model_args: dict[str, Any] = param({}, MODEL, "per family, below; for `tv:` passed to the "
                                       "builder; for a factory passed as keywords")
    param_budget: float | None = param(
        None, MODEL, "the parameter count the model was sized to: set for each run by an "
        "experiment's `param_budget = [..]` (docs/SEARCH.md), which also sets `model_args`; "
        "the trainer warns when its model misses it by more than 5 %",
        kind="float", lo=0, lo_open=True, accepts="a positive number")
    dropout: float = param(0.0, MODEL, "dropout before the linear head (inserted before the last "
                           "`Linear` of a `tv:` model)", lo=0, hi=1, hi_open=True)
    # optimisation
    epochs: int = param(10, OPTIM, "total epochs, counted from the start of the lineage "
                        "(a fork continues the count)", lo=1)
    batch_size: int = param(128, OPTIM, "images per step", lo=1)
    optimizer: str = param("sgd", OPTIM, "norms and biases get no weight decay", choices=OPTIMIZERS)
    lr: float = param(0.1, OPTIM, "peak learning rate", lo=0, lo_open=True)
    momentum: float = param(0.9, OPTIM, "sgd (and rmsprop) momentum", lo=0, hi=1, hi_open=True)
    nesterov: bool = param(True, OPTIM, "Nesterov momentum (sgd)")
    weight_decay: float = param(5e-4, OPTIM, "L2 penalty (decoupled for adamw)", lo=0)
    scheduler: str = param("cosine", OPTIM, "see below", choices=SCHEDULERS)
    scheduler_args: dict[str, Any] = param({}, OPTIM, "the scheduler's settings, below")
    warmup_epochs: float = param(0.0, OPTIM, "linear warm-up (per step) to `lr`; the scheduler "
                                 "runs on the remaining epochs", lo=0)
    schedule: list[dict[str, Any]] = param([], OPTIM, "phases, below")
    schedule_start: int = param(0, OPTIM, "the epoch the schedule counts from (a fork that changes "
                                "schedule keys sets it to its fork epoch)", lo=0)
    grad_clip: float = param(0.0, OPTIM, "max gradient norm; 0 = off", lo=0)
    label_smoothing: float = param(0.0, OPTIM, "cross-entropy label smoothing", lo=0, hi=1,
                                   hi_open=True)
    # regularisation
    mixup: float = param(0.0, REG, "Beta(α, α) for MixUp; with cutmix too, one of them per "
                         "batch, 50/50; 0 = off", lo=0)
    cutmix: float = param(0.0, REG, "Beta(α, α) for CutMix; 0 = off", lo=0)
    mix_prob: float = param(1.0, REG, "share of batches mixed", lo=0, hi=1)
    mix_off_epoch: int = param(0, REG, "last epoch with mixing (0 = all epochs)", lo=0)
    augment: Augment = param(
        {k: s.default for k, s in specs(Augment).items()}, REG,
        "per-image augmentation, on the device, in batches: the keys below")
    ema: float = param(0.0, REG, "EMA decay of the weights (e.g. 0.999); when on, validation "
                       "uses the EMA model", lo=0, hi=1, hi_open=True)
    early_stop: EarlyStop = param(
        {k: s.default for k, s in specs(EarlyStop).items()}, REG,
        "which metric picks the `best` checkpoint and when to stop early: the keys below")
    # run
    seed: int = param(0, RUN, "model init, shuffling, augmentation", lo=0)
    device: str = param("auto", RUN, "auto: cuda when available, else cpu", accepts='"auto", "cpu", "cuda", "cuda:N" or "mps"')
    compile: bool = param(False, RUN, "`torch.compile` the model")
    amp: str | bool = param("auto", RUN, "auto: bf16 autocast on CUDA, off on CPU; `fp16` "
                            "adds a grad scaler; `true` = bf16", kind="bool",
                            also=("auto", "bf16", "fp16"))
    channels_last: str | bool = param("auto", RUN, "auto: on with CUDA", kind="bool", also=("auto",))
    log_every: int = param(50, RUN, "steps between `step` events (and compact progress lines "
                           "on stdout)", lo=1)
    checkpoint_every: int = param(1, RUN, "keep every N-th epoch's checkpoint, plus always the "
                                  "last and the best", lo=1)
    auto_batch_size: bool = param(False, RUN, "on CUDA out-of-memory, retry the epoch at half "
                                  "the batch")
    threads: int = param(0, RUN, "`torch.set_num_threads` (0 = torch's default)", lo=0)
    # derived from the above: not a param
    phases: tuple[Phase, ...] = ()

    def phase_at(self, epoch: int) -> Phase:
        """The phase that trains `epoch` (1-based); epochs before the schedule use the first."""
        for phase in self.phases:
            if epoch <= phase.end:
                return phase
        return self.phases[-1]


PARAMS: dict[str, Spec] = specs(TrainConfig)
#: params that are tables of declared keys (checked key by key, documented row by row)
TABLES: dict[str, type] = {"augment": Augment, "early_stop": EarlyStop}
_TABLE_SPECS: dict[type, dict[str, Spec]] = {cls: specs(cls) for cls in TABLES.values()}
AUGMENT_DEFAULTS: dict[str, Any] = PARAMS["augment"].default
EARLY_STOP_DEFAULTS: dict[str, Any] = PARAMS["early_stop"].default
#: every param with its default, as experiments.toml and run.json hold them
DEFAULTS: dict[str, Any] = {k: s.default for k, s in PARAMS.items()}

#: params whose change in a fork restarts the schedule at the fork epoch
SCHEDULE_KEYS = frozenset({
    "schedule", "optimizer", "lr", "scheduler", "scheduler_args", "warmup_epochs",
    "epochs", "momentum", "nesterov", "weight_decay",
})
#: what one phase of `schedule` may set (checked as the top-level param of that name)
PHASE_KEYS = (
    "epochs", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
    "scheduler", "scheduler_args", "warmup_epochs",
)


# -- building the config --------------------------------------------------------------


def from_params(params: Mapping[str, Any], metric: str | None = None,
                mode: str | None = None) -> TrainConfig:
    """Validate `params`, fill in defaults and resolve early_stop against the run's
    primary `metric`/`mode` (RunSpec; None: val_acc/max); raises ParamError / ConfigError."""
    validate(params)
    p = copy.deepcopy({**DEFAULTS, **params})
    p["data_root"] = p["data_root"] or DEFAULT_DATA_ROOT
    p["augment"] = Augment(**{**AUGMENT_DEFAULTS, **p["augment"]})
    p["early_stop"] = resolve_early_stop({**EARLY_STOP_DEFAULTS, **p["early_stop"]}, metric, mode)
    p["phases"] = _phases(p)
    for key, spec in PARAMS.items():
        if spec.kind == "float" and _is_number(p[key]):
            p[key] = float(p[key])
    return TrainConfig(**p)


def resolve_early_stop(es: Mapping[str, Any], metric: str | None, mode: str | None) -> EarlyStop:
    """The metric and mode that pick the best checkpoint: early_stop's own when given,
    else the run's primary metric, else val_acc; a metric this trainer does not log is a
    ConfigError (the run could never have a best)."""
    name = es["metric"]
    if name == "auto":
        name = metric or "val_acc"
        if name not in EPOCH_METRICS:
            raise ConfigError(
                f"the experiment's metric `{name}` is not one the built-in trainer logs "
                f"({', '.join(EPOCH_METRICS)}); name one of them, or set early_stop.metric."
            )
    how = es["mode"]
    if how == "auto":
        follows_run = name == (metric or "val_acc") and mode in ("max", "min")
        how = mode if follows_run else ("min" if name in LOWER_IS_BETTER else "max")
    return EarlyStop(metric=name, patience=es["patience"], mode=how)


def unused_params(cfg: TrainConfig) -> list[str]:
    """A sentence for each param set away from its default that this config never reads
    (the trainer logs them as `warning` events, so a setting that does nothing is seen)."""
    out = []

    def changed(key: str) -> bool:
        return getattr(cfg, key) != DEFAULTS[key]

    if cfg.dataset == "shapes" and cfg.val_split != "test" and changed("num_test"):
        out.append(f"num_test = {cfg.num_test} is unused: validation holds out val_split = "
                   f"{cfg.val_split} of the {cfg.num_train} train images; set val_split = "
                   f"\"test\" to validate on {cfg.num_test} test images.")
    for key in ("num_train", "num_test"):
        if cfg.dataset != "shapes" and changed(key):
            out.append(f"{key} = {getattr(cfg, key)} is unused: it sizes the generated shapes "
                       f"dataset only, and this run reads {cfg.dataset}.")
    if cfg.dataset not in ("shapes", "imagefolder") and changed("image_size"):
        out.append(f"image_size = {cfg.image_size} is unused: {cfg.dataset} images keep their "
                   "own size (only shapes and imagefolder take image_size).")
    if cfg.dataset != "imagefolder" and changed("num_workers"):
        out.append(f"num_workers = {cfg.num_workers} is unused: {cfg.dataset} is held in memory "
                   "as tensors; only imagefolder decodes in DataLoader workers.")
    return out


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


# -- validation: the declared kinds and ranges, then what depends on other params ----------

_MODULE_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_TV_NAME = re.compile(r"^tv:[a-z_][a-z0-9_]*$")
_DEVICE = re.compile(r"^(auto|cpu|cuda|mps|cuda:\d+)$")


def validate(params: Mapping[str, Any]) -> None:
    """Raise ParamError for the first wrong param (unknown, mistyped or out of range)."""
    _known(params, PARAMS, "")
    p = {**DEFAULTS, **params}
    for key, value in params.items():  # defaults are valid (tests/trainer/test_config.py)
        PARAMS[key].check(key, value)
    for key, cls in TABLES.items():
        _check_table(p[key], cls, key + ".")
    for check in _CROSS_CHECKS:
        check(p)


def _known(table: Any, allowed: Any, prefix: str) -> None:
    if not isinstance(table, Mapping):
        raise ParamError(prefix.rstrip(".") or "params", f"must be a table, got {table!r}")
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), list(allowed), n=1)
            reason = "unknown key" + (f" — did you mean `{hint[0]}`?" if hint else "")
            raise ParamError(prefix + str(key), reason)


def _check_table(table: dict[str, Any], cls: type, prefix: str) -> None:
    declared = _TABLE_SPECS[cls]
    _known(table, declared, prefix)
    for key, value in table.items():
        declared[key].check(prefix + key, value)


def _number(key: str, value: Any, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, hi_open: bool = False) -> None:
    if not _is_number(value):
        raise ParamError(key, f"must be a number, got {value!r}")
    _range(key, value, lo, hi, lo_open, hi_open)


def _integer(key: str, value: Any, lo: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParamError(key, f"must be an integer, got {value!r}")
    _range(key, value, lo)


def _check_data(p: dict[str, Any]) -> None:
    if p["dataset"] == "imagefolder" and not p["data_root"]:
        # named after `dataset`: its line in experiments.toml is where the fix goes
        raise ParamError("dataset", 'is "imagefolder", which needs data_root: the folder that '
                                    "holds train/<class>/… (and optionally val/ or test/)")
    norm = p["normalize"]
    if isinstance(norm, dict):
        _known(norm, ("mean", "std"), "normalize.")
        for k in ("mean", "std"):
            vals = norm.get(k)
            if not isinstance(vals, list) or not vals or not all(_is_number(x) for x in vals):
                raise ParamError(f"normalize.{k}", f"must be a list of numbers, got {vals!r}")
            for x in vals:
                _range(f"normalize.{k}", x)
        if any(x <= 0 for x in norm["std"]):
            raise ParamError("normalize.std", "must be positive")


def _check_model(p: dict[str, Any]) -> None:
    model = p["model"]
    if model in FAMILIES:
        _known(p["model_args"], MODEL_ARGS[model], "model_args.")
        _check_model_args(p["model_args"])
    elif not (_TV_NAME.match(model) or _MODULE_FACTORY.match(model)):
        hint = difflib.get_close_matches(model, FAMILIES, n=1)
        raise ParamError(
            "model",
            f"unknown model {model!r} — use one of {', '.join(FAMILIES)}, "
            "\"tv:<torchvision name>\" or \"package.module:factory\""
            + (f" (did you mean `{hint[0]}`?)" if hint else ""),
        )


def _check_model_args(args: dict[str, Any]) -> None:
    for key in ("widths", "depths"):
        if key in args:
            v = args[key]
            if not isinstance(v, list) or not v or not all(
                    isinstance(x, int) and not isinstance(x, bool) and 0 < x <= MAX_INT for x in v):
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
            _integer(f"model_args.{key}", args[key], 1 if key != "head_width" else 0)
    if "se" in args and not isinstance(args["se"], bool):
        raise ParamError("model_args.se", f"must be true or false, got {args['se']!r}")


def _check_scheduler_args(t: Mapping[str, Any], prefix: str, top: dict[str, Any]) -> None:
    """Check the scheduler_args of the top level or of one schedule phase (its keys
    depend on the scheduler in force there)."""
    if "scheduler_args" not in t:
        return
    args = t["scheduler_args"]
    sched = t.get("scheduler", top["scheduler"])
    _known(args, SCHEDULER_ARGS[sched], prefix + "scheduler_args.")
    for k, v in args.items():
        key = f"{prefix}scheduler_args.{k}"
        if k == "milestones":
            if not isinstance(v, list) or not all(_is_number(x) and 0 < x <= MAX_INT for x in v):
                raise ParamError(key, f"must be a list of epochs, got {v!r}")
        elif k in ("T_0", "step_size", "patience"):
            _number(key, v, 0, lo_open=k != "patience")
        else:
            _number(key, v, 0)


def _check_schedule(p: dict[str, Any]) -> None:
    _check_scheduler_args(p, "", p)
    if p["schedule_start"] >= p["epochs"]:
        raise ParamError("schedule_start", f"must be below epochs ({p['epochs']}), got {p['schedule_start']}")
    span = p["epochs"] - p["schedule_start"]
    total = 0
    for i, phase in enumerate(p["schedule"]):
        key = f"schedule[{i}]"
        _known(phase, PHASE_KEYS, key + ".")
        for k, value in phase.items():
            PARAMS[k].check(f"{key}.{k}", value)
        last = i == len(p["schedule"]) - 1
        if "epochs" in phase:
            total += phase["epochs"]
        elif not last:
            raise ParamError(key + ".epochs", "is needed on every phase but the last")
        else:
            total = span if total < span else total + 1
        _check_scheduler_args(phase, key + ".", p)
        if "scheduler" in phase and "scheduler_args" not in phase:
            # the phase inherits top-level scheduler_args: they must suit its scheduler
            _known(p["scheduler_args"], SCHEDULER_ARGS[phase["scheduler"]], key + ".scheduler_args.")
    if p["schedule"] and total != span:
        raise ParamError(
            "schedule",
            f"phases cover {total} epochs but {span} remain "
            f"(epochs {p['epochs']} - schedule_start {p['schedule_start']})",
        )


def _check_run(p: dict[str, Any]) -> None:
    if not _DEVICE.match(p["device"]):
        raise ParamError("device", f"must be {PARAMS['device'].accepts}, got {p['device']!r}")


_CROSS_CHECKS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _check_data, _check_model, _check_schedule, _check_run,
)


# -- forks -------------------------------------------------------------------------


def check_fork(parent_params: Mapping[str, Any], child_params: Mapping[str, Any]) -> None:
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


# -- the schema the core finds through the `tuiexp.schemas` entry point -----------------


class BuiltinSchema:
    """The built-in trainer as a tuiexp.config.params.ParamSchema."""

    schedule_keys = SCHEDULE_KEYS
    metrics = EPOCH_METRICS

    def defaults(self) -> dict[str, Any]:
        """Every param with its default (a copy)."""
        return copy.deepcopy(DEFAULTS)

    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise ParamError for the first wrong param."""
        validate(params)

    def check_fork(self, parent: Mapping[str, Any], child: Mapping[str, Any]) -> None:
        """Raise ForkError when `child` cannot start from `parent`'s weights."""
        check_fork(parent, child)

    def size_to_budget(self, params: Mapping[str, Any], budget: float) -> dict[str, Any]:
        """`params` with `model_args` sized so the model's parameter count lands within
        ±5 % of `budget` (tuiexp/trainer/sizing.py, no torch), and `param_budget` set;
        ParamError (key `param_budget`) when no width of the family reaches it."""
        return size_to_budget(params, budget)


def size_to_budget(params: Mapping[str, Any], budget: float) -> dict[str, Any]:
    """See BuiltinSchema.size_to_budget."""
    from . import sizing

    p = {**DEFAULTS, **params}
    model = p["model"]
    if model not in FAMILIES:
        raise ParamError("param_budget", f"cannot be met: model {model!r} has no sizing rule "
                         f"(only the built-in families {', '.join(FAMILIES)} have one)")
    try:
        classes, channels = sizing.data_shape(p, DATASET_SHAPES, DEFAULT_DATA_ROOT)
        args, _ = sizing.size(model, p["model_args"], budget, classes, channels)
    except sizing.SizingError as e:
        raise ParamError("param_budget", str(e)) from None
    return {**params, "model_args": args, "param_budget": budget}


SCHEMA = BuiltinSchema()
