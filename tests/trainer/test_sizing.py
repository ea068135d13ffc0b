"""Parameter budgets: the analytic counts against torch, and sizing within ±5 %."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tuiexp.errors import ConfigError
from tuiexp.trainer import models, sizing
from tuiexp.trainer.config import DATASET_SHAPES, size_to_budget

BUDGETS = [1e3, 5e3, 1e4, 5e4, 1e5, 3.5e5, 5e5, 1e6]

#: several widths and depths per family, the user's other model_args included
SHAPES: dict[str, list[dict[str, Any]]] = {
    "vgg": [{}, {"widths": [1, 2, 3]}, {"widths": [7, 13], "blocks_per_stage": 1},
            {"widths": [5, 9, 17, 33], "blocks_per_stage": 3}],
    "resnet": [{}, {"widths": [1, 3, 7]}, {"widths": [8, 8], "depths": [2, 1]},
               {"widths": [5, 11, 23], "depths": [1, 2, 3], "stem_kernel": 7, "block_dropout": 0.1}],
    "mbconv": [{}, {"width_mult": 0.1, "depth_mult": 0.3, "expand": 2, "se": False},
               {"width_mult": 0.37, "base_width": 12, "head_width": 40},
               {"width_mult": 1.3, "depth_mult": 1.5, "expand": 6, "se": True}],
}


@pytest.mark.parametrize(("family", "args"), [(f, a) for f, shapes in SHAPES.items() for a in shapes])
@pytest.mark.parametrize(("classes", "channels"), [(10, 3), (100, 1)])
def test_the_analytic_count_is_torchs(family: str, args: dict[str, Any], classes: int,
                                      channels: int) -> None:
    model = models.build(family, args, classes, channels, dropout=0.1)
    assert sizing.COUNTERS[family](args, classes, channels) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("family", ["vgg", "resnet", "mbconv"])
def test_every_budget_lands_within_five_percent_and_torch_agrees(family: str) -> None:
    for budget in BUDGETS:
        if family == "mbconv" and budget < 2e3:
            continue  # below the smallest mbconv: refused (next test)
        args, count = sizing.size(family, {}, budget, 10, 3)
        assert abs(count - budget) <= 0.05 * budget, (family, budget, count)
        built = models.num_params(models.build(family, args, 10, 3, 0.0))
        assert built == count, (family, budget, args)


def test_sizing_keeps_the_users_args_and_the_shape_of_their_widths() -> None:
    args, count = sizing.size("resnet", {"widths": [10, 10, 40], "stem_kernel": 5}, 2e4, 10, 3)
    assert args["stem_kernel"] == 5 and args["widths"][0] == args["widths"][1]
    assert args["widths"][2] >= 3 * args["widths"][0]
    assert abs(count - 2e4) <= 1e3
    # depth the user set is kept: only the widths move
    args, _ = sizing.size("vgg", {"blocks_per_stage": 3}, 1e5, 10, 3)
    assert args["blocks_per_stage"] == 3


def test_bigger_budgets_get_deeper_models() -> None:
    small, _ = sizing.size("resnet", {}, 1e4, 10, 3)
    big, _ = sizing.size("resnet", {}, 1e6, 10, 3)
    assert small["depths"] == [1, 1, 1] and big["depths"] == [2, 2, 2]


@pytest.mark.parametrize(("params", "budget", "said"), [
    ({"model": "mbconv"}, 1e3, "is below the smallest mbconv model for these data (1,819 parameters)"),
    ({"model": "resnet", "model_args": {"widths": [64] * 4, "depths": [3] * 4}}, 1e3,
     "cannot be reached: no resnet width lands within ±5 %"),
    ({"model": "tv:resnet18"}, 1e4, "model 'tv:resnet18' has no sizing rule"),
    ({"dataset": "imagefolder", "data_root": "/nowhere"}, 1e4, "/nowhere/train holds no class folders"),
])
def test_unreachable_budgets_are_one_sentence(params: dict[str, Any], budget: float, said: str) -> None:
    with pytest.raises(ConfigError, match="param_budget") as e:
        size_to_budget(params, budget)
    assert said in str(e.value)


def test_classes_and_channels_come_from_the_dataset(tmp_path: Any) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / "train" / name).mkdir(parents=True)
    assert sizing.data_shape({"dataset": "imagefolder", "data_root": str(tmp_path)},
                             DATASET_SHAPES, "data") == (3, 3)
    assert sizing.data_shape({"dataset": "mnist"}, DATASET_SHAPES, "data") == (10, 1)
    p = size_to_budget({"dataset": "mnist", "model": "vgg"}, 5e3)
    count = models.num_params(models.build("vgg", p["model_args"], 10, 1, 0.0))
    assert abs(count - 5e3) <= 250 and p["param_budget"] == 5e3


def test_counts_never_shrink_as_the_scale_grows() -> None:
    # the coarse search assumes it; a family change that broke it would mis-size silently
    for family, scale_lo in itertools.product(("vgg", "resnet", "mbconv"), (0.01, 0.1, 1.0)):
        counts = [sizing.COUNTERS[family](sizing._scaled(family, {}, scale_lo * 1.1 ** k), 10, 3)
                  for k in range(30)]
        assert counts == sorted(counts), family
