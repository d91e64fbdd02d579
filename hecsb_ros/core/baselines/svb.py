"""SVB, the Shallow Variational Bottleneck (Matsubara et al.'s Entropic Student; Furutanpey et al.).

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

Training is the seed paper's two-stage procedure with the same :class:`Distiller` as HECS-B
(eq. 14, then eq. 10-12); the class duck-types the interface the distiller uses
(``encode``, ``quantize``, ``forward``, ``g_phi``, ``aux_loss``, ``project_`` (nothing to
project), ``update``, ``encoder_parameters``, ``prior_parameters``, ``prepare_state_for_load``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from torch import nn

from hecsb_ros.core.baselines import checkpoint as ckpt
from hecsb_ros.core.baselines.gdn import freeze_gdn_
from hecsb_ros.core.bottleneck.coding import LatentCoder
from hecsb_ros.core.grid import downsampled, encoder_depth, upsampling_steps
from hecsb_ros.core.models.student_tail import build_tail, split_tail_state, tail_state
from hecsb_ros.core.models import Classifier, check_teacher, load_classifier, model_id_of

KIND = "svb"


@dataclass(frozen=True)
class SvbConfig:
    """Architecture of an SVB: input ``(C, (H, W))``, split features ``(T, (h, w))``, widths.

    ``latent_channels`` is the Entropic Student's N (encoder widths 4N, 2N, N); ``downsampling`` is
    the number of stride-2 convolutions (2 as in the Entropic Student; 3 at a ResNet-50 split
    before ``layer3``, whose features are 1/8 of the input: the extra ones are 4N wide).
    """

    in_channels: int
    input_size: tuple[int, int]
    feature_channels: int
    feature_size: tuple[int, int]
    latent_channels: int = 12
    kernel: int = 5
    downsampling: int = 2

    def __post_init__(self) -> None:
        if self.downsampling < 1:
            raise ValueError(f"downsampling must be at least 1, not {self.downsampling}")
        self.upsampling  # validates the input and feature sizes

    @property
    def latent_size(self) -> tuple[int, int]:
        return downsampled(self.input_size, self.downsampling)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(N, h, w)`` of one image's latent."""
        return (self.latent_channels, *self.latent_size)

    @property
    def upsampling(self) -> int:
        """2x upsampling steps from the latent grid to the feature grid."""
        return upsampling_steps(self.latent_size, self.feature_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SvbConfig":
        d = dict(d)
        d["input_size"], d["feature_size"] = tuple(d["input_size"]), tuple(d["feature_size"])
        return cls(**d)


class SvbBottleneck(nn.Module):
    """Encoder ``g_a`` (with GDN), factorized prior and decoder ``g_phi`` (with IGDN).

    Call order as for HECS-B: train, then :meth:`update` once before saving (the CDF tables are
    buffers of the state dict).
    """

    def __init__(self, config: SvbConfig) -> None:
        super().__init__()
        self.config = config
        n, k = config.latent_channels, config.kernel
        widths = [4 * n] * (config.downsampling - 1) + [2 * n]
        encoder: list[nn.Module] = []
        cin = config.in_channels
        for w in widths:
            encoder += [nn.Conv2d(cin, w, k, 2, k // 2), GDN(w)]
            cin = w
        self.g_a = nn.Sequential(*encoder, nn.Conv2d(cin, n, 3, 1, 1))
        t = config.feature_channels
        width = 2 * t
        layers: list[nn.Module] = [nn.Conv2d(n, width, 3, 1, 1), GDN(width, inverse=True)]
        for _ in range(config.upsampling):
            layers += [nn.ConvTranspose2d(width, max(width // 2, 8), 4, 2, 1), GDN(max(width // 2, 8), inverse=True)]
            width = max(width // 2, 8)
        layers.append(nn.Conv2d(width, t, 3, 1, 1))
        self.g_phi = nn.Sequential(*layers)
        self.entropy_bottleneck = EntropyBottleneck(n)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Edge network: image ``(N, C, H, W)`` -> unquantised latent ``(N, n, H/2^d, W/2^d)``."""
        return self.g_a(x)

    def quantize(self, y: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent and likelihoods, modes 'noise' (eq. 14), 'round' and 'ste' as in HECS-B."""
        if mode == "noise":
            return self.entropy_bottleneck(y, training=True)
        z_round, lik_round = self.entropy_bottleneck(y, training=False)
        if mode == "round":
            return z_round, lik_round
        if mode == "ste":
            _, lik_noise = self.entropy_bottleneck(y, training=True)
            return y + (z_round - y).detach(), lik_noise
        raise ValueError(f"unknown quantisation mode {mode!r}")

    def forward(self, x: torch.Tensor, mode: str = "noise") -> tuple[torch.Tensor, torch.Tensor]:
        """``x (N, C, H, W)`` -> reconstructed split features and likelihoods ``(N, n, h, w)``."""
        z, lik = self.quantize(self.encode(x), mode)
        return self.g_phi(z), lik

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()

    def project_(self) -> None:
        """Nothing to project (SVB has no norm-constrained operator)."""

    def update(self) -> None:
        self.entropy_bottleneck.update(force=True)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.g_a.parameters())

    def prior_parameters(self, aux: bool) -> list[nn.Parameter]:
        return [p for n, p in self.entropy_bottleneck.named_parameters() if n.endswith("quantiles") == aux]

    def prepare_state_for_load(self, state: dict[str, torch.Tensor]) -> None:
        ckpt.resize_buffers_for_load(self.entropy_bottleneck, state, "entropy_bottleneck")


def svb_config_for(teacher: Classifier, latent_channels: int = 12) -> SvbConfig:
    """SVB config matching ``teacher``'s input and split features."""
    spec = teacher.spec
    channels, feature_size = teacher.split_features()
    return SvbConfig(spec.in_channels, spec.input_size, channels, feature_size, latent_channels,
                     downsampling=encoder_depth(spec.input_size, feature_size))


def save_svb(path: Path | str, model: SvbBottleneck, teacher_model_id: str, facts: dict | None = None,
             tail: nn.Module | None = None) -> Path:
    """Save an SVB (after ``update()``); ``tail``: a fine-tuned teacher tail to ship with it."""
    if model.entropy_bottleneck._offset.numel() == 0:
        raise ValueError("call model.update() before saving")
    state, facts = dict(model.state_dict()), dict(facts or {})
    if tail is not None:
        state.update(tail_state(tail))
        facts["tail"] = "fine-tuned"
    return ckpt.save(path, KIND, state, model.config.to_dict(), teacher_model_id, facts)


def load_svb(path: Path | str, device: str = "cpu") -> tuple[SvbBottleneck, dict[str, str]]:
    model, meta, _ = _read_svb(path, device)
    return model, meta


def _read_svb(path: Path | str, device: str) -> tuple[SvbBottleneck, dict[str, str], dict[str, torch.Tensor]]:
    """:func:`load_svb` plus the state of the fine-tuned tail in the same file (empty: none)."""
    state, config, meta = ckpt.load(path, KIND)
    state, tail = split_tail_state(state)  # a fine-tuned tail: see build_tail
    model = SvbBottleneck(SvbConfig.from_dict(config))
    model.prepare_state_for_load(state)
    model.load_state_dict(state)
    return model.to(device).eval(), meta, tail


class SvbSplit:
    """Deployable SVB: edge ``encode`` (image tensor -> bytes), server ``decode`` (bytes -> logits)."""

    def __init__(self, path: Path | str, teacher: Classifier | None = None, device: str = "cpu") -> None:
        self.path = Path(path)
        self.model, self.metadata, tail_weights = _read_svb(self.path, device)  # the file is read once
        freeze_gdn_(self.model)  # deployed, never trained: GDN's parameters computed once
        self.teacher = teacher if teacher is not None else load_classifier(None, device)
        check_teacher(self.path, self.metadata["teacher_model_id"], self.teacher)
        self.model_id = model_id_of(self.path)
        self.tail_module = build_tail(self.teacher.model.tail, tail_weights).to(device)  # fine-tuned, or the teacher's
        # the same coder as HECS-B's latent: both are factorized priors over a (C, h, w) latent
        self.coder = LatentCoder(self.model.entropy_bottleneck, self.model.config.latent_shape)

    def max_payload_bytes(self) -> int:
        return self.coder.max_payload_bytes()

    @torch.inference_mode()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> unquantised latent ``(N, n, h, w)``."""
        return self.model.encode(x)

    def entropy_encode(self, y: torch.Tensor) -> bytes:
        """One latent ``(n, h, w)`` -> payload."""
        return self.coder.payload(y)

    @torch.inference_mode()
    def features(self, data: bytes) -> torch.Tensor:
        """Server: payload -> split features ``(1, T, h, w)`` (``g_phi`` of the decoded latent)."""
        return self.model.g_phi(self.coder.decode(data)[None])

    @torch.inference_mode()
    def decode(self, data: bytes) -> torch.Tensor:
        """Payload -> logits ``(K,)``; PayloadError on invalid bytes."""
        return self.tail_module(self.features(data))[0]

    @torch.inference_mode()
    def logits_rounded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` through the clamped rounded latent (equal to coding, without the coder)."""
        y = self.model.encode(x)
        z = torch.stack([self.coder.dequantize(self.coder.symbols(y[i])) for i in range(y.shape[0])])
        return self.tail_module(self.model.g_phi(z))

