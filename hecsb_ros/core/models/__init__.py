"""Classifiers ("teachers") split at the bottleneck position, and their checkpoints.

Every model has ``.head`` (input -> features at the split point) and ``.tail`` (features ->
logits), with ``forward(x) == tail(head(x))``. The split is before the third residual stage, as
the seed paper splits ResNet-50 before its third residual block (section 4.2).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hecsb_ros.core.models.checkpoint import (
    CLASSIFIER_FORMAT, CheckpointData, model_id_of, read_checkpoint, read_tensors, save_checkpoint, sha256_of,
    write_tensors,
)
from hecsb_ros.core.models.fmnist_resnet import FmnistResNet
from hecsb_ros.core.models.resnet50 import (
    IMAGENET_MEAN, IMAGENET_STD, SplitResNet50, imagenet_classes, read_resnet50_weights,
)
from hecsb_ros.core.models.spec import ClassifierSpec, images_to_tensor

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
BACKBONES = ("fmnist_resnet", "resnet50")
TRAIN_TEACHER_COMMAND = "python -m hecsb_ros.cli.train_teacher"


@dataclass
class Classifier:
    """A loaded classifier in eval mode, with its spec, content-hash model id and file path."""

    spec: ClassifierSpec
    model: nn.Module
    model_id: str
    path: Path

    def split_features(self) -> tuple[int, tuple[int, int]]:
        """Channels and ``(h, w)`` of the features at the split (the head's output for one image)."""
        spec = self.spec
        with torch.no_grad():
            h = self.model.head(torch.zeros(1, spec.in_channels, *spec.input_size))
        return h.shape[1], (h.shape[2], h.shape[3])


def default_teacher_path() -> Path:
    """The shipped Fashion-MNIST teacher: ``hecsb_ros/checkpoints/teacher_fmnist.safetensors``."""
    return CHECKPOINT_DIR / "teacher_fmnist.safetensors"


def fmnist_spec() -> ClassifierSpec:
    """Spec of the Fashion-MNIST teacher (1x28x28, mean/std of the training images)."""
    from hecsb_ros.core.datasets import FASHION_MNIST_CLASSES

    return ClassifierSpec("fmnist_resnet", FASHION_MNIST_CLASSES, (28, 28), 1, (0.2860,), (0.3530,))


def resnet50_spec() -> ClassifierSpec:
    """Spec of torchvision's ImageNet ResNet-50 (3x224x224, ImageNet mean/std and classes)."""
    return ClassifierSpec("resnet50", imagenet_classes(), (224, 224), 3, IMAGENET_MEAN, IMAGENET_STD)


def build_model(spec: ClassifierSpec, **arch: Any) -> nn.Module:
    """Untrained model for ``spec.backbone``; ``arch`` are architecture arguments (e.g. ``widths``)."""
    if spec.backbone == "fmnist_resnet":
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()}
        return FmnistResNet(num_classes=spec.num_classes, in_channels=spec.in_channels, **kw)
    if spec.backbone == "resnet50":
        if spec.in_channels != 3:
            raise ValueError("resnet50 needs 3 input channels")
        return SplitResNet50(num_classes=spec.num_classes, **arch)
    raise ValueError(f"unknown backbone {spec.backbone!r}; known: {', '.join(BACKBONES)}")


def load_resnet50(weights: Path | str, device: str = "cpu") -> Classifier:
    """ImageNet ResNet-50 from a local torchvision ``.pth`` or safetensors state dict."""
    weights = Path(weights)
    if not weights.exists():
        raise FileNotFoundError(f"ResNet-50 weights {weights} not found; pass a local torchvision "
                                "resnet50 state dict (.pth or .safetensors); nothing is downloaded")
    spec = resnet50_spec()
    model = build_model(spec)
    model.load_state_dict(read_resnet50_weights(weights))
    return Classifier(spec, model.to(device).eval(), model_id_of(weights), weights)


def load_classifier(path: Path | str | None = None, device: str = "cpu") -> Classifier:
    """Load a classifier checkpoint (None: the shipped Fashion-MNIST teacher), in eval mode.

    A ``.pth`` file, or a safetensors file without classifier metadata, is read as torchvision
    ResNet-50 weights.
    """
    path = Path(path) if path is not None else default_teacher_path()
    if not path.exists():
        hint = (f"train it with '{TRAIN_TEACHER_COMMAND} --out {path}'" if path.suffix == ".safetensors"
                else "pass an existing checkpoint file")
        raise FileNotFoundError(f"classifier checkpoint {path} not found; {hint}")
    if path.suffix != ".safetensors":
        return load_resnet50(path, device)
    _, meta = read_tensors_metadata(path)
    if meta.get("format") != CLASSIFIER_FORMAT:
        return load_resnet50(path, device)
    ckpt = read_checkpoint(path)
    model = build_model(ckpt.spec, **ckpt.arch)
    model.load_state_dict(ckpt.state_dict)
    return Classifier(ckpt.spec, model.to(device).eval(), model_id_of(path), path)


def check_teacher(path: Path | str, trained_for: str, teacher: Classifier) -> None:
    """ValueError unless ``teacher`` is the classifier (model id ``trained_for``) that the split
    checkpoint ``path`` was trained with; the message says which setting picks the teacher."""
    if teacher.model_id != trained_for:
        raise ValueError(f"{path} was trained for teacher {trained_for}, but teacher {teacher.path} has model id "
                         f"{teacher.model_id}; pass the classifier it was trained with as the codec's teacher "
                         "(ROS parameter 'teacher', --teacher)")


def read_tensors_metadata(path: Path | str) -> tuple[list[str], dict[str, str]]:
    """Tensor names and metadata of a safetensors file, without reading the tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return list(fh.keys()), dict(fh.metadata() or {})


__all__ = [
    "BACKBONES", "CHECKPOINT_DIR", "CheckpointData", "Classifier", "ClassifierSpec", "FmnistResNet",
    "check_teacher",
    "SplitResNet50", "build_model", "default_teacher_path", "fmnist_spec", "images_to_tensor",
    "load_classifier", "load_resnet50", "model_id_of", "read_checkpoint", "read_tensors",
    "read_tensors_metadata", "resnet50_spec", "save_checkpoint", "sha256_of", "write_tensors",
]
