"""The ``null`` codec: no work on either half, for measuring the pipeline itself.

Its edge half sends a one-byte payload and its server half answers all-zero logits, without any
image processing or network: a run of the ROS pipeline with it measures what every codec pays on
top of its own compute and bytes (DDS hops, the relay through the link emulator, message
serialisation) — the harness row of the benchmark's Table 2.
"""

from __future__ import annotations

import numpy as np
import torch

from hecsb_ros.core.codecs.base import Codec, CodecSettings, Decoded, EncodedFrame, register_codec
from hecsb_ros.core.payload import PayloadError


@register_codec("null")
class NullCodec(Codec):
    """Sends one byte, classifies nothing (all-zero logits): the pipeline's own floor."""

    description = (
        "diagnostic: a one-byte payload and all-zero logits, no compute (the harness floor)"
    )

    def __init__(self, settings: CodecSettings) -> None:
        super().__init__(settings)
        self._classes = settings.load_teacher().spec.classes

    @property
    def model_id(self) -> str:
        return "null"

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    def encode(self, image: np.ndarray, encoding: str) -> EncodedFrame:
        return EncodedFrame(
            data=b"\x00", shape=(), timings_ms={"preprocess": 0.0, "encode": 0.0, "entropy": 0.0}
        )

    def decode(self, data: bytes, shape: tuple[int, ...]) -> Decoded:
        self.check_shape(shape)
        return Decoded(
            logits=torch.zeros(len(self._classes)), timings_ms={"decode": 0.0, "infer": 0.0}
        )

    def decode_input(self, data: bytes, shape: tuple[int, ...]) -> torch.Tensor:
        self.check_shape(shape)
        return torch.zeros(1, 0)

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], len(self._classes))

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != ():
            raise PayloadError("bad_shape", f"null payloads carry no shape, got {tuple(shape)}")

    def max_payload_bytes(self) -> int:
        return 1
