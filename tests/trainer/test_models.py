"""Model families: forward shapes, parameter counts, torchvision and user factories."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tuiexp.trainer.models import ModelError, build, num_params


@pytest.mark.parametrize("family", ["vgg", "resnet", "mbconv"])
@pytest.mark.parametrize(("channels", "size"), [(3, 16), (1, 28)])
def test_families_classify_any_size_and_channels(family: str, channels: int, size: int) -> None:
    model = build(family, {}, 7, channels, 0.2).eval()
    assert model(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_param_counts_follow_model_args() -> None:
    small = build("resnet", {"widths": [4, 8], "depths": [1, 1]}, 10, 3, 0.0)
    big = build("resnet", {"widths": [32, 64, 128], "depths": [2, 2, 2], "stem_kernel": 5}, 10, 3, 0.0)
    assert 1_000 < num_params(small) < 2_000 < 500_000 < num_params(big)
    vgg = build("vgg", {"widths": [8, 16], "blocks_per_stage": 1}, 10, 3, 0.0)
    assert num_params(vgg) < num_params(build("vgg", {}, 10, 3, 0.0))


def test_mbconv_spans_a_thousand_to_a_million_parameters() -> None:
    tiny = build("mbconv", {"width_mult": 0.1, "depth_mult": 0.3, "expand": 2, "se": False}, 10, 3, 0.0)
    large = build("mbconv", {"width_mult": 2.0}, 10, 3, 0.0)
    assert 1_000 <= num_params(tiny) <= 2_000
    assert 900_000 <= num_params(large) <= 1_500_000


def test_dropout_sits_before_the_head() -> None:
    model = build("resnet", {"widths": [4], "depths": [1], "block_dropout": 0.1}, 10, 3, 0.3)
    drops = [m.p for m in model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
    assert drops == [0.1, 0.3]


def test_torchvision_models_with_dropout_and_grey_input() -> None:
    model = build("tv:resnet18", {}, 10, 1, 0.5).eval()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.modules())
    with pytest.raises(ModelError, match="torchvision has no model 'resnet19'"):
        build("tv:resnet19", {}, 10, 3, 0.0)


def tiny_factory(num_classes: int, dropout: float, in_channels: int = 3, width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(dropout), nn.Linear(width, num_classes))


def test_user_factories_get_classes_dropout_and_args() -> None:
    model = build(f"{__name__}:tiny_factory", {"width": 6}, 5, 1, 0.1)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 5)
    assert model[0].out_channels == 6
    with pytest.raises(ModelError, match="cannot load model factory"):
        build(f"{__name__}:no_such_factory", {}, 5, 1, 0.0)
    with pytest.raises(ModelError, match="cannot take model_args"):
        build("resnet", {"heads": 3}, 5, 1, 0.0)
