"""Datasets: read from their on-disk formats into uint8 tensors, split, and batch.

Datasets that fit (shapes, CIFAR, MNIST, SVHN) are held whole as a uint8
tensor, on the GPU when there is one, and batched by indexing: no DataLoader,
no per-image Python. ImageFolder decodes files in DataLoader workers. Either
way a batch arrives as uint8 on the device; augment.py does the rest there.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import TuiexpError
from . import shapes
from .config import TrainConfig

ON_DEVICE_MAX_BYTES = 4 << 30  # "auto" keeps a dataset on the GPU below this size

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGITS = tuple(str(i) for i in range(10))


class DataNotFound(TuiexpError):
    """A dataset is not where the params say it is."""

    exit_code = 2


Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class TensorSource:
    """A whole split as uint8 images (N x C x H x W) and int64 labels."""

    x: torch.Tensor
    y: torch.Tensor
    device: torch.device

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int, gen: torch.Generator | None = None) -> Iterator[Batch]:
        """Shuffled full batches when `gen` is given (training), else all in order."""
        n = len(self.y)
        if gen is None:
            for i in range(0, n, batch_size):
                yield self._take(slice(i, i + batch_size))
            return
        order = torch.randperm(n, generator=gen, device=gen.device).to(self.x.device)
        # drop the ragged last batch, unless that would leave no batch at all
        stop = n - n % batch_size if n >= batch_size else n
        for i in range(0, stop, batch_size):
            yield self._take(order[i : i + batch_size])

    def _take(self, idx: Any) -> Batch:
        x, y = self.x[idx], self.y[idx]
        if x.device != self.device:  # held in pinned host memory: copy asynchronously
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return x, y


class FolderSource:
    """Image files decoded by DataLoader workers, resized, as uint8."""

    def __init__(self, dataset: Any, device: torch.device, num_workers: int):
        self.dataset, self.device, self.num_workers = dataset, device, num_workers
        self._loaders: dict[tuple[int, bool], Any] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def loader(self, batch_size: int, train: bool) -> Any:
        """The DataLoader for this batch size (shuffled for training), its workers kept alive."""
        key = (batch_size, train)
        if key not in self._loaders:
            self._loaders[key] = torch.utils.data.DataLoader(
                self.dataset, batch_size=batch_size, shuffle=train,
                drop_last=train and len(self.dataset) >= batch_size,
                num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                pin_memory=self.device.type == "cuda",
                generator=torch.Generator().manual_seed(int(torch.randint(2**31, (1,)))),
            )
        return self._loaders[key]

    def batches(self, batch_size: int, gen: torch.Generator | None = None) -> Iterator[Batch]:
        for x, y in self.loader(batch_size, gen is not None):
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


@dataclass
class Data:
    train: TensorSource | FolderSource
    val: TensorSource | FolderSource
    classes: list[str]
    image_shape: tuple[int, int, int]  # C, H, W
    mean: torch.Tensor  # per channel, on the device, for inputs scaled to [0, 1]
    std: torch.Tensor


def load(cfg: TrainConfig, device: torch.device) -> Data:
    """The train and validation sources the params describe."""
    if cfg.dataset == "imagefolder":
        return _load_folder(cfg, device)
    (x, y), test, classes = _READERS[cfg.dataset](cfg)
    if cfg.val_split == "test":
        val_x, val_y = test
    else:
        # a seeded split: the same images are held out for every run with this data_seed
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.data_seed))
        n_val = max(1, round(len(y) * float(cfg.val_split)))
        val_x, val_y = x[order[:n_val]], y[order[:n_val]]
        x, y = x[order[n_val:]], y[order[n_val:]]
    mean, std = _normalization(cfg, x)
    keep = on_device(cfg, device, x.numel() + val_x.numel())
    return Data(
        train=_tensor_source(x, y, device, keep),
        val=_tensor_source(val_x, val_y, device, keep),
        classes=list(classes),
        image_shape=(x.shape[1], x.shape[2], x.shape[3]),  # N C H W
        mean=mean.to(device),
        std=std.to(device),
    )


def on_device(cfg: TrainConfig, device: torch.device, nbytes: int) -> bool:
    """Whether a tensor dataset of `nbytes` is held on `device` (data_on_device)."""
    if cfg.data_on_device == "auto":
        return device.type == "cpu" or nbytes <= ON_DEVICE_MAX_BYTES
    return bool(cfg.data_on_device)


def _tensor_source(x: torch.Tensor, y: torch.Tensor, device: torch.device, keep: bool) -> TensorSource:
    x, y = x.contiguous(), y.long()
    if keep:
        x, y = x.to(device), y.to(device)
    elif device.type == "cuda":
        x, y = x.pin_memory(), y.pin_memory()
    return TensorSource(x, y, device)


def _normalization(cfg: TrainConfig, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = x.shape[1]
    if cfg.normalize == "auto":
        flat = x[: 50_000].transpose(0, 1).reshape(c, -1).float() / 255
        return flat.mean(1), flat.std(1).clamp_min(1e-3)
    mean, std = torch.tensor(cfg.normalize["mean"]), torch.tensor(cfg.normalize["std"])  # type: ignore[index]  # not "auto": a {mean, std} table
    if len(mean) != c or len(std) != c:
        raise DataNotFound(f"normalize gives {len(mean)} means and {len(std)} stds for {c}-channel images.")
    return mean, std


# -- readers of the on-disk formats -------------------------------------------------

Split = tuple[torch.Tensor, torch.Tensor]


def _need(name: str, root: Path, paths: list[Path]) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        first = missing[0]
        # name the dataset's own folder when it is missing altogether, else the file
        looked = first.parent if first.parent != root and not first.parent.exists() else first
        raise DataNotFound(
            f"{name} not found under {root}/ (looked for {looked}); set download = true "
            "on a machine with internet, or data_root to where it is."
        )


def _download(cfg: TrainConfig, cls_name: str, **kw: Any) -> None:
    """Fetch a dataset with torchvision; we then read its files ourselves."""
    import torchvision.datasets as tvd  # lazily: importing torchvision costs seconds

    getattr(tvd, cls_name)(root=cfg.data_root, download=True, **kw)


def _read_shapes(cfg: TrainConfig) -> tuple[Split, Split, tuple[str, ...]]:
    train = shapes.generate(cfg.num_train, cfg.image_size, cfg.data_seed, "train")
    if cfg.val_split != "test":  # validation holds out train images: no test split to draw
        return train, (train[0][:0], train[1][:0]), shapes.CLASSES
    test = shapes.generate(cfg.num_test, cfg.image_size, cfg.data_seed, "test")
    return train, test, shapes.CLASSES


def _unpickle(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _cifar_split(batches: list[Path], label_key: str) -> Split:
    xs, ys = [], []
    for path in batches:
        d = _unpickle(path)
        xs.append(torch.as_tensor(d["data"], dtype=torch.uint8).reshape(-1, 3, 32, 32))
        ys.append(torch.as_tensor(d[label_key], dtype=torch.int64))
    return torch.cat(xs), torch.cat(ys)


def _read_cifar10(cfg: TrainConfig) -> tuple[Split, Split, tuple[str, ...]]:
    root = Path(cfg.data_root)
    base = root / "cifar-10-batches-py"
    files = [base / f"data_batch_{i}" for i in range(1, 6)] + [base / "test_batch", base / "batches.meta"]
    if cfg.download and not all(f.exists() for f in files):
        _download(cfg, "CIFAR10")
    _need("CIFAR-10", root, files)
    classes = tuple(_unpickle(base / "batches.meta")["label_names"])
    return _cifar_split(files[:5], "labels"), _cifar_split([files[5]], "labels"), classes


def _read_cifar100(cfg: TrainConfig) -> tuple[Split, Split, tuple[str, ...]]:
    root = Path(cfg.data_root)
    base = root / "cifar-100-python"
    files = [base / "train", base / "test", base / "meta"]
    if cfg.download and not all(f.exists() for f in files):
        _download(cfg, "CIFAR100")
    _need("CIFAR-100", root, files)
    classes = tuple(_unpickle(base / "meta")["fine_label_names"])
    return _cifar_split([files[0]], "fine_labels"), _cifar_split([files[1]], "fine_labels"), classes


def read_idx(path: Path) -> torch.Tensor:
    """An MNIST idx-ubyte file (optionally gzipped) as a uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DataNotFound(f"{path} is not an idx-ubyte file of bytes.")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def _mnist_like(cfg: TrainConfig, name: str, folder: str, classes: tuple[str, ...],
                ) -> tuple[Split, Split, tuple[str, ...]]:
    root = Path(cfg.data_root)
    raw = root / folder / "raw"
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    files = [raw / s if (raw / s).exists() or not (raw / f"{s}.gz").exists() else raw / f"{s}.gz"
             for s in stems]
    if cfg.download and not all(f.exists() for f in files):
        _download(cfg, folder)
        files = [raw / s for s in stems]
    _need(name, root, files)
    tx, ty, vx, vy = (read_idx(f) for f in files)
    return (tx.unsqueeze(1), ty.long()), (vx.unsqueeze(1), vy.long()), classes


def _read_mnist(cfg: TrainConfig) -> tuple[Split, Split, tuple[str, ...]]:
    return _mnist_like(cfg, "MNIST", "MNIST", DIGITS)


def _read_fashion(cfg: TrainConfig) -> tuple[Split, Split, tuple[str, ...]]:
    return _mnist_like(cfg, "Fashion-MNIST", "FashionMNIST", FASHION_CLASSES)


def _read_svhn(cfg: TrainConfig) -> tuple[Split, Split, tuple[str, ...]]:
    root = Path(cfg.data_root)
    files = [root / "train_32x32.mat", root / "test_32x32.mat"]
    if cfg.download:
        for name, f in zip(("train", "test"), files, strict=True):
            if not f.exists():
                _download(cfg, "SVHN", split=name)
    _need("SVHN", root, files)
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataNotFound("reading SVHN's .mat files needs scipy (pip install scipy).") from None

    def split(path: Path) -> Split:
        m = loadmat(path)
        x = torch.as_tensor(m["X"]).permute(3, 2, 0, 1).contiguous()  # H W C N -> N C H W
        y = torch.as_tensor(m["y"].astype("int64")).reshape(-1) % 10  # SVHN labels 0 as 10
        return x, y

    return split(files[0]), split(files[1]), DIGITS


_READERS = {
    "shapes": _read_shapes,
    "cifar10": _read_cifar10,
    "cifar100": _read_cifar100,
    "mnist": _read_mnist,
    "fashion_mnist": _read_fashion,
    "svhn": _read_svhn,
}


# -- ImageFolder ----------------------------------------------------------------------


def _load_folder(cfg: TrainConfig, device: torch.device) -> Data:
    import torchvision.datasets as tvd
    import torchvision.transforms.v2 as T

    root = Path(cfg.data_root)
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataNotFound(
            f"imagefolder data not found under {root}/ (looked for {train_dir}, "
            "with one folder of images per class); set data_root to where it is."
        )
    size = cfg.image_size
    # workers only decode and resize; augmentation happens on the device in batches
    tf = T.Compose([T.Resize((size, size), antialias=True), T.PILToTensor()])
    train = tvd.ImageFolder(str(train_dir), transform=tf)
    held = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if cfg.val_split == "test" or held is not None:
        if held is None:
            raise DataNotFound(f"val_split = \"test\" needs {root}/val or {root}/test.")
        val: Any = tvd.ImageFolder(str(held), transform=tf)
        if val.classes != train.classes:
            raise DataNotFound(f"{held} has classes {val.classes}, {train_dir} has {train.classes}.")
    else:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.data_seed))
        n_val = max(1, round(len(train) * float(cfg.val_split)))
        val = torch.utils.data.Subset(train, order[:n_val].tolist())
        train_all, train = train, torch.utils.data.Subset(train, order[n_val:].tolist())
        train.classes = train_all.classes  # type: ignore[attr-defined]  # a Subset keeps its folder's names
    if cfg.normalize == "auto":  # estimate from a sample: decoding everything would be slow
        sample = torch.stack([train[i][0] for i in range(min(256, len(train)))])
        mean, std = _normalization(cfg, sample)
    else:
        mean, std = _normalization(cfg, torch.zeros(1, 3, 1, 1, dtype=torch.uint8))
    return Data(
        train=FolderSource(train, device, cfg.num_workers),
        val=FolderSource(val, device, cfg.num_workers),
        classes=list(train.classes),
        image_shape=(3, size, size),
        mean=mean.to(device),
        std=std.to(device),
    )
