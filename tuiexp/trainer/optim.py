"""Optimizers and learning-rate schedules.

A schedule here is a plain function of where training stands in its phase
(epoch and step within the epoch), not a stateful torch scheduler: the same
point always gets the same LR, so a resume needs no scheduler state, and a
fork that changes batch size keeps the curve it was on. Per-step schedules
(warm-up, cosine, restarts, onecycle, cyclic) move every step; step,
multistep and exponential move once an epoch. Only plateau carries state,
updated on the validation loss once an epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import Phase


def build_optimizer(phase: Phase, model: nn.Module) -> torch.optim.Optimizer:
    """The phase's optimizer; norms and biases get no weight decay."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": phase.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    if phase.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=phase.lr, momentum=phase.momentum,
                               nesterov=phase.nesterov and phase.momentum > 0)
    if phase.optimizer == "adam":
        return torch.optim.Adam(groups, lr=phase.lr)
    if phase.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=phase.lr)
    if phase.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=phase.lr, momentum=phase.momentum)
    raise ValueError(phase.optimizer)


def apply_hparams(opt: torch.optim.Optimizer, phase: Phase) -> None:
    """Give an optimizer kept across a phase (or fork) the phase's own settings."""
    opt.param_groups[0]["weight_decay"] = phase.weight_decay
    for group in opt.param_groups:
        if "momentum" in group:
            group["momentum"] = phase.momentum
        if "nesterov" in group:
            group["nesterov"] = phase.nesterov and phase.momentum > 0


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def lr_at(phase: Phase, epoch: int, step: int, steps_per_epoch: int, scale: float = 1.0) -> float:
    """The LR for `step` of the phase's `epoch` (both 0-based); `scale` is plateau's."""
    t = epoch + step / max(1, steps_per_epoch)  # epochs of the phase done before this step
    warm = phase.warmup_epochs
    if t < warm:  # linear warm-up, reaching the phase's LR as it ends
        return phase.lr * (t + 1 / max(1, steps_per_epoch)) / warm
    t -= warm
    span = max(phase.epochs - warm, 1e-9)
    a = phase.scheduler_args
    name, base = phase.scheduler, phase.lr
    whole = math.floor(t + 1e-9)  # epochs done: the per-epoch schedules move on these
    if name == "constant":
        return base
    if name == "cosine":
        return _cos(base, a.get("eta_min", 0.0), min(t / span, 1.0))
    if name == "cosine_restarts":
        period, mult = float(a.get("T_0", max(1, round(span / 3)))), float(a.get("T_mult", 1))
        while t >= period:  # walk to the current cycle
            t -= period
            period *= mult
        return _cos(base, a.get("eta_min", 0.0), t / period)
    if name == "step":
        return base * a.get("gamma", 0.1) ** (whole // int(a.get("step_size", max(1, round(span / 3)))))
    if name == "multistep":
        milestones = a.get("milestones", [round(span / 2), round(span * 3 / 4)])
        return base * a.get("gamma", 0.1) ** sum(whole >= m for m in milestones)
    if name == "exponential":
        return base * a.get("gamma", 0.9) ** whole
    if name == "onecycle":
        peak = a.get("max_lr", base)
        start = peak / a.get("div_factor", 25.0)
        end = start / a.get("final_div_factor", 1e4)
        pct = a.get("pct_start", 0.3)
        v = t / span
        if v < pct:
            return _cos(start, peak, v / pct)
        return _cos(peak, end, min((v - pct) / (1 - pct), 1.0))
    if name == "cyclic":  # triangular, with half-cycles measured in epochs
        low, high = a.get("base_lr", base / 10), a.get("max_lr", base)
        up = float(a.get("step_size_up", max(span / 4, 1e-9)))
        down = float(a.get("step_size_down", up))
        x = t % (up + down)
        frac = x / up if x < up else 1 - (x - up) / down
        return low + (high - low) * frac
    if name == "plateau":
        return max(base * scale, a.get("min_lr", 0.0))
    raise ValueError(name)


def _cos(start: float, end: float, v: float) -> float:
    """Cosine from `start` (v=0) to `end` (v=1)."""
    return end + (start - end) * (1 + math.cos(math.pi * v)) / 2


@dataclass
class Plateau:
    """Reduce-on-plateau for the validation loss: the scale lr_at multiplies in."""

    factor: float = 0.1
    patience: int = 2
    threshold: float = 1e-4
    best: float = math.inf
    bad_epochs: int = 0
    scale: float = 1.0

    @classmethod
    def for_phase(cls, phase: Phase) -> Plateau:
        a = phase.scheduler_args
        return cls(factor=a.get("factor", 0.1), patience=int(a.get("patience", 2)),
                   threshold=a.get("threshold", 1e-4))

    def step(self, val_loss: float) -> None:
        if val_loss < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.scale *= self.factor
                self.bad_epochs = 0

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "scale": self.scale}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.scale = float(state["scale"])
