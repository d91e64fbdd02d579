"""Classifier description shared by the edge and the server, and image -> tensor conversion."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch

# : How a frame of another shape becomes the teacher's input (see
# :func:`hecsb_ros.core.preprocess.prepare_image`).
RESIZE_POLICIES = ("squash", "center_crop", "letterbox")
INTERPOLATIONS = ("area", "bilinear", "bicubic")


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
        resize: how a camera frame of another shape becomes ``input_size``, as the teacher was
            evaluated: ``squash`` (resize, aspect ratio not kept), ``center_crop`` (the centre
            square of ``crop_fraction`` of the short side, then resize) or ``letterbox`` (fit
            inside, pad with black); see :func:`hecsb_ros.core.preprocess.prepare_image`.
        crop_fraction: with ``center_crop``, the part of the short side kept (EfficientNet:
        224/256). interpolation: ``area`` (area when shrinking, bilinear when enlarging),
        ``bilinear`` or
            ``bicubic``.
    """

    backbone: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = "squash"
    crop_fraction: float = 1.0
    interpolation: str = "area"

    def __post_init__(self) -> None:
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, not {self.in_channels}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError("mean and std need one value per input channel")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise ValueError(f"input_size must be a positive (H, W), not {self.input_size}")
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(
                f"resize must be one of {', '.join(RESIZE_POLICIES)}, not {self.resize!r}"
            )
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], not {self.crop_fraction}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not "
                f"{self.interpolation!r}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> str:
        d = asdict(self)
        for name, default in (
            ("resize", "squash"),
            ("crop_fraction", 1.0),
            ("interpolation", "area"),
        ):
            if d[name] == default:  # older readers, and the shipped checkpoints' spec, lack them
                del d[name]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ClassifierSpec":
        d = json.loads(text)
        return cls(
            backbone=str(d["backbone"]),
            classes=tuple(str(c) for c in d["classes"]),
            input_size=(int(d["input_size"][0]), int(d["input_size"][1])),
            in_channels=int(d["in_channels"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            resize=str(d.get("resize", "squash")),
            crop_fraction=float(d.get("crop_fraction", 1.0)),
            interpolation=str(d.get("interpolation", "area")),
        )


def images_to_tensor(images: np.ndarray, spec: ClassifierSpec) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` or ``(H, W, C)`` -> float32 ``(N, C, H, W)``, scaled to [0, 1],
    normalised.

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
        raise ValueError(
            f"images of shape {arr.shape[1:]} do not match the classifier's "
            f"(H, W, C) = {(h, w, spec.in_channels)}"
        )
    mean, std = _mean_std(spec.mean, spec.std)
    # three float32 numpy operations on a small frame instead of seven torch calls: the same
    # IEEE arithmetic (x / 255 - mean) / std, so the same tensor
    x = (arr.astype(np.float32) / np.float32(255.0) - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@functools.lru_cache(maxsize=16)
def _mean_std(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float32 arrays of a spec's per-channel mean and std (broadcast over ``(N, H, W, C)``)."""
    return np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
