"""Checkpoints as safetensors files: tensors plus JSON/str metadata; loading never unpickles.

A classifier checkpoint carries ``format`` = :data:`CLASSIFIER_FORMAT`, ``spec`` (the
:class:`ClassifierSpec` as JSON), ``arch`` (keyword arguments of :func:`build_model` as JSON) and
any training facts the writer adds (accuracy, seed, epochs, command).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hecsb_ros.core.models.spec import ClassifierSpec

CLASSIFIER_FORMAT = "hecsb_ros.classifier/1"
_RESERVED = ("format", "spec", "arch")


def model_id_of(path: Path | str) -> str:
    """First 16 hex characters of the SHA-256 of the file's bytes."""
    return sha256_of(path)[:16]


def sha256_of(path: Path | str) -> str:
    """Full hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_tensors(path: Path | str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write ``tensors`` and string ``metadata`` to a safetensors file atomically (tmp + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"metadata keys and values must be str: {bad}")
    tmp = path.with_name(path.name + ".tmp")
    save_file(clean, str(tmp), metadata=dict(metadata))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def read_tensors(path: Path | str, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read all tensors and the metadata of a safetensors file.

    The file is first checked against the ``SHA256SUMS`` manifest beside it, when that lists it
    (:func:`hecsb_ros.core.manifest.verify_checkpoint`): a changed checkpoint is refused.
    """
    from hecsb_ros.core.manifest import verify_checkpoint

    verify_checkpoint(path)
    with safe_open(str(path), framework="pt", device=device) as fh:
        metadata = dict(fh.metadata() or {})
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    return tensors, metadata


@dataclass(frozen=True)
class CheckpointData:
    """Contents of a classifier checkpoint."""

    state_dict: dict[str, torch.Tensor]
    spec: ClassifierSpec
    arch: dict[str, Any]
    metadata: dict[str, str]


def save_checkpoint(path: Path | str, state_dict: dict[str, torch.Tensor], spec: ClassifierSpec,
                    extra_metadata: dict[str, str] | None = None, arch: dict[str, Any] | None = None) -> Path:
    """Save a classifier: weights, its spec and architecture arguments, and training facts."""
    extra = dict(extra_metadata or {})
    clash = [k for k in extra if k in _RESERVED]
    if clash:
        raise ValueError(f"extra_metadata may not use reserved keys {clash}")
    meta = {"format": CLASSIFIER_FORMAT, "spec": spec.to_json(), "arch": json.dumps(arch or {}, sort_keys=True)}
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
