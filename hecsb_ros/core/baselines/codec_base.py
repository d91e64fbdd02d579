"""Shared codec plumbing of the learned baselines: rate levels from the shipped checkpoints,
payload checks, and the edge/server halves with per-part timings.

A subclass sets ``kind`` and implements :meth:`_load`, :meth:`_network` (edge network) and
:meth:`_entropy` (latent -> bytes), :meth:`_decode_features` (bytes -> the server's input to
:meth:`_infer`) and :meth:`_infer` (-> logits). The payload carries no shape (the model id fixes
it), so :meth:`check_shape` accepts only ``()``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from hecsb_ros.core.baselines.checkpoint import level_path, list_levels
from hecsb_ros.core.codecs.base import Codec, CodecSettings, Decoded, EncodedFrame, Timer
from hecsb_ros.core.models import Classifier, images_to_tensor
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.preprocess import prepare_image


def level_range(kind: str) -> tuple[int, int, int]:
    """(default level, lowest, highest) of the shipped checkpoints of ``kind`` (default: highest)."""
    levels = list_levels(kind)
    return (max(levels), min(levels), max(levels)) if levels else (0, 0, 0)


class LearnedBaselineCodec(Codec):
    """Base of the SVB, CR+BQ and neural input codecs; quality = rate level (0 = fewest bytes)."""

    kind: ClassVar[str] = ""

    def __init__(self, settings: CodecSettings) -> None:
        super().__init__(settings)
        self.path = Path(settings.checkpoint) if settings.checkpoint else level_path(self.kind, self.quality)
        self.split: Any = self._load(self.path, settings.load_teacher(), settings.device)
        self.spec = self.split.teacher.spec

    # -- hooks ---------------------------------------------------------------------------------
    def _load(self, path: Path, teacher: Classifier, device: str) -> Any:
        """The split of checkpoint ``path`` for ``teacher`` (it checks the teacher's model id)."""
        raise NotImplementedError

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised image ``(1, C, H, W)`` -> what :meth:`_entropy` codes."""
        raise NotImplementedError

    def _entropy(self, y: torch.Tensor) -> bytes:
        raise NotImplementedError

    def _decode_features(self, data: bytes) -> torch.Tensor:
        raise NotImplementedError

    def _infer(self, h: torch.Tensor) -> torch.Tensor:
        """Server network after decoding -> logits ``(K,)``."""
        raise NotImplementedError

    # -- contract ------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.split.model_id

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != ():
            raise PayloadError("bad_shape", f"{self.name} payloads carry no shape, got {tuple(shape)}")

    def max_payload_bytes(self) -> int:
        return self.split.max_payload_bytes()

    @torch.inference_mode()
    def encode(self, image: np.ndarray, encoding: str) -> EncodedFrame:
        t = Timer()
        with t("preprocess"):
            x = images_to_tensor(prepare_image(image, encoding, self.spec), self.spec).to(self.device)
        with t("encode"):
            y = self._network(x)
        with t("entropy"):
            data = self._entropy(y)
        return EncodedFrame(data=data, shape=(), timings_ms=t.ms)

    @torch.inference_mode()
    def decode(self, data: bytes, shape: tuple[int, ...]) -> Decoded:
        self.check_shape(shape)
        if len(data) > self.max_payload_bytes():
            raise PayloadError("too_large", f"{len(data)} B above the {self.max_payload_bytes()} B a payload can take")
        t = Timer()
        with t("decode"):
            h = self._decode_features(bytes(data))
        with t("infer"):
            logits = self._infer(h).float().cpu()
        return Decoded(logits=logits, timings_ms=t.ms)
