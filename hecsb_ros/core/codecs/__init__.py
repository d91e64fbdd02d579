"""Codec registry: one contract (edge half, server half) for learned and classic codecs."""
from hecsb_ros.core.codecs.base import (  # noqa: F401
    Codec, CodecSettings, Decoded, EncodedFrame, Timer, codec_class, create_codec, list_codecs,
    register_codec,
)
