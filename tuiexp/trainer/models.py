"""Models: three small families sized by model_args, torchvision's, or the user's own.

Every built-in family ends in global average pooling, dropout and a linear head,
so it takes any image size and any number of input channels.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import TuiexpError


class ModelError(TuiexpError):
    """A model that cannot be built from the params."""

    exit_code = 2


def build(name: str, args: dict[str, Any], num_classes: int, in_channels: int,
          dropout: float) -> nn.Module:
    """The model `name` ("resnet", "tv:resnet18", "pkg.mod:factory", ...) for these data."""
    if name in _FAMILIES:
        try:
            return _FAMILIES[name](num_classes=num_classes, in_channels=in_channels,
                                   dropout=dropout, **args)
        except TypeError as e:
            raise ModelError(f"model {name!r} cannot take model_args {args}: {e}.") from None
    if name.startswith("tv:"):
        return _torchvision(name[3:], args, num_classes, in_channels, dropout)
    if ":" in name:
        return _factory(name, args, num_classes, in_channels, dropout)
    raise ModelError(f"unknown model {name!r}: use vgg, resnet, mbconv, tv:<name> or module:factory.")


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _head(width: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(width, num_classes))


# -- vgg ---------------------------------------------------------------------------------


def vgg(num_classes: int, in_channels: int = 3, dropout: float = 0.0,
        widths: list[int] | None = None, blocks_per_stage: int = 2) -> nn.Module:
    """Plain conv-BN-ReLU stages, each halving the resolution with a max-pool."""
    widths = widths or [32, 64, 128]
    layers: list[nn.Module] = []
    cin = in_channels
    for i, w in enumerate(widths):
        for _ in range(blocks_per_stage):
            layers.append(_conv_bn(cin, w))
            cin = w
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, _head(cin, num_classes, dropout))


# -- resnet ----------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, block_dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(cin, cout, 3, stride),
            nn.Dropout2d(block_dropout) if block_dropout else nn.Identity(),
            _conv_bn(cout, cout, 3, 1, act=False),
        )
        self.skip = (nn.Identity() if stride == 1 and cin == cout
                     else _conv_bn(cin, cout, 1, stride, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet(num_classes: int, in_channels: int = 3, dropout: float = 0.0, stem_kernel: int = 3,
           widths: list[int] | None = None, depths: list[int] | None = None,
           block_dropout: float = 0.0) -> nn.Module:
    """A CIFAR-style ResNet: a stem, then stages of basic blocks, each after the first halving
    the resolution."""
    widths = widths or [16, 32, 64]
    depths = depths or [1] * len(widths)
    layers: list[nn.Module] = [_conv_bn(in_channels, widths[0], stem_kernel)]
    cin = widths[0]
    for i, (w, d) in enumerate(zip(widths, depths, strict=True)):
        for j in range(d):
            layers.append(BasicBlock(cin, w, 2 if i > 0 and j == 0 else 1, block_dropout))
            cin = w
    return nn.Sequential(*layers, _head(cin, num_classes, dropout))


# -- mbconv ----------------------------------------------------------------------------------


class MBConv(nn.Module):
    """Inverted residual (MobileNetV2/EfficientNet): expand, depthwise, squeeze-excite, project."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, se: bool):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(cin, mid, 1))
        layers.append(_conv_bn(mid, mid, 3, stride, groups=mid))
        if se:
            layers.append(SqueezeExcite(mid, max(1, cin // 4)))
        layers.append(_conv_bn(mid, cout, 1, act=False))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeezed, 1),
                                  nn.ReLU(inplace=True), nn.Conv2d(squeezed, channels, 1),
                                  nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


#: (width as a multiple of base_width, depth, stride) per stage
MBCONV_STAGES = ((1, 1, 1), (1.5, 2, 2), (2.5, 2, 2), (5, 3, 2), (7, 1, 1))


def mbconv(num_classes: int, in_channels: int = 3, dropout: float = 0.0, width_mult: float = 1.0,
           depth_mult: float = 1.0, base_width: int = 16, expand: int = 4, se: bool = True,
           head_width: int = 0) -> nn.Module:
    """A small EfficientNet-like net; width_mult and depth_mult span ~1k to ~1M+ parameters
    (width_mult 0.1, depth_mult 0.3, expand 2, se false ≈ 1.4k; the defaults ≈ 0.28M;
    width_mult 2 ≈ 1.1M)."""

    def width(m: float) -> int:
        return max(4, int(round(base_width * m * width_mult / 4)) * 4)

    stem = width(1)
    layers: list[nn.Module] = [_conv_bn(in_channels, stem, 3)]
    cin = stem
    for m, d, stride in MBCONV_STAGES:
        cout = width(m)
        for j in range(max(1, math.ceil(d * depth_mult))):
            layers.append(MBConv(cin, cout, stride if j == 0 else 1, 1 if m == 1 else expand, se))
            cin = cout
    if head_width:
        layers.append(_conv_bn(cin, head_width, 1))
        cin = head_width
    return nn.Sequential(*layers, _head(cin, num_classes, dropout))


_FAMILIES: dict[str, Callable[..., nn.Module]] = {"vgg": vgg, "resnet": resnet, "mbconv": mbconv}


# -- torchvision and user factories ------------------------------------------------------------


def _torchvision(name: str, args: dict[str, Any], num_classes: int, in_channels: int,
                 dropout: float) -> nn.Module:
    import torchvision  # lazily: importing it costs seconds

    if name not in torchvision.models.list_models():
        raise ModelError(f"torchvision has no model {name!r} (see torchvision.models.list_models()).")
    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **args)
    except TypeError as e:
        raise ModelError(f"tv:{name} cannot take model_args {args}: {e}.") from None
    if dropout:
        _dropout_before_head(model, dropout)
    if in_channels != 3:  # torchvision models expect RGB: repeat a grey channel
        model = nn.Sequential(_Repeat(3 // in_channels), model)
    return model


class _Repeat(nn.Module):
    def __init__(self, times: int):
        super().__init__()
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(1, self.times, 1, 1)


def _dropout_before_head(model: nn.Module, p: float) -> None:
    """Put dropout in front of the last Linear layer of a model we did not write."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ModelError("dropout needs a model with a Linear head.")
    parent_name, _, attr = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, nn.Sequential(nn.Dropout(p), getattr(parent, attr)))


def _factory(spec: str, args: dict[str, Any], num_classes: int, in_channels: int,
             dropout: float) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ModelError(f"cannot load model factory {spec!r}: {e}.") from None
    kw: dict[str, Any] = {"num_classes": num_classes, "dropout": dropout, **args}
    try:
        if "in_channels" in inspect.signature(factory).parameters:
            kw["in_channels"] = in_channels
    except (TypeError, ValueError):  # no signature to read (a builtin): call as documented
        pass
    model = factory(**kw)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model factory {spec!r} returned {type(model).__name__}, not an nn.Module.")
    return model
