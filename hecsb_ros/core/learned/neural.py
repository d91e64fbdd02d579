"""Neural input compression: CompressAI's factorized prior (Balle et al. 2018) and mean-scale
hyperprior (Minnen et al. 2018) for small grey images; the server decodes the image and runs the
whole teacher (the seed paper's "Neural Compression" baseline, section 4.2).

The networks are CompressAI's :class:`FactorizedPrior` and :class:`MeanScaleHyperprior` with their
forward pass, entropy models and training objective, resized for 1x28x28 images: ``in_channels``
input channels and three (not four) stride-2 analysis layers, so that an image zero-padded to 32x32
gives a 4x4 latent ``y`` (and a 1x1 hyper-latent ``z``). Pretrained CompressAI weights cannot be
downloaded here; the models are trained on the Fashion-MNIST training images with CompressAI's
rate-distortion loss ``lambda 255^2 MSE + bpp`` at several ``lambda``.

Payloads: factorized, the coded stream of ``y``; hyperprior, ``varint(len(z)) + z + y``. Call
``update()`` once after training; the CDF tables (and the hyperprior's scale table) are state-dict
buffers, shipped in the checkpoint. Hyperprior decoding is fragile across machines: the ``y``
tables are chosen from scales that a floating-point network computes from ``z``, so edge and server
must compute bit-identical scales (same checkpoint and, in practice, the same CPU kernels); a
mismatch is usually detected by the decoder's re-encoding check and raises ``PayloadError``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from compressai.layers import GDN
from compressai.models import FactorizedPrior, MeanScaleHyperprior
from compressai.models.utils import conv, deconv
from torch import nn

from hecsb_ros.core.entropy.latent import LatentCoder
from hecsb_ros.core.entropy.tables import TableCoder, frame_two, unframe_two
from hecsb_ros.core.learned.base import LearnedModel, config_from_dict, register_model

KINDS = ("factorized", "hyperprior")


@dataclass(frozen=True)
class NeuralConfig:
    """Model ``kind`` ('factorized' or 'hyperprior'), channels ``N`` and ``M``, image ``(C, (H,
    W))``."""

    kind: str
    N: int = 32
    M: int = 32
    in_channels: int = 1
    input_size: tuple[int, int] = (28, 28)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")

    @property
    def padded_size(self) -> tuple[int, int]:
        """Input padded up to a multiple of 32 (8 for ``g_a``, 4 more for the hyperprior's
        ``h_a``)."""
        return tuple(-(-s // 32) * 32 for s in self.input_size)  # type: ignore[return-value]

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.M, self.padded_size[0] // 8, self.padded_size[1] // 8)

    @property
    def hyper_shape(self) -> tuple[int, int, int]:
        return (self.N, self.padded_size[0] // 32, self.padded_size[1] // 32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NeuralConfig":
        return config_from_dict(cls, d)


def _analysis(cin: int, n: int, m: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, n), GDN(n), conv(n, n), GDN(n), conv(n, m))


def _synthesis(m: int, n: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True), deconv(n, cout)
    )


class _NeuralInputModel(LearnedModel):
    """Deployment of a CompressAI image codec as a learned input codec: pixels in [0, 1] in, the
    reconstructed pixels out (the whole teacher classifies them on the server)."""

    rate_setting = "lmbda"
    config_type = NeuralConfig
    input_space = "pixels"
    target = "pixels"

    @classmethod
    def from_config(cls, config: NeuralConfig) -> "_NeuralInputModel":
        if config.kind != cls.kind:
            raise ValueError(f"{cls.__name__} is {cls.kind!r}, the config says {config.kind!r}")
        model = cls(config.N, config.M, config.in_channels)
        model.config = config
        return model

    def edge(self, x: torch.Tensor) -> torch.Tensor:
        """``g_a``: pixels in [0, 1] ``(N, C, H, W)`` -> latent ``y`` ``(N, M, h, w)``."""
        return self.g_a(pad(x, self.config))

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """``g_s``: decoded ``y`` ``(N, M, h, w)`` -> pixels in [0, 1] ``(N, C, H, W)``."""
        return crop(self.g_s(z), self.config).clamp_(0, 1)


@register_model
class SmallFactorizedPrior(_NeuralInputModel, FactorizedPrior):
    """CompressAI's factorized prior with ``in_channels`` and three analysis/synthesis stages."""

    kind = "factorized"
    description = "Neural input compression, factorized prior (CompressAI); quality = rate level"

    def __init__(self, N: int, M: int, in_channels: int = 1) -> None:
        super().__init__(N, M)
        self.g_a, self.g_s = _analysis(in_channels, N, M), _synthesis(M, N, in_channels)

    @property
    def downsampling_factor(self) -> int:
        return 8

    def make_coder(self) -> LatentCoder:
        return LatentCoder(self.entropy_bottleneck, self.config.latent_shape)


@register_model
class SmallMeanScaleHyperprior(_NeuralInputModel, MeanScaleHyperprior):
    """CompressAI's mean-scale hyperprior with ``in_channels`` and three analysis/synthesis
    stages."""

    kind = "hyperprior"
    description = (
        "Neural input compression, mean-scale hyperprior (CompressAI); quality = rate level"
    )

    def __init__(self, N: int, M: int, in_channels: int = 1) -> None:
        super().__init__(N, M)
        self.g_a, self.g_s = _analysis(in_channels, N, M), _synthesis(M, N, in_channels)

    @property
    def downsampling_factor(self) -> int:
        return 32

    def make_coder(self) -> "HyperpriorCoder":
        return HyperpriorCoder(self)


def build(config: NeuralConfig) -> LearnedModel:
    """An untrained model of ``config.kind``."""
    cls = SmallFactorizedPrior if config.kind == "factorized" else SmallMeanScaleHyperprior
    return cls.from_config(config)


def pad(x: torch.Tensor, config: NeuralConfig) -> torch.Tensor:
    """Pixels in [0, 1] ``(N, C, H, W)`` -> zero-padded ``(N, C, H', W')`` (centred)."""
    (h, w), (ph, pw) = config.input_size, config.padded_size
    top, left = (ph - h) // 2, (pw - w) // 2
    return nn.functional.pad(x, (left, pw - w - left, top, ph - h - top))


def crop(x: torch.Tensor, config: NeuralConfig) -> torch.Tensor:
    """Inverse of :func:`pad`."""
    (h, w), (ph, pw) = config.input_size, config.padded_size
    top, left = (ph - h) // 2, (pw - w) // 2
    return x[..., top : top + h, left : left + w]


def table_indexes(gc: nn.Module, scales: torch.Tensor) -> torch.Tensor:
    """``GaussianConditional.build_indexes`` vectorised (same result): for each scale, the number
    of scale-table entries, all but the last, below the lower-bounded scale. int32, shaped like
    ``scales``."""
    table = gc.scale_table[:-1].contiguous()
    return torch.searchsorted(table, gc.lower_bound_scale(scales).contiguous(), right=False).to(
        torch.int32
    )


class HyperpriorCoder:
    """The hyperprior's two streams for one latent ``y`` ``(M, h, w)``: ``varint(len(z)) + z + y``.

    ``z = h_a(y)`` is coded with the factorized prior (as HECS-B's latent); ``y`` with the Gaussian
    conditional whose table indexes and means come from ``h_s(z_hat)``.
    """

    def __init__(self, model: SmallMeanScaleHyperprior) -> None:
        self.model = model
        config = model.config
        self.y_count = math.prod(config.latent_shape)
        self.z_coder = LatentCoder(model.entropy_bottleneck, config.hyper_shape)
        self.y_coder = TableCoder.of(model.gaussian_conditional)

    def _gauss(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hyper-latent ``(1, N, h, w)`` -> table indexes and means of ``y`` (both ``(M, H,
        W)``)."""
        scales, means = self.model.h_s(z_hat).chunk(2, 1)
        return table_indexes(self.model.gaussian_conditional, scales)[0], means[0]

    def payload(self, y: torch.Tensor) -> bytes:
        z_bytes, z_hat = self.z_coder.encode(self.model.h_a(y[None])[0])
        idx, means = self._gauss(z_hat[None])
        ys = self.y_coder.clamp(torch.round(y - means).to(torch.int64), idx)
        return frame_two(z_bytes, self.y_coder.encode(ys, idx))

    def decode(self, data: bytes) -> torch.Tensor:
        z_bytes, y_bytes = unframe_two(
            data, self.z_coder.max_payload_bytes(), TableCoder.max_bytes(self.y_count)
        )
        idx, means = self._gauss(self.z_coder.decode(z_bytes)[None])
        return self.y_coder.decode(y_bytes, idx).to(torch.float32) + means

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        return self.decode(self.payload(y))

    def max_payload_bytes(self) -> int:
        return 3 + self.z_coder.max_payload_bytes() + TableCoder.max_bytes(self.y_count)
