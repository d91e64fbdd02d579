"""The deployable split: a trained learned model, its coder and the teacher, both halves.

One class for every learned codec (HECS-B, SVB, CR+BQ, the neural input codecs):

- edge: image tensor ``(N, C, H, W)`` normalised for the teacher -> :meth:`Split.latent` (the
  model's edge network; input codecs first undo the normalisation) -> :meth:`Split.payload` per
  image (the model's coder);
- server: payload -> the coder's decoded latent -> :meth:`Split.features` (the model's server
  network) -> :meth:`Split.classify`: the tail behind a bottleneck (the checkpoint's fine-tuned
  copy, else the teacher's own) or, behind an input codec, the whole teacher on the reconstructed
  image.

``model_id`` is the checkpoint's content hash; a bottleneck checkpoint names the teacher it was
trained for (``teacher_model_id``) and refuses any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hecsb_ros.core.learned.base import Coder, LearnedModel, read_learned
from hecsb_ros.core.learned.gdn import freeze_gdn_
from hecsb_ros.core.store import model_id_of
from hecsb_ros.core.teachers.classifier import Classifier, check_teacher
from hecsb_ros.core.teachers.registry import load_teacher
from hecsb_ros.core.teachers.tail import build_tail


class _NormalizedTeacher(nn.Module):
    """The whole teacher on pixels in [0, 1] ``(N, C, H, W)``: normalise, then classify."""

    def __init__(self, teacher: Classifier) -> None:
        super().__init__()
        self.teacher = teacher.model
        self.register_buffer("mean", torch.tensor(teacher.spec.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(teacher.spec.std).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.teacher((pixels - self.mean) / self.std)


@dataclass
class Split:
    """A learned model deployed with its teacher (see the module docstring)."""

    model: LearnedModel
    teacher: Classifier
    coder: Coder
    tail: nn.Module
    model_id: str
    path: Path
    metadata: dict[str, str]

    @classmethod
    def load(
        cls,
        path: Path | str,
        teacher: Classifier | str | Path | None = None,
        device: str = "cpu",
        kind: str | None = None,
    ) -> "Split":
        """Load checkpoint ``path`` (of ``kind``, when given) with ``teacher`` (a loaded classifier
        or a ``teacher`` setting; default: the shipped one). The file is read once."""
        path = Path(path)
        model, meta, tail_state = read_learned(path, kind, device)
        freeze_gdn_(model)  # deployed, never trained: GDN's parameters computed once
        if hasattr(model, "freeze_inverse_"):
            model.freeze_inverse_()  # and HECS-B's pinv(W)
        if not isinstance(teacher, Classifier):
            teacher = load_teacher(teacher, device)
        if model.teacher_bound:
            check_teacher(path, meta["teacher_model_id"], teacher)
            tail = build_tail(teacher.model.tail, tail_state).to(device)
        else:
            spec, config = teacher.spec, model.config
            if (spec.in_channels, tuple(spec.input_size)) != (
                config.in_channels,
                tuple(config.input_size),
            ):
                raise ValueError(
                    f"{path} codes {config.in_channels}x{tuple(config.input_size)} "
                    "images, the "
                    f"teacher takes {spec.in_channels}x{tuple(spec.input_size)}"
                )
            tail = _NormalizedTeacher(teacher).to(device).eval()
        return cls(model, teacher, model.make_coder(), tail, model_id_of(path), path, meta)

    @property
    def kind(self) -> str:
        return self.model.kind

    def max_payload_bytes(self) -> int:
        return self.coder.max_payload_bytes()

    # -- edge ------------------------------------------------------------------------------------
    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-normalised images -> pixels in [0, 1] ``(N, C, H, W)``."""
        spec = self.teacher.spec
        mean = torch.tensor(spec.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(spec.std, device=x.device).view(1, -1, 1, 1)
        return x * std + mean

    @torch.inference_mode()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Edge network: normalised images ``(N, C, H, W)`` -> unquantised latents ``(N, ...)``."""
        return self.model.edge(self.to_pixels(x) if self.model.input_space == "pixels" else x)

    @torch.inference_mode()
    def payload(self, y: torch.Tensor) -> bytes:
        """One image's latent -> payload bytes."""
        return self.coder.payload(y)

    def encode(self, x: torch.Tensor) -> list[bytes]:
        """Edge half: images ``(N, C, H, W)`` -> one payload per image."""
        return [self.payload(y) for y in self.latent(x)]

    # -- server ----------------------------------------------------------------------------------
    @torch.inference_mode()
    def features(self, z: torch.Tensor) -> torch.Tensor:
        """Server network: decoded latents ``(N, ...)`` -> the tail's input."""
        return self.model.synthesize(z)

    @torch.inference_mode()
    def classify(self, h: torch.Tensor) -> torch.Tensor:
        """The tail (or the whole teacher behind an input codec): ``(N, ...)`` -> logits ``(N,
        K)``."""
        return self.tail(h)

    @torch.inference_mode()
    def decode_features(self, data: bytes) -> torch.Tensor:
        """One payload -> the tail's input ``(1, ...)``; PayloadError on invalid bytes."""
        return self.features(self.coder.decode(data)[None])

    def decode(self, data: bytes) -> torch.Tensor:
        """Server half: one payload -> logits ``(K,)``; PayloadError on invalid bytes."""
        return self.classify(self.decode_features(data))[0]

    @torch.inference_mode()
    def logits_rounded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` through the latent the server would decode, without the coder (equal
        to coding)."""
        z = torch.stack([self.coder.quantize(y) for y in self.latent(x)])
        return self.classify(self.features(z))
