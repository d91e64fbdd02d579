"""Neural input compression codecs: ``factorized`` (Balle et al. 2018) and ``hyperprior``
(mean-scale hyperprior, Minnen et al. 2018), CompressAI models trained on Fashion-MNIST.

Edge: preprocess -> ``g_a`` (hyperprior: ``h_a``, ``h_s``) -> arithmetic-coded streams. Server: decoding ->
``g_s`` -> the reconstructed image -> the whole teacher. ``quality`` is the rate level of the
shipped ``{factorized,hyperprior}_fmnist_r{LEVEL}`` checkpoints (0 = fewest bytes). Payload:
factorized, the ``y`` stream; hyperprior, ``varint(len(z)) + z + y``.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from hecsb_ros.core.baselines.codec_base import LearnedBaselineCodec, level_range
from hecsb_ros.core.baselines.neural import NeuralInputSplit
from hecsb_ros.core.codecs.base import register_codec
from hecsb_ros.core.models import Classifier


class _NeuralInputCodec(LearnedBaselineCodec):
    def _load(self, path: Path, teacher: Classifier, device: str) -> NeuralInputSplit:
        return NeuralInputSplit(path, self.kind, teacher, device=device)

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        return self.split.analysis(self.split.to_pixels(x))[0]

    def _entropy(self, y: torch.Tensor) -> bytes:
        return self.split.code(y)

    def _decode_features(self, data: bytes) -> torch.Tensor:
        return self.split.decode_pixels(data)

    def _infer(self, h: torch.Tensor) -> torch.Tensor:
        return self.split.classify(h)[0]


_F_DEFAULT, _F_LO, _F_HI = level_range("factorized")
_H_DEFAULT, _H_LO, _H_HI = level_range("hyperprior")


@register_codec("factorized")
class FactorizedCodec(_NeuralInputCodec):
    """Factorized-prior image codec + whole teacher on the server; quality = rate level."""

    kind = "factorized"
    description = "Neural input compression, factorized prior (CompressAI); quality = rate level"
    default_quality: ClassVar[int] = _F_DEFAULT
    quality_range: ClassVar[tuple[int, int]] = (_F_LO, _F_HI)


@register_codec("hyperprior")
class HyperpriorCodec(_NeuralInputCodec):
    """Mean-scale hyperprior image codec + whole teacher on the server; quality = rate level."""

    kind = "hyperprior"
    description = "Neural input compression, mean-scale hyperprior (CompressAI); quality = rate level"
    default_quality: ClassVar[int] = _H_DEFAULT
    quality_range: ClassVar[tuple[int, int]] = (_H_LO, _H_HI)
