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
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from compressai.layers import GDN
from compressai.models import FactorizedPrior, MeanScaleHyperprior
from compressai.models.utils import conv, deconv
from torch import nn
from tqdm import tqdm

from hecsb_ros.core.baselines import checkpoint as ckpt
from hecsb_ros.core.baselines.entropy import TableCoder, frame_two, unframe_two
from hecsb_ros.core.baselines.gdn import freeze_gdn_
from hecsb_ros.core.bottleneck.coding import LatentCoder
from hecsb_ros.core.models import Classifier, load_classifier, model_id_of
from hecsb_ros.core.training.common import batches
from hecsb_ros.core.training.data import PixelSource

KINDS = ("factorized", "hyperprior")


@dataclass(frozen=True)
class NeuralConfig:
    """Model ``kind`` ('factorized' or 'hyperprior'), channels ``N`` and ``M``, image ``(C, (H, W))``."""

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
        """Input padded up to a multiple of 32 (8 for ``g_a``, 4 more for the hyperprior's ``h_a``)."""
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
        d = dict(d)
        d["input_size"] = tuple(d["input_size"])
        return cls(**d)


def _analysis(cin: int, n: int, m: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, n), GDN(n), conv(n, n), GDN(n), conv(n, m))


def _synthesis(m: int, n: int, cout: int) -> nn.Sequential:
    return nn.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True), deconv(n, cout))


class SmallFactorizedPrior(FactorizedPrior):
    """CompressAI's factorized prior with ``in_channels`` and three analysis/synthesis stages."""

    def __init__(self, N: int, M: int, in_channels: int = 1) -> None:
        super().__init__(N, M)
        self.g_a, self.g_s = _analysis(in_channels, N, M), _synthesis(M, N, in_channels)

    @property
    def downsampling_factor(self) -> int:
        return 8


class SmallMeanScaleHyperprior(MeanScaleHyperprior):
    """CompressAI's mean-scale hyperprior with ``in_channels`` and three analysis/synthesis stages."""

    def __init__(self, N: int, M: int, in_channels: int = 1) -> None:
        super().__init__(N, M)
        self.g_a, self.g_s = _analysis(in_channels, N, M), _synthesis(M, N, in_channels)

    @property
    def downsampling_factor(self) -> int:
        return 32


def build(config: NeuralConfig) -> nn.Module:
    cls = SmallFactorizedPrior if config.kind == "factorized" else SmallMeanScaleHyperprior
    return cls(config.N, config.M, config.in_channels)


def pad(x: torch.Tensor, config: NeuralConfig) -> torch.Tensor:
    """Pixels in [0, 1] ``(N, C, H, W)`` -> zero-padded ``(N, C, H', W')`` (centred)."""
    (h, w), (ph, pw) = config.input_size, config.padded_size
    top, left = (ph - h) // 2, (pw - w) // 2
    return nn.functional.pad(x, (left, pw - w - left, top, ph - h - top))


def crop(x: torch.Tensor, config: NeuralConfig) -> torch.Tensor:
    """Inverse of :func:`pad`."""
    (h, w), (ph, pw) = config.input_size, config.padded_size
    top, left = (ph - h) // 2, (pw - w) // 2
    return x[..., top:top + h, left:left + w]


def rd_loss(out: dict, x: torch.Tensor, lmbda: float, num_pixels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CompressAI's rate-distortion loss ``lambda 255^2 MSE + bpp``: (loss, mse, bpp)."""
    bpp = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values()) / (x.shape[0] * num_pixels)
    mse = nn.functional.mse_loss(out["x_hat"], x)
    return lmbda * 255 ** 2 * mse + bpp, mse, bpp


def train_rd(model: nn.Module, config: NeuralConfig, images: torch.Tensor | PixelSource, lmbda: float, epochs: int,
             batch_size: int = 64, lr: float = 1e-3, aux_lr: float = 1e-3, seed: int = 0,
             progress: bool = True, log: Callable[[str], None] = print, device: torch.device | str = "cpu",
             max_steps: int | None = None) -> nn.Module:
    """Train on pixels in [0, 1] ``(N, C, H, W)`` (random h-flips); ``update()`` at the end.

    ``images``: a tensor, or a :class:`~hecsb_ros.core.training.data.PixelSource` read batch by batch
    (an image folder).

    Trains on ``device``; the model comes back on the CPU. ``max_steps`` stops early (for timing).
    """
    device = torch.device(device)
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    steps = len(images) // batch_size
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(epochs * steps, 1), pct_start=0.1)
    aux_opt = torch.optim.Adam(aux_params, lr=aux_lr)
    num_pixels = config.input_size[0] * config.input_size[1]
    with tqdm(total=epochs * steps, desc=f"{config.kind} lambda={lmbda:g}", unit="batch", file=sys.stderr,
              disable=not progress) as bar:
        done = 0
        for epoch in range(epochs):
            model.train()
            sums = [torch.zeros((), device=device), torch.zeros((), device=device)]
            for idx in batches(len(images), batch_size, gen, drop_last=True):
                if max_steps is not None and done >= max_steps:
                    break
                x = images[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x).to(device, non_blocking=True)
                out = model(pad(x, config))
                out["x_hat"] = crop(out["x_hat"], config)
                loss, mse, bpp = rd_loss(out, x, lmbda, num_pixels)
                if done % 50 == 0 and not math.isfinite(loss.item()):  # now and then: .item() waits for the GPU
                    raise FloatingPointError(f"loss became {loss.item()}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                aux = model.aux_loss()
                aux_opt.zero_grad(set_to_none=True)
                aux.backward()
                aux_opt.step()
                sums[0] += mse.detach()
                sums[1] += bpp.detach()
                done += 1
                bar.update(1)
            mse_mean, bpp_mean = float(sums[0]) / max(steps, 1), float(sums[1]) / max(steps, 1)
            if not (math.isfinite(mse_mean) and math.isfinite(bpp_mean)):
                raise FloatingPointError(f"epoch {epoch + 1}: mse {mse_mean}, bpp {bpp_mean}")
            if max_steps is None:
                log(f"{config.kind} lambda={lmbda:g} epoch {epoch + 1}: mse {mse_mean:.4g}, "
                    f"bytes/image {bpp_mean * num_pixels / 8:.1f}")
    model.to("cpu")
    model.update(force=True)
    return model.eval()


def save_neural(path: Path | str, model: nn.Module, config: NeuralConfig, teacher_model_id: str,
                facts: dict | None = None) -> Path:
    if model.entropy_bottleneck._offset.numel() == 0:
        raise ValueError("call model.update(force=True) before saving")
    return ckpt.save(path, config.kind, model.state_dict(), config.to_dict(), teacher_model_id, facts)


def load_neural(path: Path | str, kind: str, device: str = "cpu") -> tuple[nn.Module, NeuralConfig, dict[str, str]]:
    state, config_d, meta = ckpt.load(path, kind)
    config = NeuralConfig.from_dict(config_d)
    model = build(config)
    model.load_state_dict(state)  # CompressionModel resizes the CDF buffers
    return model.to(device).eval(), config, meta


def table_indexes(gc: nn.Module, scales: torch.Tensor) -> torch.Tensor:
    """``GaussianConditional.build_indexes`` vectorised (same result): for each scale, the number of
    scale-table entries, all but the last, below the lower-bounded scale. int32, shaped like ``scales``."""
    table = gc.scale_table[:-1].contiguous()
    return torch.searchsorted(table, gc.lower_bound_scale(scales).contiguous(), right=False).to(torch.int32)


class NeuralInputSplit:
    """Edge: image -> bytes with the learned codec. Server: bytes -> image -> whole teacher -> logits."""

    def __init__(self, path: Path | str, kind: str, teacher: Classifier | None = None, device: str = "cpu") -> None:
        self.path = Path(path)
        self.model, self.config, self.metadata = load_neural(self.path, kind, device)
        freeze_gdn_(self.model)  # deployed, never trained: GDN's parameters computed once
        self.teacher = teacher if teacher is not None else load_classifier(None, device)
        self.model_id = model_id_of(self.path)
        spec = self.teacher.spec
        if (spec.in_channels, tuple(spec.input_size)) != (self.config.in_channels, self.config.input_size):
            raise ValueError(f"{self.path} codes {self.config.in_channels}x{self.config.input_size} images, "
                             f"the teacher takes {spec.in_channels}x{spec.input_size}")
        self._mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
        self._std = torch.tensor(spec.std).view(1, -1, 1, 1)
        self.y_count = math.prod(self.config.latent_shape)
        # the factorized prior's stream (y, or the hyperprior's z) is coded as HECS-B's latent is
        self.eb_coder = LatentCoder(self.model.entropy_bottleneck,
                                    self.config.hyper_shape if self.hyper else self.config.latent_shape)
        if self.hyper:
            self.y_coder = TableCoder.of(self.model.gaussian_conditional)

    @property
    def hyper(self) -> bool:
        return self.config.kind == "hyperprior"

    def max_payload_bytes(self) -> int:
        if not self.hyper:
            return self.eb_coder.max_payload_bytes()
        return 3 + self.eb_coder.max_payload_bytes() + TableCoder.max_bytes(self.y_count)

    def _gauss(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hyper-latent ``(1, N, h, w)`` -> table indexes and means of ``y`` (both ``(M, H, W)``)."""
        scales, means = self.model.h_s(z_hat).chunk(2, 1)
        return table_indexes(self.model.gaussian_conditional, scales)[0], means[0]

    @torch.inference_mode()
    def analysis(self, pixels: torch.Tensor) -> torch.Tensor:
        """Edge network ``g_a``: pixels in [0, 1] ``(N, C, H, W)`` -> latent ``y`` ``(N, M, h, w)``."""
        return self.model.g_a(pad(pixels, self.config))

    @torch.inference_mode()
    def code(self, y: torch.Tensor) -> bytes:
        """One latent ``(M, h, w)`` -> payload (hyperprior: also ``h_a``, ``h_s`` and the ``z`` stream)."""
        if not self.hyper:
            return self.eb_coder.payload(y)
        z_bytes, z_hat = self.eb_coder.encode(self.model.h_a(y[None])[0])
        idx, means = self._gauss(z_hat[None])
        ys = self.y_coder.clamp(torch.round(y - means).to(torch.int64), idx)
        return frame_two(z_bytes, self.y_coder.encode(ys, idx))

    def encode_pixels(self, x: torch.Tensor) -> bytes:
        """One image, pixels in [0, 1] ``(1, C, H, W)`` -> payload."""
        return self.code(self.analysis(x)[0])

    @torch.inference_mode()
    def decode_pixels(self, data: bytes) -> torch.Tensor:
        """Payload -> reconstructed pixels in [0, 1] ``(1, C, H, W)``; PayloadError on invalid bytes."""
        if not self.hyper:
            y_hat = self.eb_coder.decode(data)
        else:
            z_bytes, y_bytes = unframe_two(data, self.eb_coder.max_payload_bytes(), TableCoder.max_bytes(self.y_count))
            idx, means = self._gauss(self.eb_coder.decode(z_bytes)[None])
            y_hat = self.y_coder.decode(y_bytes, idx).to(torch.float32) + means
        return crop(self.model.g_s(y_hat[None]), self.config).clamp_(0, 1)

    @torch.inference_mode()
    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] ``(N, C, H, W)`` -> teacher logits ``(N, K)``."""
        return self.teacher.model((pixels - self._mean) / self._std)

    def to_pixels(self, x_norm: torch.Tensor) -> torch.Tensor:
        """Teacher-normalised images -> pixels in [0, 1]."""
        return x_norm * self._std + self._mean
