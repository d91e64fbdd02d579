"""The HECS-B bottleneck (seed paper, section 3.3, eq. 1 and 13-14).

Edge half, the encoder ``f_theta = W o f_psi`` (compressed-sensing inspired, eq. 1):

- ``f_psi``, the acquisition network: a few stride-2 convolutions with ReLU that map the image
  ``(N, C, H, W)`` to ``l`` channels on a coarse grid ``(N, l, H / 2^d, W / 2^d)``, optionally
  after the teacher's own first layers (``stem``). The *light head* (``separable``, codec
  ``hecsb_light``) takes the teacher's layers to stride 2 and then depthwise-separable stride-2
  convolutions to the split's grid, at about a quarter of the multiply-accumulates of the teacher's
  layers to the split.
- ``W``, a learned linear measurement operator (:class:`MeasurementOperator`, shared with the
  compressed-sensing experiment) applied at every grid position: each position's ``l``-vector
  ``f_psi(x)[:, :, i, j]`` is measured by the same ``m x l`` matrix, ``m < l``, giving the latent
  ``y = W f_psi(x)`` of shape ``(N, m, h, w)``. Per-position measurement keeps the edge cost tiny
  (a 1x1 convolution) and the latent spatially laid out for the decoder. ``||W||_F <= k`` is
  enforced by projecting ``W`` after every optimiser step (:meth:`HecsbBottleneck.project_`).

Latent quantisation: during training ``z = y + eps``, ``eps ~ U(-1/2, 1/2)`` (eq. 14); at
inference ``z`` is rounded (around the prior's medians, as CompressAI does). The learned
factorized prior ``p_phi(z)`` is CompressAI's :class:`EntropyBottleneck` with one density per
measurement channel; it entropy-codes the rounded latent to bytes
(:class:`~hecsb_ros.core.entropy.latent.LatentCoder`).

Server half: the decoder ``g_phi`` (convolutions, transposed convolutions where the split
features are finer than the latent grid) reconstructs the teacher's features ``h`` at the split;
the teacher's remaining stages and classifier then run unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

import torch
from compressai.entropy_models import EntropyBottleneck
from torch import nn

from hecsb_ros.core.grid import upsampling_steps
from hecsb_ros.core.learned.base import (
    HECSB_FORMAT,
    FactorizedLatentModel,
    config_from_dict,
    register_model,
)
from hecsb_ros.core.learned.stem import check_stem_stride, teacher_stem
from hecsb_ros.core.measurement import MeasurementOperator, gaussian_frobenius_norm

#: Config fields of the server-side decoder only: a new decoder can sit behind a trained encoder.
DECODER_FIELDS = ("decoder_channels", "decoder_blocks")


@dataclass(frozen=True)
class HecsbConfig:
    """Architecture of a HECS-B bottleneck.

    Attributes:
        in_channels, input_size: the classifier's input ``(C, (H, W))``.
        feature_channels, feature_size: the teacher's features at the split ``(C_h, (h, w))``.
        acq_channels: widths of ``f_psi``'s stride-2 convolutions; the last one is ``l``.
        measurements: ``m``, measurements per latent position (``m < l``).
        max_norm: ``k`` of ``||W||_F <= k``; 0 means the Gaussian default ``sqrt(l)``.
        decoder_channels: width of ``g_phi``.
        decoder_blocks: residual blocks of ``g_phi`` at the feature resolution (server side only;
            they add decoder capacity without touching the edge half or the payload).
        kernel: kernel size of ``f_psi``'s convolutions.
        stem: '' or a teacher family (``efficientnet_lite0``) whose first layers, up to
            ``stem_stride``, start ``f_psi`` (the compressed-sensing module in a shallow layer of
            the DNN, as the seed paper puts it); they are initialised from the teacher and
            fine-tuned, and ``acq_channels`` are the stride-2 convolutions after them.
        stem_stride: the stride at which the stem ends (a power of 2).
        stem_channels: the stem's output channels; ``l`` when there are no ``acq_channels`` (the
            stem then reaches the split itself and ``W`` measures the teacher's own features).
        separable: ``f_psi``'s layers after the stem are depthwise-separable (MobileNet style): a
            depthwise ``kernel x kernel`` stride-2 convolution, ReLU, a pointwise 1x1 convolution
            to the layer's width, ReLU; the last pointwise convolution has no ReLU (``f_psi`` then
            ends linear, as the teacher's blocks do, so that it can reproduce the signed split
            features). The light head: a few M multiply-accumulates instead of a full convolution's
            tens.
        linear_inverse: the decoder adds the least-squares inverse of the measurement,
            ``pinv(W) z + b``, to ``g_phi(z)`` (whose last layer then starts at zero): decoding
            starts as the classical linear recovery of the measured features and ``g_phi`` learns
            the correction.
    """

    in_channels: int
    input_size: tuple[int, int]
    feature_channels: int
    feature_size: tuple[int, int]
    acq_channels: tuple[int, ...] = (16, 24)
    measurements: int = 2
    max_norm: float = 0.0
    decoder_channels: int = 64
    kernel: int = 5
    decoder_blocks: int = 0
    stem: str = ""
    stem_stride: int = 4
    stem_channels: int = 0
    linear_inverse: bool = False
    separable: bool = False

    def __post_init__(self) -> None:
        if not self.acq_channels and not (self.stem and self.stem_channels > 0):
            raise ValueError("f_psi needs acq_channels, or a stem with stem_channels")
        if self.measurements >= self.latent_l:
            raise ValueError(f"need m < l: m={self.measurements}, l={self.latent_l}")
        if self.stem:
            check_stem_stride(self.stem_stride)
        if self.separable and not self.acq_channels:
            raise ValueError("separable needs acq_channels (the layers after the stem)")
        d = self.downsampling
        h, w = self.latent_size
        if (h << d, w << d) != tuple(self.input_size):
            raise ValueError(f"input size {self.input_size} not divisible by 2^{d}")
        self.upsampling  # validates the feature size

    @property
    def downsampling(self) -> int:
        """Stride-2 steps from the input to the latent grid (the stem's and the convolutions')."""
        return len(self.acq_channels) + (self.stem_stride.bit_length() - 1 if self.stem else 0)

    @property
    def latent_l(self) -> int:
        return self.acq_channels[-1] if self.acq_channels else self.stem_channels

    @property
    def latent_size(self) -> tuple[int, int]:
        d = self.downsampling
        return (self.input_size[0] >> d, self.input_size[1] >> d)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(m, h, w)`` of one image's latent."""
        return (self.measurements, *self.latent_size)

    @property
    def upsampling(self) -> int:
        """Number of 2x upsampling steps from the latent grid to the feature grid."""
        return upsampling_steps(self.latent_size, self.feature_size)

    @property
    def norm_bound(self) -> float:
        return (
            self.max_norm
            if self.max_norm > 0
            else gaussian_frobenius_norm(self.measurements, self.latent_l)
        )

    def to_json(self) -> str:
        d = asdict(self)
        if not self.stem:  # configs without a stem read (and hash) as before it existed
            del d["stem"], d["stem_stride"], d["stem_channels"]
        if not self.linear_inverse:
            del d["linear_inverse"]
        if not self.separable:  # the standard head's configs (and their hashes) as before
            del d["separable"]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "HecsbConfig":
        return config_from_dict(cls, json.loads(text))


class Acquisition(nn.Module):
    """``f_psi``: ``(N, C, H, W)`` -> ``(N, l, H / 2^d, W / 2^d)``: an optional teacher stem, then
    stride-2 conv + ReLU layers, or with ``separable`` depthwise-separable stride-2 layers
    (depthwise conv, ReLU, pointwise conv, ReLU but after the last)."""

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, ...],
        kernel: int,
        stem: str = "",
        stem_stride: int = 4,
        input_size: tuple[int, int] = (0, 0),
        separable: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        if stem:
            self.stem, cin = teacher_stem(stem, input_size, stem_stride)
        for i, cout in enumerate(widths):
            if separable:
                layers += [
                    nn.Conv2d(cin, cin, kernel, 2, kernel // 2, groups=cin),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(cin, cout, 1),
                ]
                if i < len(widths) - 1:
                    layers.append(nn.ReLU(inplace=True))
            else:
                layers += [nn.Conv2d(cin, cout, kernel, 2, kernel // 2), nn.ReLU(inplace=True)]
            cin = cout
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.stem(x)) if hasattr(self, "stem") else self.net(x)


class ResidualBlock(nn.Module):
    """``x + conv3x3(relu(conv3x3(x)))`` followed by ReLU, at constant width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class Decoder(nn.Module):
    """``g_phi``: latent ``(N, m, h, w)`` -> features ``(N, C_h, h 2^u, w 2^u)``.

    Two 3x3 convolutions at the (cheap) latent resolution, one 2x transposed convolution per
    upsampling step (halving the width), ``blocks`` residual blocks at the feature resolution,
    and a final 3x3 convolution to the teacher's channels.
    """

    def __init__(
        self, measurements: int, channels: int, out_channels: int, upsampling: int, blocks: int = 0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(measurements, channels, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.ReLU(inplace=True),
        ]
        width = channels
        for _ in range(upsampling):
            layers += [
                nn.ConvTranspose2d(width, max(width // 2, 8), 4, 2, 1),
                nn.ReLU(inplace=True),
            ]
            width = max(width // 2, 8)
        layers += [ResidualBlock(width) for _ in range(blocks)]
        layers += [nn.Conv2d(width, out_channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@register_model
class HecsbBottleneck(FactorizedLatentModel):
    """Encoder ``f_theta = W o f_psi``, factorized prior ``p_phi(z)`` and decoder ``g_phi``.

    Call order: train (``forward``, :meth:`project_` after each step, ``aux_loss``), then
    ``update()`` once before saving; the integer CDF tables are buffers of the state dict, so both
    ends of a link code with identical tables.
    """

    kind = "hecsb"
    description = "HECS-B learned bottleneck; quality = rate level (0 = fewest bytes)"
    rate_setting = "beta"
    checkpoint_format = HECSB_FORMAT
    config_type = HecsbConfig

    def __init__(self, config: HecsbConfig) -> None:
        super().__init__()
        self.config = config
        self.f_psi = Acquisition(
            config.in_channels,
            config.acq_channels,
            config.kernel,
            config.stem,
            config.stem_stride,
            config.input_size,
            config.separable,
        )
        self.measure = MeasurementOperator(
            config.latent_l, config.measurements, config.norm_bound, spatial=True
        )
        self.entropy_bottleneck = EntropyBottleneck(config.measurements)
        self.g_phi = Decoder(
            config.measurements,
            config.decoder_channels,
            config.feature_channels,
            config.upsampling,
            config.decoder_blocks,
        )
        if config.linear_inverse:
            if config.upsampling or config.latent_l != config.feature_channels:
                raise ValueError(
                    "linear_inverse needs W to measure the split features themselves "
                    "(latent grid = feature grid, l = feature channels)"
                )
            self.feature_mean = nn.Parameter(torch.zeros(config.feature_channels))
            last = self.g_phi.net[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """Server network: rounded latent ``(N, m, h, w)`` -> features; with ``linear_inverse``,
        ``pinv(W) z + b`` (the least-squares recovery) plus ``g_phi``'s correction."""
        h = self.g_phi(z)
        if self.config.linear_inverse:
            inverse = (
                self._frozen_inverse
                if self._frozen_inverse is not None
                else torch.linalg.pinv(self.measure.weight)
            )  # (l, m)
            h = (
                h
                + nn.functional.conv2d(z, inverse[:, :, None, None])
                + self.feature_mean[None, :, None, None]
            )
        return h

    _frozen_inverse: torch.Tensor | None = None

    def freeze_inverse_(self) -> None:
        """For a deployed model (never trained again): compute ``pinv(W)`` once instead of per call
        (the same tensor; ONNX has no pseudo-inverse operator, so an export needs it as a
        constant)."""
        if self.config.linear_inverse:
            with torch.no_grad():
                self._frozen_inverse = torch.linalg.pinv(self.measure.weight.detach()).clone()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Edge network: image ``(N, C, H, W)`` -> unquantised latent ``y = W f_psi(x)`` ``(N, m,
        h, w)``."""
        return self.measure(self.f_psi(x))

    def stem(self) -> nn.Module | None:
        return self.f_psi.stem if self.config.stem else None

    def encode_after_stem(self, s: torch.Tensor) -> torch.Tensor:
        if not self.config.stem:
            raise NotImplementedError("this HECS-B has no stem")
        return self.measure(self.f_psi.net(s))

    def stem_reaches_split(self) -> bool:
        """The stem ends at the split (no layers of ``f_psi`` after it): its output is the
        teacher's split features, so cached features can stand in for running it (the light head's
        stem ends earlier)."""
        return bool(self.config.stem) and not self.config.acq_channels

    def project_(self) -> None:
        """Enforce ``||W||_F <= k`` (call after every optimiser step)."""
        self.measure.project_()

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of ``f_theta`` (``f_psi`` and ``W``)."""
        return list(self.f_psi.parameters()) + list(self.measure.parameters())

    def load_edge_state_(self, other: "HecsbBottleneck") -> None:
        """Copy ``f_theta`` and the prior from ``other`` (same edge architecture); ``g_phi`` stays
        as is.

        Lets a new decoder be trained behind an already trained encoder and prior.
        """
        theirs = replace(other.config, **{f: getattr(self.config, f) for f in DECODER_FIELDS})
        if theirs != self.config:
            raise ValueError(f"edge architectures differ: {other.config} vs {self.config}")
        edge = ("f_psi", "measure", "entropy_bottleneck")
        state = {k: v for k, v in other.state_dict().items() if k.split(".")[0] in edge}
        self.load_state_dict(state, strict=False)  # same edge config: the edge keys match exactly

    def grown(
        self, measurements: int, generator: torch.Generator | None = None
    ) -> "HecsbBottleneck":
        """A copy with ``measurements`` (> m) rows in ``W``: the trained model plus new
        measurements.

        ``f_psi``, the first ``m`` rows of ``W``, the prior's densities of the first ``m`` channels
        and the decoder are copied. The new rows of ``W`` are Gaussian and share the room left in
        the ball ``||W||_F <= k`` (at most the mean norm of the old rows each; if there is no room,
        the whole ``W`` is projected back onto the ball). Each new channel starts with a copy of
        the first channel's fitted density rather than the prior's wide initial one, which prices
        every value at about 4 bits. (On Fashion-MNIST at beta 4e-6 to 6e-6 the rate term still
        shrinks a third row towards zero: see the README.) The decoder's weights on the new
        channels start at a tenth of their default scale, so the grown model starts close to the
        trained one while gradients still reach the new rows. Fine-tuning (stage 2) then teaches
        the encoder what to put there.
        """
        m = self.config.measurements
        if measurements <= m:
            raise ValueError(f"can only add measurements: have {m}, asked for {measurements}")
        new = type(self)(replace(self.config, measurements=measurements))
        own = self.state_dict()
        with torch.no_grad():
            new.f_psi.load_state_dict(self.f_psi.state_dict())
            w_old = self.measure.weight
            k_new = measurements - m
            mean_norm = float(w_old.norm(dim=1).mean())
            room = max(new.config.norm_bound**2 - float(w_old.norm()) ** 2, 0.0) / k_new
            # no room: project_ below shrinks all rows
            norm = min(math.sqrt(room), mean_norm) or mean_norm
            rows = torch.randn(k_new, w_old.shape[1], generator=generator)
            rows *= norm / rows.norm(dim=1, keepdim=True)
            new.measure.weight.copy_(torch.cat([w_old, rows]))
            new.project_()
            for name, p in new.entropy_bottleneck.named_parameters():  # per-channel along dim 0
                theirs = own[f"entropy_bottleneck.{name}"]
                p[:m] = theirs
                p[m:] = theirs[:1]
            first = new.g_phi.net[0]
            for name, p in new.g_phi.named_parameters():
                old = own[f"g_phi.{name}"]
                if p is first.weight:
                    p[:, m:] *= 0.1
                    p[:, :m] = old
                else:
                    p.copy_(old)
        return new.train(self.training)

    def widened(self, acq_channels: tuple[int, ...]) -> "HecsbBottleneck":
        """A copy whose ``f_psi`` has the wider ``acq_channels`` and computes the same latent.

        Function-preserving widening: every trained filter is copied, new filters start from the
        default initialisation, and the weights that read the new channels (the next
        convolution's, or the new columns of ``W``) start at zero, so the latent, the prior, the
        decoder and so the payload are those of the trained model until fine-tuning (stage 2)
        puts the added capacity to use. The bound ``k`` of ``||W||_F <= k`` follows the config
        (``sqrt(l)`` by default, so it grows with ``l``).
        """
        if self.config.separable:
            raise ValueError(
                "widened() widens full convolutions; this f_psi is depthwise-separable"
            )
        old = self.config.acq_channels
        acq = tuple(int(c) for c in acq_channels)
        if len(acq) != len(old) or any(a < b for a, b in zip(acq, old)) or acq == old:
            raise ValueError(f"can only widen f_psi layer by layer: have {old}, asked for {acq}")
        new = type(self)(replace(self.config, acq_channels=acq))
        own = self.state_dict()
        convs = [m for m in new.f_psi.net if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            cin_old = self.config.in_channels
            for i, conv in enumerate(convs):
                w, b = own[f"f_psi.net.{2 * i}.weight"], own[f"f_psi.net.{2 * i}.bias"]
                conv.weight[:, cin_old:] = 0.0  # reads channels added to the layer below
                conv.weight[: old[i], :cin_old] = w
                conv.bias[: old[i]] = b
                cin_old = old[i]
            new.measure.weight.zero_()
            new.measure.weight[:, : old[-1]] = self.measure.weight
            state = {
                k: v for k, v in own.items() if k.split(".")[0] in ("entropy_bottleneck", "g_phi")
            }
            new.load_state_dict(state, strict=False)
        return new.train(self.training)


@register_model
class HecsbLightBottleneck(HecsbBottleneck):
    """HECS-B with the light head: the same model, format, payload and training, served as its own
    codec.

    Its checkpoints are ``hecsb_light_{tag}_r{LEVEL}.safetensors`` (metadata ``kind`` =
    ``hecsb_light``), so the light head's rate levels ship beside the standard head's and both are
    selectable by codec name (``hecsb`` / ``hecsb_light``) with no other setting; a light
    checkpoint also loads as ``hecsb`` (``checkpoint=``: it is a HECS-B). The architecture is the
    config's: at camera scale (:data:`~hecsb_ros.core.training.recipes.HECSB_ARCH` ``effl0_light``)
    ``f_psi`` is the teacher's layers to stride 2 and depthwise-separable stride-2 layers to the
    split's grid.
    """

    kind = "hecsb_light"
    description = (
        "HECS-B with the light edge head (teacher's layers to stride 2, separable "
        "convolutions); quality = rate level"
    )
