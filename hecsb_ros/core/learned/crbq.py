"""CR+BQ: channel reduction and 8-bit bottleneck quantisation (Matsubara et al.'s head network
distillation baseline, the seed paper's "CR+BQ", section 4.2).

The teacher's head is replaced, at the same split point as HECS-B, by

- an edge encoder of a few convolutions that reduce the channels to ``C``:
  ``conv 5x5/2 (32) - BN - ReLU - conv 5x5/2 (16) - BN - ReLU - conv 3x3 (C)``, latent
  ``(N, C, H/4, W/4)`` (one more ``conv 5x5/2 (32) - BN - ReLU`` per halving at coarser splits);
- 8-bit quantisation with one affine scale per tensor (per image): ``q = round((y - lo) * 255 /
  (hi - lo))`` with ``lo, hi`` the tensor's minimum and maximum; the payload is ``lo, hi`` as
  little-endian float32 followed by the ``C h w`` bytes of ``q`` (no entropy coding);
- a server decoder back to the split features, then the teacher's unchanged tail.

With ``stem`` (camera scale) the encoder starts with the teacher's own layers to ``stem_stride``,
initialised from its weights (:mod:`hecsb_ros.core.learned.stem`), followed by the ``widths``
convolutions (none when the stem reaches the split) and ``conv 3x3 (C)``: the bottleneck injected
into the teacher's head, as Matsubara et al. inject it.

Trained by head distillation only (:func:`hecsb_ros.core.training.recipes.head_distill`):
``1/2 ||h - g(Q(f(x)))||^2`` per feature element, the quantiser passed straight through (the
distortion term of eq. 14 without a rate term).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import torch
from torch import nn

from hecsb_ros.core.grid import downsampled, encoder_depth, upsampling_steps
from hecsb_ros.core.learned.base import LearnedModel, config_from_dict, register_model
from hecsb_ros.core.learned.stem import StemFirst, check_stem_stride, stem_free_dict, teacher_stem
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.teachers.classifier import Classifier

HEADER = struct.Struct("<ff")


@dataclass(frozen=True)
class CrbqConfig:
    """Input ``(C_in, (H, W))``, split features ``(T, (h, w))`` and bottleneck channels
    ``channels``.

    ``widths``: the encoder's stride-2 convolutions (two at the Fashion-MNIST split; one more per
    halving where the split features are coarser, as :func:`crbq_config_for` picks). ``stem``: ''
    or a teacher family whose first layers, to ``stem_stride``, come before them.
    """

    in_channels: int
    input_size: tuple[int, int]
    feature_channels: int
    feature_size: tuple[int, int]
    channels: int = 2
    widths: tuple[int, ...] = (32, 16)
    stem: str = ""
    stem_stride: int = 0

    def __post_init__(self) -> None:
        if self.stem:
            check_stem_stride(self.stem_stride)
        self.upsampling  # validates the input and feature sizes

    @property
    def latent_size(self) -> tuple[int, int]:
        stem_steps = self.stem_stride.bit_length() - 1 if self.stem else 0
        return downsampled(self.input_size, len(self.widths) + stem_steps)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.latent_size)

    @property
    def upsampling(self) -> int:
        return upsampling_steps(self.latent_size, self.feature_size)

    @property
    def payload_bytes(self) -> int:
        """Exact payload size: the two float32 bounds and one byte per latent element."""
        return HEADER.size + math.prod(self.latent_shape)

    def to_dict(self) -> dict:
        return stem_free_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "CrbqConfig":
        return config_from_dict(cls, d)


def crbq_config_for(teacher: Classifier, channels: int, stem: bool = False) -> CrbqConfig:
    """CR+BQ config matching ``teacher``'s input and split features (widths 32, ..., 32, 16; with
    ``stem``, the teacher's own layers to the split and no further convolutions before ``conv 3x3
    (C)``)."""
    spec = teacher.spec
    feature_channels, feature_size = teacher.split_features()
    depth = encoder_depth(spec.input_size, feature_size)
    if stem:
        return CrbqConfig(
            spec.in_channels,
            spec.input_size,
            feature_channels,
            feature_size,
            channels,
            widths=(),
            stem=spec.backbone,
            stem_stride=1 << depth,
        )
    return CrbqConfig(
        spec.in_channels,
        spec.input_size,
        feature_channels,
        feature_size,
        channels,
        widths=(32,) * (depth - 1) + (16,),
    )


def _cbr(cin: int, cout: int, k: int, s: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, s, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def quantize_8bit(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-tensor affine 8-bit quantisation of ``y`` ``(N, ...)``: (q uint8, lo ``(N,)``, hi
    ``(N,)``)."""
    flat = y.detach().flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    scale = torch.where(hi > lo, (hi - lo) / 255.0, torch.ones_like(hi))
    q = torch.round(
        (y.detach() - lo.view(-1, *[1] * (y.dim() - 1))) / scale.view(-1, *[1] * (y.dim() - 1))
    )
    return q.clamp_(0, 255).to(torch.uint8), lo, hi


def dequantize_8bit(q: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`quantize_8bit`: ``lo + q (hi - lo) / 255``, float32 like ``q``."""
    shape = (-1, *[1] * (q.dim() - 1))
    scale = torch.where(hi > lo, (hi - lo) / 255.0, torch.zeros_like(hi))
    return lo.view(shape) + q.to(torch.float32) * scale.view(shape)


@register_model
class CrbqBottleneck(StemFirst, LearnedModel):
    """Channel-reducing encoder, 8-bit quantiser and decoder to the teacher's split features."""

    kind = "crbq"
    description = "Channel reduction + 8-bit bottleneck quantisation; quality = rate level"
    rate_setting = "channels"
    config_type = CrbqConfig

    def __init__(self, config: CrbqConfig) -> None:
        super().__init__()
        self.config = config
        encoder: list[nn.Module] = []
        cin = config.in_channels
        if config.stem:
            stem, cin = teacher_stem(config.stem, config.input_size, config.stem_stride)
            encoder.append(stem)
        for w in config.widths:
            encoder += _cbr(cin, w, 5, 2)
            cin = w
        self.encoder = nn.Sequential(*encoder, nn.Conv2d(cin, config.channels, 3, 1, 1))
        t = config.feature_channels
        width = 2 * t
        layers: list[nn.Module] = _cbr(config.channels, width, 3, 1)
        for _ in range(config.upsampling):
            out = max(width // 2, 8)
            layers += [
                nn.ConvTranspose2d(width, out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            width = out
        layers.append(nn.Conv2d(width, t, 3, 1, 1))
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(N, C_in, H, W)`` -> latent ``(N, C, h, w)`` before quantisation."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor, after_stem: bool = False) -> torch.Tensor:
        """Split features ``(N, T, h, w)`` through the quantised latent (straight-through in
        training); ``after_stem``: ``x`` is the stem's output (the teacher's split features), not
        the image."""
        y = self.encode_after_stem(x) if after_stem else self.encode(x)
        y_hat = dequantize_8bit(*quantize_8bit(y))
        return self.decoder(y + (y_hat - y).detach())

    def edge(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def make_coder(self) -> "ByteQuantCoder":
        return ByteQuantCoder(self.config)


def pack(q: torch.Tensor, lo: float, hi: float) -> bytes:
    """One image's quantised latent ``(C, h, w)`` uint8 and bounds -> payload."""
    return HEADER.pack(lo, hi) + q.contiguous().numpy().tobytes()


def unpack(data: bytes, config: CrbqConfig) -> torch.Tensor:
    """Payload -> dequantised latent ``(C, h, w)``; PayloadError unless it is exactly well
    formed."""
    need = config.payload_bytes
    if len(data) != need:
        raise PayloadError(
            "truncated" if len(data) < need else "decode_error",
            f"crbq payload has {len(data)} B, the latent needs exactly {need} B",
        )
    lo, hi = HEADER.unpack_from(data)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise PayloadError("decode_error", f"bad quantisation bounds ({lo!r}, {hi!r})")
    q = torch.frombuffer(bytearray(data[HEADER.size :]), dtype=torch.uint8).view(
        config.latent_shape
    )
    return dequantize_8bit(q[None], torch.tensor([lo]), torch.tensor([hi]))[0]


class ByteQuantCoder:
    """CR+BQ's "entropy coding": 8-bit quantisation of one latent ``(C, h, w)``, packed
    (:func:`pack`)."""

    def __init__(self, config: CrbqConfig) -> None:
        self.config = config

    def payload(self, y: torch.Tensor) -> bytes:
        q, lo, hi = quantize_8bit(y[None])
        return pack(q[0], float(lo[0]), float(hi[0]))

    def decode(self, data: bytes) -> torch.Tensor:
        return unpack(data, self.config)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        return dequantize_8bit(*quantize_8bit(y[None]))[0]

    def max_payload_bytes(self) -> int:
        return self.config.payload_bytes
