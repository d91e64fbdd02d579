"""Checkpoints of the baseline codecs: safetensors files with a JSON manifest beside each.

File names follow the HECS-B rate levels: ``{kind}_fmnist_r{LEVEL}.safetensors`` in the checkpoint
folder, level 0 the fewest bytes. Metadata: ``format`` (:data:`BASELINE_FORMAT`), ``kind``,
``config`` (JSON of the architecture), ``teacher_model_id`` and training facts. The model id the
edge and the server compare is the file's content hash.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from hecsb_ros.core.models import CHECKPOINT_DIR, model_id_of, read_tensors, sha256_of, write_tensors

BASELINE_FORMAT = "hecsb_ros.baseline/1"
KINDS = ("svb", "crbq", "factorized", "hyperprior")
TRAIN_COMMAND = "python -m hecsb_ros.cli.train_baselines"


def level_path(kind: str, level: int, folder: Path | None = None, dataset: str = "fmnist") -> Path:
    """Checkpoint path of rate level ``level`` of baseline ``kind``."""
    return (folder or CHECKPOINT_DIR) / f"{kind}_{dataset}_r{level}.safetensors"


def list_levels(kind: str, folder: Path | None = None, dataset: str = "fmnist") -> list[int]:
    """Rate levels of ``kind`` whose checkpoints exist, sorted."""
    folder = folder or CHECKPOINT_DIR
    pattern = re.compile(rf"{re.escape(kind)}_{re.escape(dataset)}_r(\d+)\.safetensors$")
    if not folder.exists():
        return []
    return sorted(int(m.group(1)) for m in (pattern.match(p.name) for p in folder.iterdir()) if m)


def save(path: Path | str, kind: str, state: dict[str, torch.Tensor], config: dict[str, Any],
         teacher_model_id: str, facts: dict[str, Any] | None = None) -> Path:
    """Write a baseline checkpoint (weights, CDF tables and metadata) atomically."""
    meta = {"format": BASELINE_FORMAT, "kind": kind, "config": json.dumps(config, sort_keys=True),
            "teacher_model_id": teacher_model_id}
    for k, v in (facts or {}).items():
        if k in meta:
            raise ValueError(f"fact {k!r} clashes with reserved metadata")
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    return write_tensors(path, state, meta)


def load(path: Path | str, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, str]]:
    """Read a baseline checkpoint (no unpickling): (state dict, config, metadata)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{kind} checkpoint {path} not found; train it with '{TRAIN_COMMAND} {kind}'")
    state, meta = read_tensors(path)
    if meta.get("format") != BASELINE_FORMAT or meta.get("kind") != kind:
        raise ValueError(f"{path}: not a {kind} checkpoint (format {meta.get('format')!r}, kind {meta.get('kind')!r})")
    return state, json.loads(meta["config"]), meta


def write_manifest(path: Path | str, fields: dict[str, Any]) -> Path:
    """Write ``{checkpoint}.json`` with ``fields`` plus file name, model id and SHA-256."""
    path = Path(path)
    manifest = {"file": path.name, **fields, "model_id": model_id_of(path), "sha256": sha256_of(path)}
    out = path.with_suffix(".json")
    out.write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The manifest of a checkpoint (``{}`` when it has none)."""
    p = Path(path).with_suffix(".json")
    return json.loads(p.read_text()) if p.exists() else {}


def resize_buffers_for_load(module: torch.nn.Module, state: dict[str, torch.Tensor], prefix: str) -> None:
    """Give the CDF-table buffers of ``module`` the shapes in ``state`` so ``load_state_dict`` accepts them."""
    for name in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table"):
        key = f"{prefix}.{name}"
        if key in state and hasattr(module, name):
            setattr(module, name, torch.zeros_like(state[key]))
