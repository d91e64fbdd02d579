"""SVB, the Shallow Variational Bottleneck (Matsubara et al.'s Entropic Student; Furutanpey et
al.).

Replaces the teacher's head, like HECS-B, at the same split point:

- edge encoder ``g_a``: ``conv 5x5/2 (4N) - GDN - conv 5x5/2 (2N) - GDN - conv 3x3 (N)``, the
  Entropic Student's shape (its ``num_enc_channels`` N, widths 4N and 2N), giving the latent
  ``y`` ``(N_img, N, H/4, W/4)`` (at a split whose features are coarser than ``H/4``, such as
  ResNet-50's before ``layer3``, one more ``conv 5x5/2 (4N) - GDN`` per halving);
- a factorized prior ``p(z)`` (CompressAI :class:`EntropyBottleneck`, one density per channel),
  ``z = y + U(-1/2, 1/2)`` in training and rounded at inference;
- server decoder ``g_phi``: ``conv 3x3 (2T) - IGDN - [convT 4x4/2 - IGDN]* - conv 3x3 (T)`` back to
  the teacher's split features (``T`` channels), then the teacher's tail (unchanged, or fine-tuned
  in stage 2 with ``train_tail`` and shipped in the checkpoint, as for HECS-B).

With ``stem`` (camera scale), ``g_a`` starts with the teacher's own layers to ``stem_stride``,
initialised from its weights as HECS-B's ``f_psi`` is (:mod:`hecsb_ros.core.learned.stem`), and
``downsampling`` counts the stride-2 convolutions after it; when the stem reaches the split
(``downsampling`` 0), ``g_a`` is ``stem - conv 3x3 (2N) - GDN - conv 3x3 (N)``.

Training is the seed paper's two-stage procedure with the same
:class:`~hecsb_ros.core.training.distill.Distiller` as HECS-B (eq. 14, then eq. 10-12): both are
:class:`~hecsb_ros.core.learned.base.FactorizedLatentModel` models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from torch import nn

from hecsb_ros.core.grid import downsampled, encoder_depth, upsampling_steps
from hecsb_ros.core.learned.base import FactorizedLatentModel, config_from_dict, register_model
from hecsb_ros.core.learned.stem import StemFirst, check_stem_stride, stem_free_dict, teacher_stem
from hecsb_ros.core.teachers.classifier import Classifier


@dataclass(frozen=True)
class SvbConfig:
    """Architecture of an SVB: input ``(C, (H, W))``, split features ``(T, (h, w))``, widths.

    ``latent_channels`` is the Entropic Student's N (encoder widths 4N, 2N, N); ``downsampling`` is
    the number of stride-2 convolutions (2 as in the Entropic Student; 3 at a ResNet-50 split
    before ``layer3``, whose features are 1/8 of the input: the extra ones are 4N wide). ``stem``:
    '' or a teacher family whose first layers, to ``stem_stride``, come before them.
    """

    in_channels: int
    input_size: tuple[int, int]
    feature_channels: int
    feature_size: tuple[int, int]
    latent_channels: int = 12
    kernel: int = 5
    downsampling: int = 2
    stem: str = ""
    stem_stride: int = 0

    def __post_init__(self) -> None:
        if self.downsampling < (0 if self.stem else 1):
            raise ValueError(
                f"downsampling must be at least 1 without a stem, not {self.downsampling}"
            )
        if self.stem:
            check_stem_stride(self.stem_stride)
        self.upsampling  # validates the input and feature sizes

    @property
    def latent_size(self) -> tuple[int, int]:
        stem_steps = self.stem_stride.bit_length() - 1 if self.stem else 0
        return downsampled(self.input_size, self.downsampling + stem_steps)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(N, h, w)`` of one image's latent."""
        return (self.latent_channels, *self.latent_size)

    @property
    def upsampling(self) -> int:
        """2x upsampling steps from the latent grid to the feature grid."""
        return upsampling_steps(self.latent_size, self.feature_size)

    def to_dict(self) -> dict:
        return stem_free_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "SvbConfig":
        return config_from_dict(cls, d)


@register_model
class SvbBottleneck(StemFirst, FactorizedLatentModel):
    """Encoder ``g_a`` (with GDN), factorized prior and decoder ``g_phi`` (with IGDN).

    Call order as for HECS-B: train, then ``update()`` once before saving (the CDF tables are
    buffers of the state dict).
    """

    kind = "svb"
    encoder_attr = "g_a"
    description = (
        "Shallow Variational Bottleneck (GDN encoder, factorized prior); quality = rate level"
    )
    rate_setting = "beta"
    config_type = SvbConfig

    def __init__(self, config: SvbConfig) -> None:
        super().__init__()
        self.config = config
        n, k = config.latent_channels, config.kernel
        widths = [4 * n] * (config.downsampling - 1) + [2 * n]
        encoder: list[nn.Module] = []
        cin = config.in_channels
        if config.stem:
            stem, cin = teacher_stem(config.stem, config.input_size, config.stem_stride)
            encoder.append(stem)
            if config.downsampling == 0:
                widths = []
                encoder += [nn.Conv2d(cin, 2 * n, 3, 1, 1), GDN(2 * n)]
                cin = 2 * n
        for w in widths:
            encoder += [nn.Conv2d(cin, w, k, 2, k // 2), GDN(w)]
            cin = w
        self.g_a = nn.Sequential(*encoder, nn.Conv2d(cin, n, 3, 1, 1))
        t = config.feature_channels
        width = 2 * t
        layers: list[nn.Module] = [nn.Conv2d(n, width, 3, 1, 1), GDN(width, inverse=True)]
        for _ in range(config.upsampling):
            layers += [
                nn.ConvTranspose2d(width, max(width // 2, 8), 4, 2, 1),
                GDN(max(width // 2, 8), inverse=True),
            ]
            width = max(width // 2, 8)
        layers.append(nn.Conv2d(width, t, 3, 1, 1))
        self.g_phi = nn.Sequential(*layers)
        self.entropy_bottleneck = EntropyBottleneck(n)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Edge network: image ``(N, C, H, W)`` -> unquantised latent ``(N, n, H/2^d, W/2^d)``."""
        return self.g_a(x)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.g_a.parameters())

    def stem_reaches_split(self) -> bool:
        return bool(self.config.stem) and self.config.downsampling == 0


def svb_config_for(
    teacher: Classifier, latent_channels: int = 12, stem: bool = False
) -> SvbConfig:
    """SVB config matching ``teacher``'s input and split features; ``stem``: ``g_a`` starts with
    the teacher's own layers to the split (its family must have a stem)."""
    spec = teacher.spec
    channels, feature_size = teacher.split_features()
    depth = encoder_depth(spec.input_size, feature_size)
    if stem:
        return SvbConfig(
            spec.in_channels,
            spec.input_size,
            channels,
            feature_size,
            latent_channels,
            downsampling=0,
            stem=spec.backbone,
            stem_stride=1 << depth,
        )
    return SvbConfig(
        spec.in_channels,
        spec.input_size,
        channels,
        feature_size,
        latent_channels,
        downsampling=depth,
    )
