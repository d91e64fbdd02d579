"""The SVB codec: Shallow Variational Bottleneck (Entropic Student) split computing baseline.

Edge: preprocess -> GDN encoder ``g_a`` -> rounding and arithmetic coding with the factorized prior.
Server: decoding -> ``g_phi`` -> the tail (the teacher's, or the checkpoint's fine-tuned copy).
``quality`` is the rate level of the shipped ``svb_fmnist_r{LEVEL}`` checkpoints (0 = fewest
bytes); the payload is the coded stream only.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from hecsb_ros.core.baselines.codec_base import LearnedBaselineCodec, level_range
from hecsb_ros.core.baselines.svb import SvbSplit
from hecsb_ros.core.codecs.base import register_codec
from hecsb_ros.core.models import Classifier

_DEFAULT, _LO, _HI = level_range("svb")


@register_codec("svb")
class SvbCodec(LearnedBaselineCodec):
    """SVB (Matsubara et al., Furutanpey et al.); quality = rate level."""

    kind = "svb"
    description = "Shallow Variational Bottleneck (GDN encoder, factorized prior); quality = rate level"
    default_quality: ClassVar[int] = _DEFAULT
    quality_range: ClassVar[tuple[int, int]] = (_LO, _HI)

    def _load(self, path: Path, teacher: Classifier, device: str) -> SvbSplit:
        return SvbSplit(path, teacher, device=device)

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        return self.split.latent(x)[0]

    def _entropy(self, y: torch.Tensor) -> bytes:
        return self.split.entropy_encode(y)

    def _decode_features(self, data: bytes) -> torch.Tensor:
        return self.split.features(data)

    def _infer(self, h: torch.Tensor) -> torch.Tensor:
        return self.split.tail_module(h)[0]
