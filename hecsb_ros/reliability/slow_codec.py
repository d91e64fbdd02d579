"""A codec plugin for load tests: PNG with a fixed extra cost per frame on the edge.

Registered as ``png_slow`` when imported; give both nodes ``plugins:
hecsb_ros.reliability.slow_codec`` and ``codec: png_slow``. Each encode first sleeps
``HECSB_EDGE_EXTRA_MS`` milliseconds (default 25), standing in for a heavier encoder (a learned
codec on an embedded board); decoding is PNG's. The edge's sustainable rate is then at most
``1000 / extra_ms`` frames/s. Each decode sleeps ``HECSB_SERVER_EXTRA_MS`` (default 0) first: a
slower server. It is also the example of a codec of one's own that the nodes load
without any change to them.
"""

from __future__ import annotations

import os
import time

import numpy as np

from hecsb_ros.core.codecs.base import CodecSettings, EncodedFrame, register_codec
from hecsb_ros.core.codecs.image import PngCodec


@register_codec("png_slow")
class SlowPngCodec(PngCodec):
    """PNG whose edge half takes ``HECSB_EDGE_EXTRA_MS`` (default 25) ms longer per frame."""

    description = "PNG plus a fixed sleep per encoded frame (load tests)"

    def __init__(self, settings: CodecSettings) -> None:
        super().__init__(settings)
        self.extra_ms = float(os.environ.get("HECSB_EDGE_EXTRA_MS", "25"))

        self.server_extra_ms = float(os.environ.get("HECSB_SERVER_EXTRA_MS", "0"))

    def encode(self, image: np.ndarray, encoding: str) -> EncodedFrame:
        time.sleep(self.extra_ms / 1e3)
        return super().encode(image, encoding)

    def decode(self, data: bytes, shape: tuple[int, ...]):
        if self.server_extra_ms > 0:
            time.sleep(self.server_extra_ms / 1e3)
        return super().decode(data, shape)
