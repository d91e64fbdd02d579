"""A loaded teacher (:class:`Classifier`) and the classifier checkpoint format.

A classifier checkpoint (safetensors, :mod:`hecsb_ros.core.store`) carries ``format`` =
:data:`CLASSIFIER_FORMAT`, ``spec`` (the :class:`ClassifierSpec` as JSON; its ``backbone`` names
the teacher family in the registry), ``arch`` (keyword arguments of the family's model builder as
JSON) and any training facts the writer adds (accuracy, seed, epochs, command).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hecsb_ros.core.store import read_tensors, write_tensors
from hecsb_ros.core.teachers.spec import ClassifierSpec

CLASSIFIER_FORMAT = "hecsb_ros.classifier/1"
_RESERVED = ("format", "spec", "arch")


@dataclass
class Classifier:
    """A loaded teacher in eval mode: its spec, model (``.head`` and ``.tail``), model id and file.

    ``forward(x) == tail(head(x))``; the split is where the seed paper splits ResNet-50 (before its
    third residual stage, stride 8 at 224 x 224; section 4.2). ``tag`` names the teacher in the
    file names of the bottlenecks trained for it (``hecsb_{tag}_r{LEVEL}``).
    """

    spec: ClassifierSpec
    model: nn.Module
    model_id: str
    path: Path
    tag: str = ""

    def split_features(self) -> tuple[int, tuple[int, int]]:
        """Channels and ``(h, w)`` of the features at the split (the head's output for one
        image)."""
        spec = self.spec
        device = next(self.model.parameters()).device
        with torch.no_grad():
            h = self.model.head(torch.zeros(1, spec.in_channels, *spec.input_size, device=device))
        return h.shape[1], (h.shape[2], h.shape[3])


def check_teacher(path: Path | str, trained_for: str, teacher: Classifier) -> None:
    """ValueError unless ``teacher`` is the classifier (model id ``trained_for``) that the split
    checkpoint ``path`` was trained with; the message says which setting picks the teacher."""
    if teacher.model_id != trained_for:
        raise ValueError(
            f"{path} was trained for teacher {trained_for}, but teacher "
            f"{teacher.path} has model id "
            f"{teacher.model_id}; pass the classifier it was trained with as the "
            "codec's teacher "
            "(ROS parameter 'teacher', --teacher)"
        )


@dataclass(frozen=True)
class CheckpointData:
    """Contents of a classifier checkpoint."""

    state_dict: dict[str, torch.Tensor]
    spec: ClassifierSpec
    arch: dict[str, Any]
    metadata: dict[str, str]


def save_checkpoint(
    path: Path | str,
    state_dict: dict[str, torch.Tensor],
    spec: ClassifierSpec,
    extra_metadata: dict[str, str] | None = None,
    arch: dict[str, Any] | None = None,
) -> Path:
    """Save a classifier: weights, its spec and architecture arguments, and training facts."""
    extra = dict(extra_metadata or {})
    clash = [k for k in extra if k in _RESERVED]
    if clash:
        raise ValueError(f"extra_metadata may not use reserved keys {clash}")
    meta = {
        "format": CLASSIFIER_FORMAT,
        "spec": spec.to_json(),
        "arch": json.dumps(arch or {}, sort_keys=True),
    }
    meta.update({str(k): str(v) for k, v in extra.items()})
    return write_tensors(path, state_dict, meta)


def read_checkpoint(path: Path | str, device: str = "cpu") -> CheckpointData:
    """Read a classifier checkpoint written by :func:`save_checkpoint` (no unpickling)."""
    tensors, meta = read_tensors(path, device)
    if meta.get("format") != CLASSIFIER_FORMAT:
        raise ValueError(f"{path}: not a classifier checkpoint (format {meta.get('format')!r})")
    spec = ClassifierSpec.from_json(meta["spec"])
    arch = json.loads(meta.get("arch", "{}"))
    extra = {k: v for k, v in meta.items() if k not in _RESERVED}
    return CheckpointData(tensors, spec, arch, extra)
