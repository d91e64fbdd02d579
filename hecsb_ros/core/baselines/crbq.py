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

Trained by head distillation only: ``1/2 ||h - g(Q(f(x)))||^2`` per feature element, the
quantiser passed straight through (the distortion term of eq. 14 without a rate term).
"""
from __future__ import annotations

import math
import struct
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from hecsb_ros.core.baselines import checkpoint as ckpt
from hecsb_ros.core.grid import downsampled, encoder_depth, upsampling_steps
from hecsb_ros.core.models import Classifier, check_teacher, load_classifier, model_id_of
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.training.common import batches

KIND = "crbq"
HEADER = struct.Struct("<ff")


@dataclass(frozen=True)
class CrbqConfig:
    """Input ``(C_in, (H, W))``, split features ``(T, (h, w))`` and bottleneck channels ``channels``.

    ``widths``: the encoder's stride-2 convolutions (two at the Fashion-MNIST split; one more per
    halving where the split features are coarser, as :func:`crbq_config_for` picks).
    """

    in_channels: int
    input_size: tuple[int, int]
    feature_channels: int
    feature_size: tuple[int, int]
    channels: int = 2
    widths: tuple[int, ...] = (32, 16)

    def __post_init__(self) -> None:
        self.upsampling  # validates the input and feature sizes

    @property
    def latent_size(self) -> tuple[int, int]:
        return downsampled(self.input_size, len(self.widths))

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
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CrbqConfig":
        d = dict(d)
        for k in ("input_size", "feature_size", "widths"):
            d[k] = tuple(d[k])
        return cls(**d)


def crbq_config_for(teacher: Classifier, channels: int) -> CrbqConfig:
    """CR+BQ config matching ``teacher``'s input and split features (widths 32, ..., 32, 16)."""
    spec = teacher.spec
    feature_channels, feature_size = teacher.split_features()
    depth = encoder_depth(spec.input_size, feature_size)
    return CrbqConfig(spec.in_channels, spec.input_size, feature_channels, feature_size, channels,
                      widths=(32,) * (depth - 1) + (16,))


def _cbr(cin: int, cout: int, k: int, s: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def quantize_8bit(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-tensor affine 8-bit quantisation of ``y`` ``(N, ...)``: (q uint8, lo ``(N,)``, hi ``(N,)``)."""
    flat = y.detach().flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    scale = torch.where(hi > lo, (hi - lo) / 255.0, torch.ones_like(hi))
    q = torch.round((y.detach() - lo.view(-1, *[1] * (y.dim() - 1))) / scale.view(-1, *[1] * (y.dim() - 1)))
    return q.clamp_(0, 255).to(torch.uint8), lo, hi


def dequantize_8bit(q: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`quantize_8bit`: ``lo + q (hi - lo) / 255``, float32 like ``q``."""
    shape = (-1, *[1] * (q.dim() - 1))
    scale = torch.where(hi > lo, (hi - lo) / 255.0, torch.zeros_like(hi))
    return lo.view(shape) + q.to(torch.float32) * scale.view(shape)


class CrbqBottleneck(nn.Module):
    """Channel-reducing encoder, 8-bit quantiser and decoder to the teacher's split features."""

    def __init__(self, config: CrbqConfig) -> None:
        super().__init__()
        self.config = config
        encoder: list[nn.Module] = []
        cin = config.in_channels
        for w in config.widths:
            encoder += _cbr(cin, w, 5, 2)
            cin = w
        self.encoder = nn.Sequential(*encoder, nn.Conv2d(cin, config.channels, 3, 1, 1))
        t = config.feature_channels
        width = 2 * t
        layers: list[nn.Module] = _cbr(config.channels, width, 3, 1)
        for _ in range(config.upsampling):
            out = max(width // 2, 8)
            layers += [nn.ConvTranspose2d(width, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            width = out
        layers.append(nn.Conv2d(width, t, 3, 1, 1))
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(N, C_in, H, W)`` -> latent ``(N, C, h, w)`` before quantisation."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Split features ``(N, T, h, w)`` through the quantised latent (straight-through in training)."""
        y = self.encode(x)
        y_hat = dequantize_8bit(*quantize_8bit(y))
        return self.decoder(y + (y_hat - y).detach())


def pack(q: torch.Tensor, lo: float, hi: float) -> bytes:
    """One image's quantised latent ``(C, h, w)`` uint8 and bounds -> payload."""
    return HEADER.pack(lo, hi) + q.contiguous().numpy().tobytes()


def unpack(data: bytes, config: CrbqConfig) -> torch.Tensor:
    """Payload -> dequantised latent ``(C, h, w)``; PayloadError unless it is exactly well formed."""
    need = config.payload_bytes
    if len(data) != need:
        raise PayloadError("truncated" if len(data) < need else "decode_error",
                           f"crbq payload has {len(data)} B, the latent needs exactly {need} B")
    lo, hi = HEADER.unpack_from(data)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise PayloadError("decode_error", f"bad quantisation bounds ({lo!r}, {hi!r})")
    q = torch.frombuffer(bytearray(data[HEADER.size:]), dtype=torch.uint8).view(config.latent_shape)
    return dequantize_8bit(q[None], torch.tensor([lo]), torch.tensor([hi]))[0]


def head_distill(model: CrbqBottleneck, teacher: Classifier, train, epochs: int, batch_size: int = 64,
                 lr: float = 2e-3, seed: int = 0, progress: bool = True,
                 log: Callable[[str], None] = print, device: torch.device | str = "cpu",
                 max_steps: int | None = None) -> CrbqBottleneck:
    """Head distillation: minimise ``1/2 ||h - g(Q(f(x)))||^2 / n`` with ``h = teacher.head(x)``.

    Trains on ``device``; the model comes back on the CPU. ``max_steps`` stops early (for timing).
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    teacher.model.to(device).eval()
    model.to(device)
    steps = len(train) // batch_size
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(epochs * steps, 1), pct_start=0.1)
    done = 0
    with tqdm(total=epochs * steps, desc=f"crbq C={model.config.channels}", unit="batch", file=sys.stderr,
              disable=not progress) as bar:
        for epoch in range(epochs):
            model.train()
            total = torch.zeros((), device=device)
            for idx in batches(len(train), batch_size, gen, drop_last=True):
                if max_steps is not None and done >= max_steps:
                    break
                x, _ = train.batch(idx, gen)
                x = x.to(device, non_blocking=True)
                with torch.no_grad():
                    h = teacher.model.head(x)
                loss = 0.5 * (model(x) - h).pow(2).flatten(1).mean(1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.detach()
                done += 1
                bar.update(1)
            if max_steps is None:
                log(f"crbq C={model.config.channels} epoch {epoch + 1}: distortion {float(total) / max(steps, 1):.4g}")
    teacher.model.to("cpu")
    return model.to("cpu").eval()


def save_crbq(path: Path | str, model: CrbqBottleneck, teacher_model_id: str, facts: dict | None = None) -> Path:
    return ckpt.save(path, KIND, model.state_dict(), model.config.to_dict(), teacher_model_id, facts)


def load_crbq(path: Path | str, device: str = "cpu") -> tuple[CrbqBottleneck, dict[str, str]]:
    state, config, meta = ckpt.load(path, KIND)
    model = CrbqBottleneck(CrbqConfig.from_dict(config))
    model.load_state_dict(state)
    return model.to(device).eval(), meta


class CrbqSplit:
    """Deployable CR+BQ: edge ``encode`` (image tensor -> bytes), server ``decode`` (bytes -> logits)."""

    def __init__(self, path: Path | str, teacher: Classifier | None = None, device: str = "cpu") -> None:
        self.path = Path(path)
        self.model, self.metadata = load_crbq(self.path, device)
        self.teacher = teacher if teacher is not None else load_classifier(None, device)
        check_teacher(self.path, self.metadata["teacher_model_id"], self.teacher)
        self.model_id = model_id_of(self.path)
        self.config = self.model.config

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> list[bytes]:
        """Images ``(N, C_in, H, W)`` -> one payload each."""
        q, lo, hi = quantize_8bit(self.model.encode(x))
        return [pack(q[i], float(lo[i]), float(hi[i])) for i in range(q.shape[0])]

    @torch.inference_mode()
    def features(self, data: bytes) -> torch.Tensor:
        """Server: payload -> split features ``(1, T, h, w)``; PayloadError unless well formed."""
        return self.model.decoder(unpack(data, self.config)[None])

    @torch.inference_mode()
    def decode(self, data: bytes) -> torch.Tensor:
        """Payload -> logits ``(K,)``."""
        return self.teacher.model.tail(self.features(data))[0]

    def max_payload_bytes(self) -> int:
        return self.config.payload_bytes

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` through the quantised latent (what the payload carries)."""
        return self.teacher.model.tail(self.model(x))
