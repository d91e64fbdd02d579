"""Classifier description shared by the edge and the server, and image -> tensor conversion."""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ClassifierSpec:
    """What a classifier expects as input and what it predicts.

    Attributes:
        backbone: the teacher family that builds the model (a name in the teacher registry).
        classes: class names, index = class id.
        input_size: ``(H, W)`` of the input tensor.
        in_channels: 1 (grey) or 3 (RGB).
        mean: per-channel mean for pixels scaled to [0, 1].
        std: per-channel standard deviation for pixels scaled to [0, 1].
    """

    backbone: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, not {self.in_channels}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError("mean and std need one value per input channel")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise ValueError(f"input_size must be a positive (H, W), not {self.input_size}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ClassifierSpec":
        d = json.loads(text)
        return cls(backbone=str(d["backbone"]), classes=tuple(str(c) for c in d["classes"]),
                   input_size=(int(d["input_size"][0]), int(d["input_size"][1])),
                   in_channels=int(d["in_channels"]), mean=tuple(float(v) for v in d["mean"]),
                   std=tuple(float(v) for v in d["std"]))


def images_to_tensor(images: np.ndarray, spec: ClassifierSpec) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` or ``(H, W, C)`` -> float32 ``(N, C, H, W)``, scaled to [0, 1], normalised.

    Raises ValueError unless the dtype is uint8 and ``H, W, C`` match ``spec``.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, not {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or (H, W, C), not shape {arr.shape}")
    h, w = spec.input_size
    if arr.shape[1:] != (h, w, spec.in_channels):
        raise ValueError(f"images of shape {arr.shape[1:]} do not match the classifier's "
                         f"(H, W, C) = {(h, w, spec.in_channels)}")
    mean, std = _mean_std(spec.mean, spec.std)
    # three float32 numpy operations on a small frame instead of seven torch calls: the same
    # IEEE arithmetic (x / 255 - mean) / std, so the same tensor
    x = (arr.astype(np.float32) / np.float32(255.0) - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@functools.lru_cache(maxsize=16)
def _mean_std(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float32 arrays of a spec's per-channel mean and std (broadcast over ``(N, H, W, C)``)."""
    return np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
