"""Data and measurement noise for the compressed-sensing experiment (section 4.1).

Images are flattened to ``n = 784`` and scaled to [0, 1]. The measurement noise ``eps`` of eq. 1
(isotropic Gaussian, eq. 3) is drawn once per (data set, ``m``, image) from a seeded generator so
that every method sees the same noise realisation on a given image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hecsb_ros.core.datasets import load_dataset

DISPLAY_NAMES: dict[str, str] = {
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST (in place of Omniglot)",
}


@dataclass(frozen=True)
class CSData:
    """Flattened float32 images in [0, 1]: ``train`` / ``val`` (split off the training set),
    ``test``."""

    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.train.shape[1])


def to_unit_vectors(images: np.ndarray) -> torch.Tensor:
    """``(N, 28, 28)`` uint8 -> ``(N, 784)`` float32 in [0, 1]."""
    flat = images.reshape(images.shape[0], -1).astype(np.float32) / 255.0
    return torch.from_numpy(flat)


def load_cs_data(
    name: str,
    train_subset: int | None = None,
    val_size: int = 1000,
    test_subset: int | None = None,
) -> CSData:
    """Load data set ``name``; the last ``val_size`` training images form the validation split.

    ``train_subset`` caps the remaining training images (first ones), ``test_subset`` takes the
    first test images (the same images for every method).
    """
    train_all = to_unit_vectors(load_dataset(name, "train").images)
    if val_size <= 0 or val_size >= train_all.shape[0]:
        raise ValueError("val_size must be positive and smaller than the training set")
    val = train_all[-val_size:]
    train = train_all[:-val_size]
    if train_subset is not None:
        train = train[:train_subset]
    test = to_unit_vectors(load_dataset(name, "test").images)
    if test_subset is not None:
        test = test[:test_subset]
    return CSData(
        name=name, train=train.contiguous(), val=val.contiguous(), test=test.contiguous()
    )


def stream_seed(seed: int, *keys: int) -> int:
    """A reproducible 63-bit seed for one stream (e.g. ``(seed, dataset_index, m, purpose)``)."""
    ss = np.random.SeedSequence([seed, *keys])
    return int(ss.generate_state(1, dtype=np.uint64)[0] & np.uint64(2**63 - 1))


def measurement_noise(n_images: int, m: int, sigma: float, seed: int) -> torch.Tensor:
    """``eps ~ N(0, sigma^2 I_m)`` for ``n_images`` images (eq. 3), reproducible from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return sigma * torch.randn(n_images, m, generator=gen)


def l2_errors(x: torch.Tensor, x_hat: torch.Tensor) -> np.ndarray:
    """Per-image reconstruction error ``||x - x_hat||_2``."""
    return (x.double() - x_hat.double()).norm(dim=1).numpy()


def mean_and_sem(errors: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    errors = np.asarray(errors, dtype=np.float64)
    sem = float(errors.std(ddof=1) / np.sqrt(errors.size)) if errors.size > 1 else 0.0
    return float(errors.mean()), sem
