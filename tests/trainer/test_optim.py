"""Optimizers and LR schedules: every one steps, every trajectory has its expected shape."""

from __future__ import annotations

import math

import pytest
import torch

from tuiexp.trainer.config import OPTIMIZERS, SCHEDULERS, from_params
from tuiexp.trainer.models import build
from tuiexp.trainer.optim import Plateau, apply_hparams, build_optimizer, lr_at

SPE = 10  # steps per epoch


def trajectory(params: dict, epochs: int = 10) -> list[float]:
    """The LR of every step of a one-phase schedule."""
    phase = from_params({"epochs": epochs, "lr": 0.1, **params}).phases[0]
    return [lr_at(phase, e, i, SPE) for e in range(epochs) for i in range(SPE)]


def epoch_lrs(lrs: list[float]) -> list[float]:
    return lrs[::SPE]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_lowers_a_loss(name: str) -> None:
    torch.manual_seed(0)
    model = build("resnet", {"widths": [4], "depths": [1]}, 3, 1, 0.0)
    phase = from_params({"optimizer": name, "lr": 0.01, "epochs": 1}).phases[0]
    opt = build_optimizer(phase, model)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    # no weight decay on norms and biases
    assert opt.param_groups[1]["weight_decay"] == 0.0
    assert all(p.ndim <= 1 for p in opt.param_groups[1]["params"])


def test_apply_hparams_changes_a_kept_optimizer() -> None:
    model = build("resnet", {"widths": [4], "depths": [1]}, 3, 1, 0.0)
    opt = build_optimizer(from_params({"optimizer": "sgd"}).phases[0], model)
    apply_hparams(opt, from_params({"optimizer": "sgd", "momentum": 0.5, "weight_decay": 0.1}).phases[0])
    assert opt.param_groups[0]["momentum"] == 0.5 and opt.param_groups[0]["weight_decay"] == 0.1
    assert opt.param_groups[1]["weight_decay"] == 0.0


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_gives_positive_finite_lrs(name: str) -> None:
    lrs = trajectory({"scheduler": name})
    assert all(math.isfinite(lr) and lr >= 0 for lr in lrs)
    assert max(lrs) <= 0.1 + 1e-12


def test_constant() -> None:
    assert set(trajectory({"scheduler": "constant"})) == {0.1}


def test_cosine_starts_at_lr_and_ends_near_zero() -> None:
    lrs = trajectory({"scheduler": "cosine"})
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[len(lrs) // 2] == pytest.approx(0.05, rel=1e-6)
    assert lrs[-1] < 1e-3
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))  # per step, never up
    assert len(set(lrs[:SPE])) == SPE  # moves every step


def test_step_drops_by_gamma_once_an_epoch_boundary_is_passed() -> None:
    lrs = trajectory({"scheduler": "step", "scheduler_args": {"step_size": 3, "gamma": 0.5}})
    assert epoch_lrs(lrs) == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125])
    assert len(set(lrs[:SPE])) == 1  # constant within an epoch


def test_multistep_and_exponential() -> None:
    lrs = trajectory({"scheduler": "multistep", "scheduler_args": {"milestones": [2, 7], "gamma": 0.1}})
    assert epoch_lrs(lrs) == pytest.approx([0.1] * 2 + [0.01] * 5 + [0.001] * 3)
    lrs = trajectory({"scheduler": "exponential", "scheduler_args": {"gamma": 0.5}})
    assert epoch_lrs(lrs)[:3] == pytest.approx([0.1, 0.05, 0.025])


def test_cosine_restarts_go_back_up() -> None:
    lrs = epoch_lrs(trajectory({"scheduler": "cosine_restarts", "scheduler_args": {"T_0": 5}}))
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.1)
    assert lrs[4] < 0.02


def test_onecycle_rises_to_max_lr_then_anneals() -> None:
    lrs = trajectory({"scheduler": "onecycle", "scheduler_args": {"max_lr": 0.1, "pct_start": 0.3}})
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert peak == pytest.approx(0.3 * len(lrs), abs=1)
    assert lrs[0] == pytest.approx(0.1 / 25) and lrs[peak] == pytest.approx(0.1, rel=1e-3)
    assert lrs[-1] < 1e-4


def test_cyclic_is_a_triangle() -> None:
    lrs = trajectory({"scheduler": "cyclic",
                      "scheduler_args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2}})
    e = epoch_lrs(lrs)
    assert e[0] == pytest.approx(0.01) and e[2] == pytest.approx(0.1) and e[4] == pytest.approx(0.01)


def test_warmup_ramps_linearly_then_hands_over() -> None:
    lrs = trajectory({"scheduler": "cosine", "warmup_epochs": 2})
    assert lrs[0] == pytest.approx(0.1 / (2 * SPE))
    assert lrs[2 * SPE - 1] == pytest.approx(0.1)
    assert lrs[2 * SPE] == pytest.approx(0.1)  # cosine starts from the top after warm-up
    assert all(a < b for a, b in zip(lrs[: 2 * SPE - 1], lrs[1 : 2 * SPE], strict=True))
    assert lrs[-1] < 1e-3


def test_plateau_cuts_the_lr_when_the_loss_stalls() -> None:
    phase = from_params({"scheduler": "plateau",
                         "scheduler_args": {"patience": 1, "factor": 0.5}}).phases[0]
    p = Plateau.for_phase(phase)
    for loss in (1.0, 0.9, 0.9, 0.9):
        p.step(loss)
    assert p.scale == 0.5
    assert lr_at(phase, 4, 0, SPE, p.scale) == pytest.approx(0.05)
    q = Plateau()
    q.load_state_dict(p.state_dict())
    assert q.state_dict() == p.state_dict()


def test_phases_switch_optimizer_and_schedule_at_their_epoch() -> None:
    cfg = from_params({
        "epochs": 6, "lr": 0.1,
        "schedule": [{"epochs": 2, "optimizer": "adam", "lr": 0.001, "scheduler": "constant"},
                     {"optimizer": "sgd", "scheduler": "cosine"}],
    })
    per_epoch = []
    for epoch in range(1, 7):
        phase = cfg.phase_at(epoch)
        per_epoch.append((phase.optimizer, lr_at(phase, epoch - 1 - phase.start, 0, SPE)))
    assert [o for o, _ in per_epoch] == ["adam", "adam", "sgd", "sgd", "sgd", "sgd"]
    assert per_epoch[1][1] == 0.001 and per_epoch[2][1] == pytest.approx(0.1)
    assert per_epoch[5][1] < per_epoch[3][1]
