"""Every documented param of the built-in trainer changes what it does, as its doc says.

Each test below names the params it proves with `@proves(...)`; a param declared in
tuiexp/trainer/config.py with no test (here, or listed in ELSEWHERE) fails
`test_every_param_has_a_behaviour_test`, so a new param cannot ship untested.

Most tests build the trainer's own objects (data, model, optimizer, schedule, augment,
loss) from a config and look at them; the params that only show in a run (epochs,
log_every, checkpoint_every, auto_batch_size, the progress lines) use tiny runs of the
real trainer, in-process, on real run directories.
"""

from __future__ import annotations

import io
import math
import random
import re
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tuiexp import track
from tuiexp.config import loader
from tuiexp.errors import TuiexpError
from tuiexp.store import runstore
from tuiexp.store.paths import RunPaths
from tuiexp.trainer import data as datasets
from tuiexp.trainer import models
from tuiexp.trainer.__main__ import (
    amp_dtype,
    apply_run_settings,
    build_model,
    main,
    make_setup,
    new_state,
    note_best,
    pick_device,
)
from tuiexp.trainer.augment import prepare
from tuiexp.trainer.config import PARAMS, TABLES, TrainConfig, from_params, specs, unused_params
from tuiexp.trainer.loop import (
    State,
    loss_of,
    mix_batch,
    mixing_in,
    optimizer_step,
    steps_per_epoch,
)
from tuiexp.trainer.optim import lr_at

from .conftest import TINY, make_run, read_events

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[2]

#: param -> the tests here that prove it changes behaviour (filled by @proves)
PROVEN: dict[str, list[str]] = {}
#: params whose behaviour test lives in another file (checked to exist)
ELSEWHERE = {
    "early_stop.patience": "test_e2e.py::test_early_stopping_follows_the_primary_metric_and_its_mode",
}


def proves(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(test: Callable[..., None]) -> Callable[..., None]:
        for name in names:
            PROVEN.setdefault(name, []).append(test.__name__)
        return test
    return register


def every_param() -> list[str]:
    """Each declared param, and each key of the table params (`augment.flip`)."""
    nested = [f"{table}.{key}" for table, cls in TABLES.items() for key in specs(cls)]
    return [*PARAMS, *nested]


@pytest.mark.parametrize("name", every_param())
def test_every_param_has_a_behaviour_test(name: str) -> None:
    assert name in PROVEN or name in ELSEWHERE, (
        f"param `{name}` has no test that proves it changes behaviour: add one to "
        "tests/trainer/test_params.py and mark it @proves(...)")


def test_tests_named_elsewhere_exist() -> None:
    for where in ELSEWHERE.values():
        file, _, test = where.partition("::")
        assert f"def {test}(" in (Path(__file__).parent / file).read_text(), where


# -- helpers ----------------------------------------------------------------------------


def cfg_of(**params: Any) -> TrainConfig:
    """TINY with `params` on top, as the trainer would build it."""
    return from_params({**TINY, **params})


def load(**params: Any) -> datasets.Data:
    return datasets.load(cfg_of(**params), CPU)


def model_of(cfg: TrainConfig, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return build_model(cfg, make_setup(cfg, CPU, num_classes), in_channels)


def state_of(cfg: TrainConfig, epoch: int = 1) -> State:
    apply_run_settings(cfg)
    setup = make_setup(cfg, CPU, 10)
    return new_state(cfg, setup, build_model(cfg, setup, 3), cfg.phase_at(epoch))


def write_idx(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(head + arr.astype(np.uint8).tobytes())


def write_mnist(root: Path) -> None:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(20) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (4, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(4))


def uint8_batch(n: int = 16, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


# -- data --------------------------------------------------------------------------------


@proves("dataset", "data_root")
def test_dataset_and_data_root_pick_the_files_read(tmp_path: Path) -> None:
    shapes = load()
    assert shapes.image_shape == (3, 16, 16) and shapes.classes[0] == "circle"
    write_mnist(tmp_path)
    mnist = load(dataset="mnist", data_root=str(tmp_path), val_split="test")
    assert mnist.image_shape == (1, 28, 28) and mnist.classes[0] == "0"
    assert (len(mnist.train), len(mnist.val)) == (20, 4)
    with pytest.raises(datasets.DataNotFound, match=re.escape(f"MNIST not found under {tmp_path / 'elsewhere'}/")):
        load(dataset="mnist", data_root=str(tmp_path / "elsewhere"))


@proves("download")
def test_download_fetches_a_missing_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no internet in tests: torchvision's fetch is stood in for by writing the files it would
    fetched: list[str] = []

    def fetch(cfg: TrainConfig, cls_name: str, **kw: Any) -> None:
        fetched.append(cls_name)
        write_mnist(Path(cfg.data_root))

    monkeypatch.setattr(datasets, "_download", fetch)
    with pytest.raises(datasets.DataNotFound, match="set download = true"):
        load(dataset="mnist", data_root=str(tmp_path))
    assert fetched == []
    assert len(load(dataset="mnist", data_root=str(tmp_path), download=True).train) > 0
    assert fetched == ["MNIST"]
    load(dataset="mnist", data_root=str(tmp_path), download=True)  # present: not fetched again
    assert fetched == ["MNIST"]


@proves("val_split", "num_train")
def test_val_split_holds_out_a_fraction_of_num_train_or_uses_the_test_split() -> None:
    d = load(num_train=200, val_split=0.1)
    assert (len(d.train), len(d.val)) == (180, 20)
    d = load(num_train=200, val_split=0.25)
    assert (len(d.train), len(d.val)) == (150, 50)
    d = load(num_train=200, num_test=30, val_split="test")
    assert (len(d.train), len(d.val)) == (200, 30)


@proves("num_test")
def test_num_test_sizes_the_validation_set_it_is_used_for() -> None:
    """The smoke experiment's `num_test = 500` validates on 500 images (it once used 100
    held-out train images and ignored num_test); a num_test that cannot be used says so."""
    smoke = loader.load(REPO / "experiments.toml").expand("smoke")[0]
    cfg = from_params(smoke)
    d = datasets.load(cfg, CPU)
    assert cfg.num_test == 500 and len(d.val) == 500 and len(d.train) == cfg.num_train
    assert unused_params(cfg) == []
    assert len(load(num_test=40, val_split="test").val) == 40
    assert len(load(num_test=80, val_split="test").val) == 80
    held_out = cfg_of(num_test=80, val_split=0.125)
    assert [m.split(":")[0] for m in unused_params(held_out)] == ["num_test = 80 is unused"]


def test_params_a_dataset_does_not_read_are_named() -> None:
    cfg = cfg_of(dataset="cifar10", num_train=100, image_size=64, num_workers=4)
    said = " | ".join(unused_params(cfg))
    for key in ("num_train = 100", "image_size = 64", "num_workers = 4"):
        assert f"{key} is unused" in said
    assert unused_params(cfg_of()) == []


@proves("image_size")
def test_image_size_sets_the_side_of_shapes() -> None:
    assert load(image_size=16).image_shape == (3, 16, 16)
    assert load(image_size=24).image_shape == (3, 24, 24)


@proves("data_seed")
def test_data_seed_draws_other_images_and_another_split() -> None:
    a, b, c = load(data_seed=0), load(data_seed=0), load(data_seed=1)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.train.x, c.train.x)
    assert torch.equal(a.train.x, load(seed=5).train.x)  # the run seed leaves the data alone


@proves("normalize")
def test_normalize_sets_the_mean_and_std() -> None:
    auto = load()
    assert not torch.allclose(auto.mean, torch.tensor([0.5, 0.5, 0.5]))
    given = load(normalize={"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.25]})
    assert torch.allclose(given.mean, torch.tensor([0.5, 0.4, 0.3]))
    assert torch.allclose(given.std, torch.tensor([0.2, 0.2, 0.25]))


@proves("num_workers")
def test_num_workers_sizes_the_imagefolder_loader(tmp_path: Path) -> None:
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "train" / cls / f"{i}.png")
    for workers in (0, 2):
        d = load(dataset="imagefolder", data_root=str(tmp_path), image_size=8, num_workers=workers)
        assert isinstance(d.train, datasets.FolderSource)
        assert d.train.loader(2, train=True).num_workers == workers


@proves("data_on_device")
def test_data_on_device_decides_where_tensor_data_live() -> None:
    gpu, small, big = torch.device("cuda"), 1 << 20, 8 << 30
    assert datasets.on_device(cfg_of(), gpu, small) and not datasets.on_device(cfg_of(), gpu, big)
    assert datasets.on_device(cfg_of(data_on_device=True), gpu, big)
    assert not datasets.on_device(cfg_of(data_on_device=False), gpu, small)


# -- model ------------------------------------------------------------------------------


@proves("model", "model_args")
def test_model_and_model_args_pick_the_network_and_its_size() -> None:
    resnet, vgg = model_of(cfg_of()), model_of(cfg_of(model="vgg", model_args={"widths": [8, 16]}))
    assert any(isinstance(m, nn.MaxPool2d) for m in vgg.modules())
    assert not any(isinstance(m, nn.MaxPool2d) for m in resnet.modules())
    wide = model_of(cfg_of(model_args={"widths": [16, 32], "depths": [1, 1]}))
    deep = model_of(cfg_of(model_args={"widths": [8, 16], "depths": [2, 2]}))
    n = models.num_params
    assert n(wide) > 2 * n(resnet) and n(deep) > n(resnet)


@proves("dropout")
def test_dropout_sets_the_head_dropout() -> None:
    ps = [m.p for m in model_of(cfg_of(dropout=0.3)).modules() if isinstance(m, nn.Dropout)]
    assert ps and ps[-1] == 0.3
    assert all(m.p == 0.0 for m in model_of(cfg_of()).modules() if isinstance(m, nn.Dropout))


# -- optimisation -----------------------------------------------------------------------


@proves("optimizer", "lr", "momentum", "nesterov", "weight_decay")
def test_the_optimizer_is_the_one_the_params_name() -> None:
    sgd = state_of(cfg_of(optimizer="sgd", lr=0.3, momentum=0.8, nesterov=False, weight_decay=1e-3)).opt
    assert type(sgd) is torch.optim.SGD
    g = sgd.param_groups
    assert (g[0]["lr"], g[0]["momentum"], g[0]["nesterov"]) == (0.3, 0.8, False)
    assert (g[0]["weight_decay"], g[1]["weight_decay"]) == (1e-3, 0.0)  # norms and biases: none
    assert state_of(cfg_of(optimizer="sgd", nesterov=True)).opt.param_groups[0]["nesterov"]
    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                      ("rmsprop", torch.optim.RMSprop)):
        opt = state_of(cfg_of(optimizer=name, lr=0.002, momentum=0.5, weight_decay=0.01)).opt
        assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.002
        assert opt.param_groups[0]["weight_decay"] == 0.01
    assert state_of(cfg_of(optimizer="rmsprop", momentum=0.5)).opt.param_groups[0]["momentum"] == 0.5


def lrs(cfg: TrainConfig, spe: int = 10) -> list[float]:
    """The LR at the first step of each epoch of the run."""
    out = []
    for epoch in range(1, cfg.epochs + 1):
        phase = cfg.phase_at(epoch)
        out.append(lr_at(phase, max(0, epoch - 1 - phase.start), 0, spe))
    return out


@proves("scheduler", "scheduler_args")
def test_scheduler_and_its_args_shape_the_lr() -> None:
    const = lrs(cfg_of(epochs=4, lr=0.1, scheduler="constant"))
    assert const == [0.1] * 4
    cosine = lrs(cfg_of(epochs=4, lr=0.1, scheduler="cosine"))
    assert cosine[0] == 0.1 and cosine[1] < cosine[0] and cosine[3] < cosine[2]
    step = lrs(cfg_of(epochs=4, lr=0.1, scheduler="step", scheduler_args={"step_size": 1, "gamma": 0.5}))
    assert step == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    floor = lrs(cfg_of(epochs=4, lr=0.1, scheduler="cosine", scheduler_args={"eta_min": 0.05}))
    assert min(floor) > 0.05 and min(cosine) < 0.05


@proves("warmup_epochs")
def test_warmup_ramps_up_to_lr() -> None:
    warm = lrs(cfg_of(epochs=4, lr=0.1, scheduler="constant", warmup_epochs=2))
    assert warm[0] < 0.01 and warm[1] == pytest.approx(0.055) and warm[2:] == [0.1, 0.1]


@proves("epochs", "schedule", "schedule_start")
def test_schedule_phases_and_their_start() -> None:
    cfg = cfg_of(epochs=4, schedule=[{"epochs": 1, "optimizer": "adam", "lr": 1e-3},
                                     {"optimizer": "sgd", "lr": 0.1, "scheduler": "constant"}])
    assert [cfg.phase_at(e).optimizer for e in (1, 2, 3, 4)] == ["adam", "sgd", "sgd", "sgd"]
    assert lrs(cfg)[1:] == [0.1, 0.1, 0.1] and cfg.phases[-1].end == 4
    assert cfg_of(epochs=7).phases[-1].end == 7
    # a fork at epoch 2 that changed the lr: its cosine starts over from the fork epoch
    forked = lrs(cfg_of(epochs=4, lr=0.1, schedule_start=2))
    assert forked[2] == 0.1 and forked[3] < 0.1
    assert lrs(cfg_of(epochs=4, lr=0.1))[2] < 0.1


@proves("batch_size")
def test_batch_size_sets_the_steps_of_an_epoch() -> None:
    d = load()
    for bs in (16, 32):
        s = state_of(cfg_of(batch_size=bs))
        assert s.batch_size == bs
        batches = list(d.train.batches(s.batch_size, s.gen))
        assert len(batches) == steps_per_epoch(len(d.train), bs) == len(d.train) // bs
        assert {len(y) for _, y in batches} == {bs}


@proves("grad_clip")
def test_grad_clip_bounds_the_update() -> None:
    def update_norm(grad_clip: float) -> float:
        cfg = cfg_of(optimizer="sgd", lr=1.0, momentum=0.0, weight_decay=0.0, grad_clip=grad_clip)
        s = state_of(cfg)
        before = [p.detach().clone() for p in s.model.parameters()]
        loss = s.model(torch.randn(8, 3, 16, 16)).pow(2).sum() * 100
        optimizer_step(s, loss, cfg)
        deltas = [(p.detach() - b).flatten() for p, b in zip(s.model.parameters(), before, strict=True)]
        return float(torch.cat(deltas).norm())

    assert update_norm(0.5) == pytest.approx(0.5, rel=1e-3)
    assert update_norm(0.0) > 5


@proves("label_smoothing")
def test_label_smoothing_enters_the_training_loss() -> None:
    out, target = torch.full((4, 10), -20.0), torch.arange(4)
    out[torch.arange(4), target] = 20.0  # sure and right
    assert float(loss_of(out, target, cfg_of())) < 1e-6
    assert float(loss_of(out, target, cfg_of(label_smoothing=0.2))) > 1


# -- regularisation ---------------------------------------------------------------------


def mixed(cfg: TrainConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    s = state_of(cfg)
    s.rng, s.gen = random.Random(seed), torch.Generator().manual_seed(seed)
    x, y = torch.rand(16, 3, 16, 16), torch.arange(16) % 10
    mx, target = mix_batch(s, cfg, x, y, 10)
    return x, y, mx, target


@proves("mixup")
def test_mixup_blends_images_and_targets() -> None:
    x, y, mx, target = mixed(cfg_of(mixup=0.4))
    assert target.shape == (16, 10) and torch.allclose(target.sum(1), torch.ones(16))
    assert (target.max(1).values < 1).any() and not torch.equal(mx, x)
    assert not mixing_in(cfg_of(), 1)  # off by default


@proves("cutmix")
def test_cutmix_pastes_a_patch() -> None:
    x, _, mx, target = mixed(cfg_of(cutmix=1.0))
    changed = (mx != x).any(1)  # N x H x W: where pixels came from another image
    assert changed.any() and not changed.all() and target.shape == (16, 10)
    assert mixing_in(cfg_of(cutmix=1.0), 1)


@proves("mix_prob")
def test_mix_prob_is_the_share_of_mixed_batches() -> None:
    def share(p: float) -> float:
        cfg = cfg_of(mixup=0.4, mix_prob=p)
        s = state_of(cfg)
        x, y = torch.rand(4, 3, 8, 8), torch.arange(4)
        return sum(mix_batch(s, cfg, x, y, 10)[1].ndim == 2 for _ in range(200)) / 200

    assert share(0.0) == 0.0 and share(1.0) == 1.0 and 0.15 < share(0.3) < 0.45


@proves("mix_off_epoch")
def test_mix_off_epoch_is_the_last_mixed_epoch() -> None:
    assert [mixing_in(cfg_of(mixup=0.2, mix_off_epoch=2), e) for e in (1, 2, 3)] == [True, True, False]
    assert all(mixing_in(cfg_of(mixup=0.2), e) for e in (1, 50))


AUG_OFF = {"crop_padding": 0, "flip": False, "color_jitter": 0.0, "rotation": 0.0, "erasing": 0.0}


@proves("augment", *(f"augment.{k}" for k in AUG_OFF))
@pytest.mark.parametrize(("key", "on"), [("crop_padding", 4), ("flip", True), ("color_jitter", 0.4),
                                         ("rotation", 30.0), ("erasing", 1.0)])
def test_each_augment_key_changes_the_training_batch(key: str, on: Any) -> None:
    x, mean, std = uint8_batch(), torch.full((3,), 0.5), torch.full((3,), 0.25)

    def batch(augment: dict[str, Any]) -> torch.Tensor:
        cfg = cfg_of(augment=augment)
        return prepare(x, mean, std, cfg.augment, torch.Generator().manual_seed(0))

    plain = prepare(x, mean, std, None, None)
    assert torch.equal(batch(AUG_OFF), plain)  # all off: only normalised
    assert not torch.equal(batch({**AUG_OFF, key: on}), plain)
    if key == "erasing":
        assert (batch({**AUG_OFF, key: on}) == 0).flatten(1).any(1).all()  # every image has a hole


@proves("ema")
def test_ema_keeps_an_average_of_the_weights() -> None:
    assert state_of(cfg_of()).ema is None
    cfg = cfg_of(ema=0.9, optimizer="sgd", lr=0.5, weight_decay=0.0)
    s = state_of(cfg)
    assert s.ema is not None and s.ema.decay == 0.9
    w0 = next(s.model.parameters()).detach().clone()
    optimizer_step(s, s.model(torch.randn(4, 3, 16, 16)).sum(), cfg)
    w1, ema = next(s.model.parameters()).detach(), next(s.ema.model.parameters())
    assert torch.allclose(ema, 0.9 * w0 + 0.1 * w1, atol=1e-6) and not torch.equal(w0, w1)


@proves("early_stop", "early_stop.metric", "early_stop.mode")
def test_early_stop_metric_and_mode_decide_what_is_better() -> None:
    def bests(values: list[float], **es: Any) -> list[bool]:
        cfg = cfg_of(early_stop=es)
        s = state_of(cfg)
        return [note_best(s, cfg, v) for v in values]

    assert cfg_of().early_stop.metric == "val_acc"
    assert cfg_of(early_stop={"metric": "val_loss"}).early_stop.mode == "min"
    assert bests([0.5, 0.4, 0.6]) == [True, False, True]  # val_acc: higher is better
    assert bests([0.5, 0.4, 0.6], metric="val_loss") == [True, True, False]
    assert bests([0.5, 0.4, 0.6], metric="val_acc", mode="min") == [True, True, False]


# -- run --------------------------------------------------------------------------------


@proves("seed")
def test_seed_sets_init_shuffling_and_augmentation() -> None:
    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = state_of(cfg_of(seed=seed))
        return next(s.model.parameters()).detach().clone(), torch.randperm(50, generator=s.gen)

    (w0, o0), (w0b, o0b), (w1, o1) = draw(0), draw(0), draw(1)
    assert torch.equal(w0, w0b) and torch.equal(o0, o0b)
    assert not torch.equal(w0, w1) and not torch.equal(o0, o1)


@proves("device")
def test_device_picks_where_to_train() -> None:
    assert pick_device("cpu") == CPU
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TuiexpError, match="this machine has no CUDA device"):
            pick_device("cuda:0")
    assert make_setup(cfg_of(device="cpu"), CPU, 10).device == CPU


@proves("compile")
def test_compile_wraps_the_model() -> None:
    plain = state_of(cfg_of())
    assert plain.forward is plain.model
    compiled = state_of(cfg_of(compile=True))
    assert compiled.forward is not compiled.model and compiled.forward._orig_mod is compiled.model


@proves("amp")
def test_amp_picks_the_autocast_dtype_and_the_scaler() -> None:
    gpu = torch.device("cuda")
    assert amp_dtype("auto", CPU) is None and amp_dtype("auto", gpu) is torch.bfloat16
    assert amp_dtype(False, gpu) is None and amp_dtype(True, CPU) is torch.bfloat16
    assert amp_dtype("bf16", CPU) is torch.bfloat16 and amp_dtype("fp16", gpu) is torch.float16
    assert state_of(cfg_of(amp="fp16")).scaler is not None
    assert state_of(cfg_of(amp="bf16")).scaler is None
    assert make_setup(cfg_of(amp=True), CPU, 10).amp_dtype is torch.bfloat16


@proves("channels_last")
def test_channels_last_sets_the_memory_format() -> None:
    assert not make_setup(cfg_of(), CPU, 10).channels_last  # auto: on with CUDA only
    cfg = cfg_of(channels_last=True)
    setup = make_setup(cfg, CPU, 10)
    x = prepare(uint8_batch(), torch.zeros(3), torch.ones(3), None, None, setup.channels_last)
    assert setup.channels_last and x.is_contiguous(memory_format=torch.channels_last)
    conv = next(m for m in build_model(cfg, setup, 3).modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@proves("threads")
def test_threads_sets_torchs_thread_count() -> None:
    before = torch.get_num_threads()
    try:
        apply_run_settings(cfg_of(threads=2))
        assert torch.get_num_threads() == 2
        apply_run_settings(cfg_of(threads=0))  # 0: torch's own count stays
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- params that show in a run: tiny runs of the real trainer, in this process ---------


def run_here(root: Path, params: dict[str, Any], run_id: str, **spec: Any) -> tuple[RunPaths, int, str]:
    """Train a run to its end in this process (the trainer's `main`, as `python -m
    tuiexp.trainer` calls it); returns its paths, exit code and stdout."""
    paths = make_run(root, {**TINY, **params}, run_id=run_id, **spec)
    out = io.StringIO()
    run = track.init(paths.dir)
    try:
        with redirect_stdout(out):
            rc = main(from_params(run.params, run.spec.get("metric"), run.spec.get("mode")), run)
    finally:
        torch.set_num_threads(1)
    return paths, rc, out.getvalue()


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunPaths, int, str]]:
    """3 epochs of 7 steps, a step event every 3rd step, every 2nd checkpoint kept; the
    best is always the latest (the cosine lr falls, and lr/min is the primary metric)."""
    yield run_here(tmp_path_factory.mktemp("logs"), {"epochs": 3, "log_every": 3, "checkpoint_every": 2},
                   "counted", metric="lr", mode="min")


@proves("epochs")
def test_epochs_is_the_number_of_epoch_events(counted: tuple[RunPaths, int, str]) -> None:
    paths, rc, _ = counted
    assert rc == 0 and [e["epoch"] for e in read_events(paths, "epoch")] == [1, 2, 3]


@proves("log_every")
def test_log_every_spaces_the_step_events(counted: tuple[RunPaths, int, str]) -> None:
    paths, _, _ = counted
    assert [e["step"] for e in read_events(paths, "step")] == [3, 6, 9, 12, 15, 18, 21]


@proves("checkpoint_every")
def test_checkpoint_every_keeps_every_nth_epoch_and_the_last(counted: tuple[RunPaths, int, str]) -> None:
    paths, _, _ = counted
    assert runstore.checkpoint_epochs(paths) == [2, 3]  # 1 dropped; with 1 all three stay (test_e2e)


def test_stdout_tells_the_story_an_epoch_line_and_a_step_line_every_log_every(
        counted: tuple[RunPaths, int, str]) -> None:
    paths, _, out = counted
    lines = out.splitlines()
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    steps = [ln for ln in lines if ln.startswith("  step ")]
    assert [ln.split()[1] for ln in epochs] == ["1/3", "2/3", "3/3"]
    assert [ln.split()[1] for ln in steps] == ["3", "6", "9", "12", "15", "18", "21"]
    assert steps[0].startswith("  step 3  epoch 1 [3/7]  train_loss ")
    assert steps[-1].startswith("  step 21  epoch 3 [7/7]  train_loss ")
    logged = read_events(paths, "step")[0]
    assert f"train_loss {logged['train_loss']:.4f}  lr {logged['lr']:.3g}" in steps[0]
    # in order: the steps of an epoch come before its line
    assert lines.index(steps[1]) < lines.index(epochs[0]) < lines.index(steps[2])  # 9 is in epoch 2


class OomNet(nn.Module):
    """A real small network that runs out of memory (as CUDA says it) above 8 images a
    training batch: what auto_batch_size is for."""

    def __init__(self, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def oom_net(num_classes: int, dropout: float = 0.0) -> nn.Module:
    return OomNet(num_classes, dropout)


@proves("auto_batch_size")
def test_auto_batch_size_retries_at_half_the_batch(tmp_path: Path) -> None:
    params = {"model": "tests.trainer.test_params:oom_net", "model_args": {}, "epochs": 1,
              "batch_size": 32}
    paths, rc, _ = run_here(tmp_path, {**params, "auto_batch_size": True}, "auto")
    assert rc == 0 and read_events(paths, "epoch")[0]["batch_size"] == 8
    notes = [m["note"] for m in read_events(paths, "meta") if "note" in m]
    assert notes[0] == "out of memory at batch_size 32: epoch 1 again at 16"
    paths, rc, _ = run_here(tmp_path, params, "fixed")
    status = read_events(paths, "status")[-1]
    assert rc == 4 and status["status"] == "oom" and "batch_size 32" in status["message"]


@proves("ema")
def test_with_ema_validation_uses_the_averaged_weights(tmp_path: Path) -> None:
    one = {"epochs": 1, "log_every": 100}
    plain, _, _ = run_here(tmp_path, one, "plain")
    averaged, _, _ = run_here(tmp_path, {**one, "ema": 0.999}, "ema")
    p, a = read_events(plain, "epoch")[0], read_events(averaged, "epoch")[0]
    assert a["train_loss"] == p["train_loss"]  # the same training: the EMA only watches
    assert a["val_loss"] != p["val_loss"]  # ... and is what validation measures


def test_a_param_that_does_nothing_is_a_warning_in_the_run(tmp_path: Path) -> None:
    paths, rc, out = run_here(tmp_path, {"epochs": 1, "num_test": 500}, "warned")
    warnings = [w["message"] for w in read_events(paths, "warning")]
    assert rc == 0 and len(warnings) == 1 and warnings[0].startswith("num_test = 500 is unused")
    assert f"warning: {warnings[0]}" in out
    assert not math.isnan(read_events(paths, "epoch")[0]["val_acc"])


@proves("param_budget")
def test_param_budget_warns_when_the_model_misses_it(tmp_path: Path) -> None:
    # the sizing itself (config → model_args within ±5 %) is tests/trainer/test_sizing.py
    paths, rc, _ = run_here(tmp_path, {"epochs": 1, "param_budget": 1e9}, "budget")
    assert rc == 0
    assert any("off its param_budget" in w["message"] for w in read_events(paths, "warning"))
