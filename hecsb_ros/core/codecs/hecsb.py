"""The HECS-B codec: learned split computing with the compressed-sensing bottleneck.

Edge half: preprocess -> ``f_theta`` (acquisition network ``f_psi`` and measurement ``W``) ->
rounding and arithmetic coding with the learned prior. Server half: decoding -> ``g_phi`` ->
the tail (the teacher's, or the fine-tuned copy the checkpoint carries). ``quality`` is the rate
level (0 = fewest bytes), one shipped checkpoint each; ``checkpoint`` may name another bottleneck
file.

The payload is only the entropy-coded bytes; the latent shape follows from the model id, so the
frame's ``shape`` is ``()`` and :meth:`HecsbCodec.check_shape` accepts nothing else.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from hecsb_ros.core.bottleneck import DEFAULT_RATE_LEVEL, HecsbSplit, list_rate_levels, rate_level_path
from hecsb_ros.core.codecs.base import Codec, CodecSettings, Decoded, EncodedFrame, Timer, register_codec
from hecsb_ros.core.models import images_to_tensor
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.preprocess import prepare_image

_LEVELS = list_rate_levels()


@register_codec("hecsb")
class HecsbCodec(Codec):
    """HECS-B (seed paper, section 3.3); quality = rate level index of the shipped checkpoints."""

    description = "HECS-B learned bottleneck; quality = rate level (0 = fewest bytes)"
    default_quality: ClassVar[int] = DEFAULT_RATE_LEVEL if DEFAULT_RATE_LEVEL in _LEVELS else (max(_LEVELS) if _LEVELS else 0)
    quality_range: ClassVar[tuple[int, int]] = (0, max(_LEVELS) if _LEVELS else 0)

    def __init__(self, settings: CodecSettings) -> None:
        super().__init__(settings)
        path = Path(settings.checkpoint) if settings.checkpoint else rate_level_path(self.quality)
        self.split = HecsbSplit.load(path, teacher=settings.load_teacher(), device=settings.device)
        self.spec = self.split.teacher.spec

    @property
    def model_id(self) -> str:
        return self.split.model_id

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != ():
            raise PayloadError("bad_shape", f"hecsb payloads carry no shape, got {tuple(shape)}")

    def max_payload_bytes(self) -> int:
        return self.split.coder.max_payload_bytes()

    @torch.inference_mode()
    def encode(self, image: np.ndarray, encoding: str) -> EncodedFrame:
        t = Timer()
        with t("preprocess"):
            pixels = prepare_image(image, encoding, self.spec)
            x = images_to_tensor(pixels, self.spec).to(self.device)
        with t("encode"):
            y = self.split.latent(x)[0].cpu()
        with t("entropy"):
            data = self.split.coder.payload(y)
        return EncodedFrame(data=data, shape=(), timings_ms=t.ms)

    @torch.inference_mode()
    def decode(self, data: bytes, shape: tuple[int, ...]) -> Decoded:
        self.check_shape(shape)
        if len(data) > self.max_payload_bytes():
            raise PayloadError("too_large", f"{len(data)} B above the {self.max_payload_bytes()} B a latent can take")
        t = Timer()
        with t("decode"):
            z = self.split.coder.decode(bytes(data))
            h = self.split.features(z[None])
        with t("infer"):
            logits = self.split.tail(h)[0].float().cpu()
        return Decoded(logits=logits, timings_ms=t.ms)
