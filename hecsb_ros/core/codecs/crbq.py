"""The CR+BQ codec: channel reduction + 8-bit bottleneck quantisation at the split point.

Edge: preprocess -> channel-reducing encoder -> per-tensor 8-bit quantisation (``lo, hi`` float32
+ one byte per latent element). Server: dequantisation -> decoder -> the teacher's tail.
``quality`` is the rate level of the shipped ``crbq_fmnist_r{LEVEL}`` checkpoints (0 = fewest
channels); every payload of a level has the same size.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from hecsb_ros.core.baselines.codec_base import LearnedBaselineCodec, level_range
from hecsb_ros.core.baselines.crbq import CrbqSplit, pack, quantize_8bit
from hecsb_ros.core.codecs.base import register_codec
from hecsb_ros.core.models import Classifier

_DEFAULT, _LO, _HI = level_range("crbq")


@register_codec("crbq")
class CrbqCodec(LearnedBaselineCodec):
    """CR+BQ (Matsubara et al.'s head network distillation baseline); quality = rate level."""

    kind = "crbq"
    description = "Channel reduction + 8-bit bottleneck quantisation; quality = rate level"
    default_quality: ClassVar[int] = _DEFAULT
    quality_range: ClassVar[tuple[int, int]] = (_LO, _HI)

    def _load(self, path: Path, teacher: Classifier, device: str) -> CrbqSplit:
        return CrbqSplit(path, teacher, device=device)

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        return self.split.model.encode(x)

    def _entropy(self, y: torch.Tensor) -> bytes:
        q, lo, hi = quantize_8bit(y)
        return pack(q[0], float(lo[0]), float(hi[0]))

    def _decode_features(self, data: bytes) -> torch.Tensor:
        return self.split.features(data)

    def _infer(self, h: torch.Tensor) -> torch.Tensor:
        return self.split.teacher.model.tail(h)[0]
