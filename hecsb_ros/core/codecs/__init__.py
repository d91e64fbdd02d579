"""Codec registry: one contract (edge half, server half) for learned and classic codecs."""

from hecsb_ros.core.codecs.base import (  # noqa: F401
    BUILTIN_CODEC_MODULES,
    Codec,
    CodecSettings,
    Decoded,
    EncodedFrame,
    Timer,
    codec_class,
    configure_torch,
    create_codec,
    list_codecs,
    load_codec_modules,
    register_codec,
    validate_payload,
)
