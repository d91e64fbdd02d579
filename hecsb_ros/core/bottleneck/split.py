"""HECS-B checkpoints, rate levels, and the split model that runs both halves at inference.

A bottleneck checkpoint (safetensors) holds the bottleneck's weights and its CDF tables, with
metadata ``format``, ``config`` (:class:`HecsbConfig` JSON), ``teacher_model_id`` (the classifier
whose tail runs on the server) and training facts (beta, accuracy, bytes). A bottleneck whose stage
2 fine-tuned the tail as well carries that tail (keys ``tail.*``, metadata ``tail`` =
``fine-tuned``; see :mod:`hecsb_ros.core.models.student_tail`), and the server runs it instead of
the teacher's. Its content hash is the model id that edge and server compare. Rate levels are files
``hecsb_fmnist_r{LEVEL}.safetensors`` in the checkpoint folder, level 0 the fewest bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from hecsb_ros.core.bottleneck.coding import LatentCoder
from hecsb_ros.core.bottleneck.hecsb import HecsbBottleneck, HecsbConfig
from hecsb_ros.core.models import (
    CHECKPOINT_DIR, Classifier, check_teacher, load_classifier, model_id_of, read_tensors, write_tensors,
)
from hecsb_ros.core.models.student_tail import build_tail, split_tail_state, tail_state

HECSB_FORMAT = "hecsb_ros.hecsb/1"
_RESERVED = ("format", "config", "teacher_model_id", "tail")
TRAIN_HECSB_COMMAND = "python -m hecsb_ros.cli.train_hecsb"
#: Rate level the demo and codec use when none is given (see benchmarks/hecsb/results.md): level 5,
#: the fewest bytes within 1 pp of the teacher (30 B per image), the benchmark's operating point.
DEFAULT_RATE_LEVEL = 5


def rate_level_path(level: int, prefix: str = "hecsb_fmnist", folder: Path | None = None) -> Path:
    """Checkpoint path of rate level ``level``."""
    return (folder or CHECKPOINT_DIR) / f"{prefix}_r{level}.safetensors"


def list_rate_levels(prefix: str = "hecsb_fmnist", folder: Path | None = None) -> list[int]:
    """Rate levels whose checkpoints exist, sorted."""
    pattern = re.compile(rf"{re.escape(prefix)}_r(\d+)\.safetensors$")
    folder = folder or CHECKPOINT_DIR
    found = (pattern.match(p.name) for p in folder.glob(f"{prefix}_r*.safetensors")) if folder.exists() else ()
    return sorted(int(m.group(1)) for m in found if m)


def save_bottleneck(path: Path | str, bottleneck: HecsbBottleneck, teacher_model_id: str,
                    extra_metadata: dict[str, str] | None = None, tail: torch.nn.Module | None = None) -> Path:
    """Save a bottleneck (call :meth:`HecsbBottleneck.update` first) with its config and facts.

    ``tail``: a fine-tuned copy of the teacher's tail to ship with it (None: the teacher's runs).
    """
    if bottleneck.entropy_bottleneck._offset.numel() == 0:
        raise ValueError("call bottleneck.update() before saving: the checkpoint must carry the CDF tables")
    extra = {str(k): str(v) for k, v in (extra_metadata or {}).items()}
    if any(k in _RESERVED for k in extra):
        raise ValueError(f"extra_metadata may not use {_RESERVED}")
    meta = {"format": HECSB_FORMAT, "config": bottleneck.config.to_json(), "teacher_model_id": teacher_model_id}
    meta.update(extra)
    state = dict(bottleneck.state_dict())
    if tail is not None:
        state.update(tail_state(tail))
        meta["tail"] = "fine-tuned"
    return write_tensors(path, state, meta)


def load_bottleneck(path: Path | str, device: str = "cpu") -> tuple[HecsbBottleneck, dict[str, str]]:
    """Read a bottleneck checkpoint (no unpickling); returns the model in eval mode and its metadata.

    A fine-tuned tail in the file is not part of the bottleneck: ``student_tail.load_tail`` reads it.
    """
    model, meta, _ = _read_bottleneck(path, device)
    return model, meta


def _read_bottleneck(path: Path | str, device: str) -> tuple[HecsbBottleneck, dict[str, str], dict[str, torch.Tensor]]:
    """:func:`load_bottleneck` plus the state of the fine-tuned tail in the same file (empty: none)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"HECS-B checkpoint {path} not found; train one with '{TRAIN_HECSB_COMMAND}'")
    state, meta = read_tensors(path)
    if meta.get("format") != HECSB_FORMAT:
        raise ValueError(f"{path}: not a HECS-B checkpoint (format {meta.get('format')!r})")
    model = HecsbBottleneck(HecsbConfig.from_json(meta["config"]))
    state, tail = split_tail_state(state)
    model.prepare_state_for_load(state)
    model.load_state_dict(state)
    return model.to(device).eval(), meta, tail


@dataclass
class HecsbSplit:
    """A trained bottleneck with the teacher tail behind it: the deployable split model.

    Edge: ``encode(x)`` image tensor ``(1, C, H, W)`` -> payload bytes. Server: ``decode(data)``
    -> logits ``(K,)``. ``model_id`` is the bottleneck checkpoint's content hash. ``tail_module`` is
    the checkpoint's fine-tuned tail, or the teacher's when it has none.
    """

    bottleneck: HecsbBottleneck
    teacher: Classifier
    coder: LatentCoder
    model_id: str
    path: Path
    metadata: dict[str, str]
    tail_module: torch.nn.Module

    @classmethod
    def load(cls, path: Path | str, teacher: Classifier | str | Path | None = None,
             device: str = "cpu") -> "HecsbSplit":
        """Load a bottleneck and its teacher (default: the shipped one); checks the teacher's model id."""
        path = Path(path)
        bottleneck, meta, tail_weights = _read_bottleneck(path, device)  # the file is read once
        if not isinstance(teacher, Classifier):
            teacher = load_classifier(teacher, device)
        check_teacher(path, meta["teacher_model_id"], teacher)
        coder = LatentCoder(bottleneck.entropy_bottleneck, bottleneck.config.latent_shape)
        tail = build_tail(teacher.model.tail, tail_weights).to(device)
        return cls(bottleneck, teacher, coder, model_id_of(path), path, meta, tail)

    @torch.inference_mode()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Edge network: ``(N, C, H, W)`` -> unquantised latent ``(N, m, h, w)``."""
        return self.bottleneck.encode(x)

    def entropy_encode(self, y: torch.Tensor) -> list[bytes]:
        """Unquantised latents ``(N, m, h, w)`` -> one payload per image."""
        return [self.coder.payload(y[i]) for i in range(y.shape[0])]

    def encode(self, x: torch.Tensor) -> list[bytes]:
        """Edge half: images ``(N, C, H, W)`` -> one payload per image."""
        return self.entropy_encode(self.latent(x))

    @torch.inference_mode()
    def features(self, z: torch.Tensor) -> torch.Tensor:
        """``g_phi``: rounded latents ``(N, m, h, w)`` -> features at the split."""
        return self.bottleneck.g_phi(z.to(self.teacher_device))

    @torch.inference_mode()
    def tail(self, h: torch.Tensor) -> torch.Tensor:
        """Server tail (fine-tuned, or the teacher's unchanged): features -> logits ``(N, K)``."""
        return self.tail_module(h)

    def decode(self, data: bytes) -> torch.Tensor:
        """Server half: one payload -> logits ``(K,)``; raises PayloadError on invalid bytes."""
        z = self.coder.decode(data)
        return self.tail(self.features(z[None]))[0]

    @torch.inference_mode()
    def logits_rounded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits through the rounded latent without entropy coding (equal to coding): ``(N, K)``."""
        y = self.bottleneck.encode(x)
        s = torch.stack([self.coder.symbols(y[i]) for i in range(y.shape[0])])
        z = s.to(torch.float32) + self.coder._medians
        return self.tail(self.features(z))

    @property
    def teacher_device(self) -> torch.device:
        return next(self.bottleneck.parameters()).device
