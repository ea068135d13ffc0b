"""One epoch of training, one pass of evaluation, and the state a checkpoint holds."""

from __future__ import annotations

import copy
import math
import random
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import track
from .augment import mix, prepare
from .config import Phase, TrainConfig
from .data import Data
from .optim import Plateau, lr_at, set_lr


class Diverged(Exception):
    """The training loss stopped being a finite number."""


class Stopped(Exception):
    """The run was asked to stop (track.should_stop): a time limit or preemption comes."""


@dataclass
class Setup:
    """What the run fixed at start: where it computes and how."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    num_classes: int

    def autocast(self) -> AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


class EMA:
    """An exponential moving average of the weights; evaluation uses it when on."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_p: list[torch.Tensor] = list(self.model.parameters())
        p: list[torch.Tensor] = list(model.parameters())
        torch._foreach_lerp_(ema_p, p, 1 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)  # BN statistics: take the live ones


@dataclass
class State:
    """Everything that changes as training goes, and what a checkpoint restores."""

    model: nn.Module  # the module that owns the weights (not the compiled wrapper)
    forward: nn.Module  # what to call: the model, or torch.compile of it
    opt: torch.optim.Optimizer
    opt_phase: Phase  # the phase the optimizer was built or last set up for
    gen: torch.Generator  # all augmentation and shuffling randomness
    rng: random.Random  # mixup / cutmix draws
    batch_size: int
    ema: EMA | None = None
    scaler: torch.amp.GradScaler | None = None
    plateau: Plateau = field(default_factory=Plateau)
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken, counted across resumes and forks
    best: float = math.nan  # the early_stop metric's best value
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best, for early stopping


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // batch_size)


def train_one_epoch(s: State, data: Data, cfg: TrainConfig, setup: Setup, epoch: int) -> dict[str, float]:
    """Train `epoch` (1-based); returns its train metrics."""
    phase = cfg.phase_at(epoch)
    epoch_in_phase = max(0, epoch - 1 - phase.start)
    spe = steps_per_epoch(len(data.train), s.batch_size)
    mixing = mixing_in(cfg, epoch)
    dev = setup.device
    # running sums stay on the device: reading them is a host sync, done only at log steps
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    window = torch.zeros((), device=dev)
    window_n, seen = 0, 0
    first_bad = torch.full((), -1, device=dev, dtype=torch.long)
    s.forward.train()
    lr = 0.0
    t0 = time.perf_counter()
    for i, (xb, yb) in enumerate(data.train.batches(s.batch_size, s.gen)):
        lr = lr_at(phase, epoch_in_phase, i, spe, s.plateau.scale)
        set_lr(s.opt, lr)
        x = prepare(xb, data.mean, data.std, cfg.augment, s.gen, setup.channels_last)
        x, target = mix_batch(s, cfg, x, yb, setup.num_classes) if mixing else (x, yb)
        with setup.autocast():
            out = s.forward(x)
        loss = loss_of(out, target, cfg)
        optimizer_step(s, loss, cfg)
        s.step += 1
        d = loss.detach()
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(d), s.step, first_bad)
        loss_sum += d * len(yb)
        correct += (out.argmax(1) == yb).sum()
        window += d
        window_n += 1
        seen += len(yb)
        if s.step % cfg.log_every == 0:
            # .item() waits for the device: only here, at log steps
            _check_finite(first_bad, epoch)
            mean_loss = (window / window_n).item()
            track.log(step=s.step, epoch=epoch, train_loss=mean_loss, lr=lr)
            print(step_progress(s.step, epoch, i + 1, spe, mean_loss, lr), flush=True)
            window.zero_()
            window_n = 0
        if track.should_stop():  # the epoch is repeated on resume, from its start
            raise Stopped(f"stopped in epoch {epoch} at step {s.step}")
    _check_finite(first_bad, epoch)
    if dev.type == "cuda":
        torch.cuda.synchronize()  # honest timing
    elapsed = time.perf_counter() - t0
    return {
        "train_loss": (loss_sum / max(seen, 1)).item(),
        "train_acc": correct.item() / max(seen, 1),
        "lr": lr,
        "images_per_s": seen / max(elapsed, 1e-9),
    }


def mixing_in(cfg: TrainConfig, epoch: int) -> bool:
    """Whether MixUp/CutMix are on in `epoch` (mix_off_epoch: the last epoch with mixing)."""
    on = cfg.mixup > 0 or cfg.cutmix > 0
    return on and (cfg.mix_off_epoch == 0 or epoch <= cfg.mix_off_epoch)


def mix_batch(s: State, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor,
              num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch mixed with probability mix_prob (soft targets), else as it was."""
    if s.rng.random() < cfg.mix_prob:
        return mix(x, y, num_classes, cfg.mixup, cfg.cutmix, s.rng, s.gen)
    return x, y


def loss_of(out: torch.Tensor, target: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """The training loss: cross-entropy with the params' label smoothing (in float32)."""
    return F.cross_entropy(out.float(), target, label_smoothing=cfg.label_smoothing)


def optimizer_step(s: State, loss: torch.Tensor, cfg: TrainConfig) -> None:
    """Backward, clip the gradient norm to grad_clip, step (through the fp16 scaler when
    there is one) and update the EMA."""
    s.opt.zero_grad(set_to_none=True)
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
        s.scaler.unscale_(s.opt)
    else:
        loss.backward()
    if cfg.grad_clip:
        nn.utils.clip_grad_norm_(s.model.parameters(), cfg.grad_clip)
    if s.scaler is not None:
        s.scaler.step(s.opt)
        s.scaler.update()
    else:
        s.opt.step()
    if s.ema is not None:
        s.ema.update(s.model)


def step_progress(step: int, epoch: int, done: int, spe: int, loss: float, lr: float) -> str:
    """The compact line printed every log_every steps, indented under the epoch lines:
    `  step 120  epoch 3 [40/59]  train_loss 0.8123  lr 0.0031`."""
    return f"  step {step}  epoch {epoch} [{done}/{spe}]  train_loss {loss:.4f}  lr {lr:.3g}"


def _check_finite(first_bad: torch.Tensor, epoch: int) -> None:
    step = int(first_bad.item())
    if step >= 0:
        raise Diverged(f"loss became nan at step {step} (epoch {epoch})")


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, setup: Setup, batch_size: int) -> dict[str, Any]:
    """Validation loss, accuracy, top-5 and the confusion matrix (rows true, columns predicted)."""
    model.eval()
    c = setup.num_classes
    k = min(5, c)
    loss_sum = torch.zeros((), device=setup.device)
    correct = torch.zeros((), device=setup.device, dtype=torch.long)
    top5 = torch.zeros((), device=setup.device, dtype=torch.long)
    confusion = torch.zeros(c * c, device=setup.device, dtype=torch.long)
    n = 0
    for xb, yb in data.val.batches(batch_size):
        x = prepare(xb, data.mean, data.std, None, None, setup.channels_last)
        with setup.autocast():
            out = model(x)
        out = out.float()
        loss_sum += F.cross_entropy(out, yb, reduction="sum")
        pred = out.argmax(1)
        correct += (pred == yb).sum()
        top5 += (out.topk(k, 1).indices == yb[:, None]).any(1).sum()
        confusion += torch.bincount(yb * c + pred, minlength=c * c)
        n += len(yb)
    n = max(n, 1)
    return {
        "val_loss": (loss_sum / n).item(),
        "val_acc": correct.item() / n,
        "val_top5": top5.item() / n,
        "confusion": confusion.view(c, c).cpu(),
    }


# -- checkpoints ---------------------------------------------------------------------------


def checkpoint(s: State) -> dict[str, Any]:
    """The state as tensors, dicts, lists, numbers and strings (loadable with weights_only)."""
    py = random.getstate()
    return {
        "model": s.model.state_dict(),
        "ema": s.ema.model.state_dict() if s.ema is not None else None,
        "optimizer": s.opt.state_dict(),
        "optimizer_hparams": {"name": s.opt_phase.optimizer, "momentum": s.opt_phase.momentum,
                              "nesterov": s.opt_phase.nesterov,
                              "weight_decay": s.opt_phase.weight_decay},
        "plateau": s.plateau.state_dict(),
        "scaler": s.scaler.state_dict() if s.scaler is not None else None,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": _random_state(py),
            "mix": _random_state(s.rng.getstate()),
            "gen": s.gen.get_state(),
        },
        "epoch": s.epoch,
        "step": s.step,
        "best": s.best,
        "best_epoch": s.best_epoch,
        "bad_epochs": s.bad_epochs,
        "batch_size": s.batch_size,
    }


def restore(s: State, ckpt: dict[str, Any]) -> None:
    """Put a run back exactly where its checkpoint left it (a resume)."""
    s.model.load_state_dict(ckpt["model"])
    if s.ema is not None and ckpt.get("ema") is not None:
        s.ema.model.load_state_dict(ckpt["ema"])
    s.opt.load_state_dict(ckpt["optimizer"])
    s.plateau.load_state_dict(ckpt["plateau"])
    if s.scaler is not None and ckpt.get("scaler") is not None:
        s.scaler.load_state_dict(ckpt["scaler"])
    rng = ckpt["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(_random_tuple(rng["python"]))
    s.rng.setstate(_random_tuple(rng["mix"]))
    s.gen.set_state(rng["gen"])
    s.epoch, s.step = int(ckpt["epoch"]), int(ckpt["step"])
    s.best, s.best_epoch = float(ckpt["best"]), int(ckpt["best_epoch"])
    s.bad_epochs, s.batch_size = int(ckpt["bad_epochs"]), int(ckpt["batch_size"])


def _random_state(state: tuple[Any, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Python's Mersenne Twister state as int64s (weights_only loads tensors, not tuples)."""
    version, internal, gauss = state
    g = math.nan if gauss is None else gauss
    return torch.tensor([version, *internal], dtype=torch.int64), torch.tensor([g], dtype=torch.float64)


def _random_tuple(saved: Any) -> tuple[Any, ...]:
    ints, gauss = saved
    values = ints.tolist()
    g = float(gauss[0])
    return values[0], tuple(values[1:]), None if math.isnan(g) else g
