"""Dataset readers on small files written in the real on-disk formats, and the shapes set."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tuiexp.trainer import data, shapes
from tuiexp.trainer.config import from_params

CPU = torch.device("cpu")


def load(root: Path, dataset: str, **params: object) -> data.Data:
    return data.load(from_params({"dataset": dataset, "data_root": str(root), **params}), CPU)


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def test_shapes_is_deterministic_balanced_and_named() -> None:
    x, y = shapes.generate(200, 16, 7, "train")
    x2, y2 = shapes.generate(200, 16, 7, "train")
    xt, _ = shapes.generate(200, 16, 7, "test")
    assert torch.equal(x, x2) and torch.equal(y, y2) and not torch.equal(x, xt)
    assert x.shape == (200, 3, 16, 16) and x.dtype == torch.uint8
    assert y.bincount().tolist() == [20] * 10
    assert len(shapes.CLASSES) == 10 and "ellipse" in shapes.CLASSES
    assert x.float().std() > 20  # images, not blanks


def test_shapes_split_and_auto_normalisation() -> None:
    d = load(Path("unused"), "shapes", num_train=100, num_test=40, image_size=16, val_split=0.2)
    assert (len(d.train), len(d.val)) == (80, 20)
    assert d.image_shape == (3, 16, 16) and d.classes == list(shapes.CLASSES)
    assert d.mean.shape == (3,) and (0.2 < d.mean).all() and (d.mean < 0.8).all()
    d = load(Path("unused"), "shapes", num_train=100, num_test=40, image_size=16, val_split="test")
    assert (len(d.train), len(d.val)) == (100, 40)


def test_cifar10_pickle_batches(tmp_path: Path) -> None:
    base = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        write_pickle(base / f"data_batch_{i}", {"data": cifar_rows(4, i), "labels": [i % 10] * 4})
    write_pickle(base / "test_batch", {"data": cifar_rows(3, 9), "labels": [7, 8, 9]})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_pickle(base / "batches.meta", {"label_names": names})
    d = load(tmp_path, "cifar10", val_split="test", normalize={"mean": [0.5] * 3, "std": [0.25] * 3})
    assert len(d.train) == 20 and len(d.val) == 3 and d.classes == names
    assert d.train.x.shape == (20, 3, 32, 32) and d.train.y.tolist()[:4] == [1] * 4
    assert torch.equal(d.train.x[0].flatten(), torch.as_tensor(cifar_rows(4, 1)[0]))
    assert d.val.y.tolist() == [7, 8, 9]


def test_cifar100_files(tmp_path: Path) -> None:
    base = tmp_path / "cifar-100-python"
    write_pickle(base / "train", {"data": cifar_rows(10, 0), "fine_labels": list(range(10))})
    write_pickle(base / "test", {"data": cifar_rows(2, 1), "fine_labels": [98, 99]})
    write_pickle(base / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    d = load(tmp_path, "cifar100", val_split=0.2)
    assert (len(d.train), len(d.val), len(d.classes)) == (8, 2, 100)
    assert sorted(d.train.y.tolist() + d.val.y.tolist()) == list(range(10))


def write_idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize(("dataset", "folder", "first_class"),
                         [("mnist", "MNIST", "0"), ("fashion_mnist", "FashionMNIST", "T-shirt/top")])
def test_mnist_idx_files(tmp_path: Path, dataset: str, folder: str, first_class: str) -> None:
    raw = tmp_path / folder / "raw"
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (6, 28, 28))
    write_idx(raw / "train-images-idx3-ubyte", train)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(6))
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (2, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([3, 4]))
    d = load(tmp_path, dataset, val_split="test")
    assert d.image_shape == (1, 28, 28) and d.classes[0] == first_class and len(d.classes) == 10
    assert torch.equal(d.train.x[:, 0], torch.as_tensor(train, dtype=torch.uint8))
    assert d.train.y.tolist() == list(range(6)) and d.val.y.tolist() == [3, 4]
    assert d.mean.shape == (1,)


def test_svhn_mat_files(tmp_path: Path) -> None:
    sio = pytest.importorskip("scipy.io", reason="SVHN's .mat files need scipy, not installed here")
    rng = np.random.default_rng(0)
    sio.savemat(tmp_path / "train_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8),
                                               "y": np.array([[10], [1], [2], [3], [4]])})
    sio.savemat(tmp_path / "test_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, 2), dtype=np.uint8),
                                              "y": np.array([[5], [10]])})
    d = load(tmp_path, "svhn", val_split="test")
    assert d.train.x.shape == (5, 3, 32, 32) and d.train.y.tolist() == [0, 1, 2, 3, 4]
    assert d.val.y.tolist() == [5, 0]


def test_imagefolder_pngs(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for cls in ("cats", "dogs"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    d = load(tmp_path, "imagefolder", image_size=16, num_workers=0)
    assert d.classes == ["cats", "dogs"] and (len(d.train), len(d.val)) == (8, 4)
    x, y = next(d.train.batches(4, torch.Generator().manual_seed(0)))
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.uint8 and set(y.tolist()) <= {0, 1}
    batches = list(d.val.batches(3))
    assert [len(b[1]) for b in batches] == [3, 1]


@pytest.mark.parametrize(("dataset", "name", "looked"), [
    ("cifar10", "CIFAR-10", "cifar-10-batches-py"),
    ("cifar100", "CIFAR-100", "cifar-100-python"),
    ("mnist", "MNIST", "MNIST/raw"),
    ("svhn", "SVHN", "train_32x32.mat"),
    ("imagefolder", "imagefolder data", "train"),
])
def test_missing_data_is_one_sentence(tmp_path: Path, dataset: str, name: str, looked: str) -> None:
    with pytest.raises(data.DataNotFound) as info:
        load(tmp_path / "nowhere", dataset)
    message = str(info.value)
    assert message.startswith(f"{name} not found under {tmp_path / 'nowhere'}/")
    assert looked in message


def test_tensor_batches_shuffle_full_batches_and_evaluate_all() -> None:
    src = data.TensorSource(torch.arange(10).view(10, 1, 1, 1).to(torch.uint8), torch.arange(10), CPU)
    train = list(src.batches(4, torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in train] == [4, 4]
    assert len(set(torch.cat([y for _, y in train]).tolist())) == 8
    assert [y.tolist() for _, y in src.batches(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
