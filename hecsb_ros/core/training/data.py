"""Training data for the distillation tools: Fashion-MNIST in memory, or an ImageNet-style
folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hecsb_ros.core.teachers.spec import ClassifierSpec, images_to_tensor
from hecsb_ros.core.training.common import Augment

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


@dataclass
class TensorSource:
    """Normalised images ``(N, C, H, W)`` and labels ``(N,)`` held in memory."""

    x: torch.Tensor
    y: torch.Tensor
    augment: Augment | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batch(
        self, idx: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels at ``idx``; augmented when ``gen`` is given and augmentation is
        set."""
        xb = self.x[idx]
        if gen is not None and self.augment is not None:
            xb = self.augment(xb, gen)
        return xb, self.y[idx]


def fashion_mnist_source(
    split: str,
    spec: ClassifierSpec,
    limit: int | None = None,
    augment: Augment | None = None,
    root: Path | None = None,
) -> TensorSource:
    """Fashion-MNIST ``split`` as a :class:`TensorSource` normalised for ``spec``."""
    from hecsb_ros.core.datasets import load_fashion_mnist

    data = load_fashion_mnist(split, root).subset(limit)
    return TensorSource(
        images_to_tensor(data.images[..., None], spec), torch.from_numpy(data.labels), augment
    )


class FolderSource:
    """An ImageNet-style folder ``root/<class>/<image>``; labels are the sorted class folders'
    indices.

    A full ImageNet train or val folder (1,000 WordNet-id folders) thus gets the standard class
    indices of torchvision's ResNet-50. Images are decoded per batch: resized (shorter side
    ``resize``) and centre-cropped to ``spec.input_size``; when training, a random crop and
    horizontal flip replace the centre crop.
    """

    def __init__(
        self,
        root: Path | str,
        spec: ClassifierSpec,
        limit: int | None = None,
        resize: int | None = None,
    ) -> None:
        root = Path(root)
        classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        items = [
            (f, i)
            for i, c in enumerate(classes)
            for f in sorted((root / c).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not items:
            raise FileNotFoundError(f"no images in {root}: expected {root}/<class>/<image>.jpg")
        self.spec = spec
        self.classes = classes
        self.files = [f for f, _ in items][:limit]
        self.y = torch.tensor([i for _, i in items][:limit], dtype=torch.int64)
        self.resize = resize or round(spec.input_size[0] * 256 / 224)

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path, rng: np.random.Generator | None) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB" if self.spec.in_channels == 3 else "L")
            w, h = im.size
            scale = self.resize / min(w, h)
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[..., None]
        th, tw = self.spec.input_size
        H, W = arr.shape[:2]
        if H < th or W < tw:
            raise ValueError(f"{path}: {H}x{W} after resizing is smaller than {th}x{tw}")
        if rng is None:
            top, left = (H - th) // 2, (W - tw) // 2
        else:
            top, left = int(rng.integers(0, H - th + 1)), int(rng.integers(0, W - tw + 1))
        arr = arr[top : top + th, left : left + tw]
        if rng is not None and rng.random() < 0.5:
            arr = arr[:, ::-1]
        return arr

    @property
    def x(self) -> "FolderImages":
        """The images as a lazy ``(N, C, H, W)`` sequence (centre crops, decoded when indexed)."""
        return FolderImages(self)

    def batch(
        self, idx: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rng = (
            None
            if gen is None
            else np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen)))
        )
        arrays = np.stack([self._load(self.files[int(i)], rng) for i in idx])
        return images_to_tensor(arrays, self.spec), self.y[idx]


class FolderImages:
    """Lazy view of a :class:`FolderSource`'s images: ``len()`` and indexing by a slice or an index
    tensor, like a ``(N, C, H, W)`` tensor, decode only the images asked for, so an evaluation loop
    over a 50,000-image folder holds one batch in memory, not the whole set."""

    def __init__(self, source: FolderSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: slice | torch.Tensor) -> torch.Tensor:
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        return self.source.batch(torch.as_tensor(idx))[0]


class PixelSource:
    """A source's images as pixels in [0, 1] ``(N, C, H, W)``, the classifier's normalisation
    undone (what the input codecs compress); ``source[idx]`` reads one batch (folder images
    centre-cropped)."""

    def __init__(self, source: TensorSource | FolderSource, spec: ClassifierSpec) -> None:
        self.source = source
        self._mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
        self._std = torch.tensor(spec.std).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        x, _ = self.source.batch(idx)
        return (x * self._std + self._mean).clamp(0, 1)
