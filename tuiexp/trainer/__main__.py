"""`python -m tuiexp.trainer`: the built-in trainer, a client of tuiexp.track like any script.

Reads its params from the run directory, trains, and reports through track:
epoch metrics, a confusion matrix per epoch, checkpoints, a final status.
Exit codes: 0 finished, 2 failed (bad params, data or model), 3 diverged,
4 out of memory, 143 cancelled; 0 also when preempted (asked to stop: it saves nothing
more, says `preempted`, and a resume continues after its last epoch checkpoint).
"""

from __future__ import annotations

import math
import random
import sys
from typing import Any, cast

import torch
from torch import nn

from .. import track
from ..errors import TuiexpError
from . import data as datasets
from . import models
from .config import Phase, TrainConfig, from_params, unused_params
from .loop import (
    EMA,
    Diverged,
    Setup,
    State,
    Stopped,
    checkpoint,
    evaluate,
    restore,
    train_one_epoch,
)
from .optim import Plateau, apply_hparams, build_optimizer

EXIT_FAILED, EXIT_DIVERGED, EXIT_OOM, EXIT_CANCELLED = 2, 3, 4, 143


class OutOfMemory(Exception):
    pass


def cli() -> int:
    run = track.init()
    try:
        return main(from_params(run.params, run.spec.get("metric"), run.spec.get("mode")), run)
    except TuiexpError as e:  # bad params, missing data, unknown model: a sentence, no traceback
        track.finish("failed", str(e))
        print(f"tuiexp.trainer: {e}", file=sys.stderr)
        return EXIT_FAILED
    except track.Cancelled:
        track.finish("cancelled", "cancelled by SIGTERM before training started")
        return EXIT_CANCELLED


def main(cfg: TrainConfig, run: track.Run) -> int:
    apply_run_settings(cfg)
    setup_dev = pick_device(cfg.device)
    if cfg.early_stop.metric == "peak_mem_mb" and setup_dev.type != "cuda":
        raise TuiexpError(f"the best checkpoint follows peak_mem_mb, which is logged on CUDA "
                          f"only, but this run trains on {setup_dev.type}; choose another metric.")
    for message in unused_params(cfg):  # a setting that does nothing is seen, not silent
        track.warning(message)
        print(f"warning: {message}", flush=True)
    data = datasets.load(cfg, setup_dev)
    setup = make_setup(cfg, setup_dev, len(data.classes))
    model = build_model(cfg, setup, data.image_shape[0])
    _check_budget(cfg, models.num_params(model))

    ckpt = run.load_checkpoint(map_location="cpu")  # RNG states must stay on the CPU
    source = ckpt["_source"] if ckpt else "fresh"
    fork_epoch = (run.fork_epoch or int(ckpt["epoch"])) if ckpt and source == "fork" else 0
    # the optimizer is built for the phase of the last epoch done, as the run that saved it had
    done = int(ckpt["epoch"]) if ckpt and source == "resume" else fork_epoch
    phase = cfg.phase_at(max(done, 1) if source == "resume" else done + 1)
    s = new_state(cfg, setup, model, phase)
    facts: dict[str, Any] = {"start": source}
    if ckpt and source == "resume":
        restore(s, ckpt)
    elif ckpt and source == "fork":
        facts["optimizer_state"] = warm_start(s, ckpt, cfg, fork_epoch)
    del ckpt

    track.meta(
        classes=data.classes,
        num_params=models.num_params(model),
        device=str(setup.device),
        dataset=cfg.dataset,
        num_train=len(data.train),
        num_val=len(data.val),
        image_shape=list(data.image_shape),
        model=cfg.model,
        batch_size=s.batch_size,
        amp=str(setup.amp_dtype).replace("torch.", "") if setup.amp_dtype else "off",
        **facts,
    )
    try:
        return train(s, data, cfg, setup, run)
    except Diverged as e:
        track.finish("diverged", str(e))
        return EXIT_DIVERGED
    except OutOfMemory as e:
        track.finish("oom", str(e))
        return EXIT_OOM
    except RuntimeError as e:
        if not is_oom(e):
            raise
        track.finish("oom", f"CUDA out of memory at batch_size {s.batch_size}; lower batch_size "
                            "or set auto_batch_size = true.")
        return EXIT_OOM
    except Stopped as e:
        kept = run.checkpoint_epochs()
        after = f"resumes after epoch {kept[-1]}" if kept else "resumes from the start"
        track.finish("preempted", f"{e}; {after}")
        return 0
    except track.Cancelled:
        kept = run.checkpoint_epochs()
        after = f"a resume continues after epoch {kept[-1]}" if kept else "a resume starts afresh"
        track.finish("cancelled", f"cancelled by SIGTERM in epoch {s.epoch + 1}; {after}")
        return EXIT_CANCELLED


def _check_budget(cfg: TrainConfig, count: int) -> None:
    """A model sized to a `param_budget` (by the analytic counts of sizing.py) that misses
    it: the data's real classes differ from what sizing assumed; say so."""
    budget = cfg.param_budget
    if budget and abs(count - budget) > 0.05 * budget:
        track.warning(f"the model has {count:,} parameters, {100 * (count - budget) / budget:+.1f} % "
                      f"off its param_budget {budget:,.0f}")


def apply_run_settings(cfg: TrainConfig) -> None:
    """Threads and the global seeds (the model's init draws from torch's global RNG)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)


def make_setup(cfg: TrainConfig, device: torch.device, num_classes: int) -> Setup:
    """Where and how the run computes: autocast dtype and memory format from the params."""
    return Setup(
        device=device,
        amp_dtype=amp_dtype(cfg.amp, device),
        channels_last=device.type == "cuda" if cfg.channels_last == "auto" else bool(cfg.channels_last),
        num_classes=num_classes,
    )


def build_model(cfg: TrainConfig, setup: Setup, in_channels: int) -> torch.nn.Module:
    """The params' model on the run's device, in its memory format."""
    model = models.build(cfg.model, cfg.model_args, setup.num_classes, in_channels, cfg.dropout)
    model = model.to(setup.device)
    if setup.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def new_state(cfg: TrainConfig, setup: Setup, model: torch.nn.Module, phase: Phase) -> State:
    """A fresh training state: optimizer for `phase`, seeded generators, EMA and grad scaler."""
    return State(
        model=model,
        forward=cast(nn.Module, torch.compile(model)) if cfg.compile else model,  # typed as a Callable
        opt=build_optimizer(phase, model),
        opt_phase=phase,
        gen=torch.Generator(setup.device).manual_seed(cfg.seed),
        rng=random.Random(cfg.seed),
        batch_size=cfg.batch_size,
        ema=EMA(model, cfg.ema) if cfg.ema else None,
        scaler=torch.amp.GradScaler(setup.device.type) if setup.amp_dtype == torch.float16 else None,
        plateau=Plateau.for_phase(phase),
    )


def train(s: State, data: datasets.Data, cfg: TrainConfig, setup: Setup, run: track.Run) -> int:
    """The epoch loop, from the first epoch not done to cfg.epochs."""
    for epoch in range(s.epoch + 1, cfg.epochs + 1):
        enter_phase(s, cfg, epoch)
        stats = fit_epoch(s, data, cfg, setup, epoch)
        if setup.device.type == "cuda":
            stats["peak_mem_mb"] = torch.cuda.max_memory_allocated(setup.device) / 2**20
            torch.cuda.reset_peak_memory_stats(setup.device)
        val = evaluate(s.ema.model if s.ema is not None else s.forward, data, setup, s.batch_size)
        confusion = val.pop("confusion")
        if s.opt_phase.scheduler == "plateau":
            s.plateau.step(val["val_loss"])
        s.epoch = epoch
        metrics = {**stats, **val, "batch_size": s.batch_size}
        improved = note_best(s, cfg, metrics[cfg.early_stop.metric])
        track.log(epoch=epoch, **metrics)
        print(progress(epoch, cfg, metrics, improved), flush=True)  # stdout.log tells the story
        track.confusion(epoch, data.classes, confusion)
        save(s, cfg, run, improved)
        if cfg.early_stop.patience and s.bad_epochs >= cfg.early_stop.patience:
            track.finish("finished", f"early stop after epoch {epoch}: {cfg.early_stop.metric} "
                                     f"has not improved since epoch {s.best_epoch}")
            return 0
        if track.should_stop() and epoch < cfg.epochs:
            raise Stopped(f"stopped after epoch {epoch}")
        if track.should_prune() and epoch < cfg.epochs:  # a study's pruner: checkpoints stay
            track.finish("pruned", f"pruned by its study after epoch {epoch}")
            return 0
    track.finish("finished")
    return 0


def fit_epoch(s: State, data: datasets.Data, cfg: TrainConfig, setup: Setup, epoch: int) -> dict[str, float]:
    """Train one epoch; with auto_batch_size, an out-of-memory epoch is retried at half the batch."""
    import time

    snapshot = None
    if cfg.auto_batch_size:  # out of memory is a CUDA matter, but the retry needs no GPU
        snapshot = _to_cpu(checkpoint(s))
    while True:
        t0 = time.perf_counter()
        try:
            stats = train_one_epoch(s, data, cfg, setup, epoch)
            stats["epoch_time"] = time.perf_counter() - t0
            return stats
        except RuntimeError as e:
            if snapshot is None or s.batch_size == 1 or not is_oom(e):
                raise
            too_big = s.batch_size
        # out of the except block, so the failed step's tensors can be freed
        s.opt.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        restore(s, snapshot)
        s.batch_size = max(1, too_big // 2)
        track.meta(batch_size=s.batch_size,
                   note=f"out of memory at batch_size {too_big}: epoch {epoch} again at {s.batch_size}")


def enter_phase(s: State, cfg: TrainConfig, epoch: int) -> None:
    """Switch optimizer settings where the schedule moves to a new phase."""
    phase = cfg.phase_at(epoch)
    if phase == s.opt_phase:
        return
    if phase.optimizer == s.opt_phase.optimizer:  # same kind: keep its state (momentum, moments)
        apply_hparams(s.opt, phase)
    else:
        s.opt = build_optimizer(phase, s.model)
    s.opt_phase = phase
    s.plateau = Plateau.for_phase(phase)


def warm_start(s: State, ckpt: dict[str, Any], cfg: TrainConfig, fork_epoch: int) -> str:
    """Start a fork from its parent's checkpoint: weights always, optimizer state only when
    the optimizer is the same kind. Returns whether optimizer state was loaded."""
    s.model.load_state_dict(ckpt["model"])
    if s.ema is not None:
        s.ema.model.load_state_dict(ckpt.get("ema") or ckpt["model"])
    s.epoch, s.step = fork_epoch, int(ckpt.get("step", 0))
    if cfg.schedule_start < fork_epoch and ckpt.get("plateau"):  # the schedule goes on
        s.plateau.load_state_dict(ckpt["plateau"])
    saved = (ckpt.get("optimizer_hparams") or {}).get("name")
    if saved != s.opt_phase.optimizer or ckpt.get("optimizer") is None:
        return "fresh"
    s.opt.load_state_dict(ckpt["optimizer"])
    apply_hparams(s.opt, s.opt_phase)
    return "loaded"


def note_best(s: State, cfg: TrainConfig, value: float) -> bool:
    """Whether `value` of the best-picking metric beats the best so far (NaN never does)."""
    lower = cfg.early_stop.lower_is_better
    finite = math.isfinite(value)
    if finite and (not math.isfinite(s.best) or (value < s.best if lower else value > s.best)):
        s.best, s.best_epoch, s.bad_epochs = value, s.epoch, 0
        return True
    s.bad_epochs += 1
    return False


def progress(epoch: int, cfg: TrainConfig, m: dict[str, float], improved: bool) -> str:
    """One line per epoch for stdout.log: `epoch 3/10  train_loss 0.8123  val_loss 0.7340
    val_acc 0.7120  lr 0.0031  2.4s  *` (* = a new best by early_stop.metric)."""
    keys = ["train_loss", "val_loss", "val_acc"]
    if cfg.early_stop.metric not in (*keys, "lr", "epoch_time"):
        keys.append(cfg.early_stop.metric)
    parts = [f"epoch {epoch}/{cfg.epochs}", *(f"{k} {m[k]:.4f}" for k in keys),
             f"lr {m['lr']:.3g}", f"{m['epoch_time']:.1f}s"]
    return "  ".join(parts) + ("  *" if improved else "")


def save(s: State, cfg: TrainConfig, run: track.Run, improved: bool) -> None:
    """Checkpoint this epoch; keep the last, the best and every checkpoint_every-th."""
    run.save_checkpoint(checkpoint(s), s.epoch, ("last", "best") if improved else ("last",))
    for epoch in run.checkpoint_epochs():
        if epoch not in (s.epoch, s.best_epoch) and epoch % cfg.checkpoint_every:
            run.delete_checkpoint(epoch)


def is_oom(e: BaseException) -> bool:
    """CUDA out of memory, including cuBLAS failing to get its workspace."""
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(e, RuntimeError) and ("out of memory" in str(e) or "ALLOC_FAILED" in str(e))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TuiexpError(f"device = {name!r}, but this machine has no CUDA device.")
    return device


def amp_dtype(amp: str | bool, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default (no loss scaling needed); off on the CPU."""
    if amp is False or (amp == "auto" and device.type != "cuda"):
        return None
    return torch.float16 if amp == "fp16" else torch.bfloat16


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


if __name__ == "__main__":
    sys.exit(cli())
