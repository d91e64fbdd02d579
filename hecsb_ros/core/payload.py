"""Payload validation: what a server checks before it spends any work on a received payload.

Each rejection carries a short ``reason`` code; nodes count rejections per code and publish the
counts in ``LinkStats`` (``drop_reasons``). Order of checks: cheap metadata first, bytes last.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from hecsb_ros.core.codecs.base import Codec

#: Every reason code a payload or image can be rejected for.
REASONS: tuple[str, ...] = (
    "unknown_codec",   # codec name not served here
    "model_mismatch",  # model id differs from the server's encoder
    "too_large",       # payload above the cap
    "empty",           # no payload bytes
    "bad_shape",       # shape malformed, absurd, or not what the codec produces
    "truncated",       # payload shorter than its shape needs / entropy decoder ran out
    "decode_error",    # payload bytes could not be decoded
    "bad_image",       # edge: image with wrong encoding, step or size
    "bad_rate",        # rate level not served here
    "bad_timing",      # NaN / negative / absurd timing fields
    "bad_message",     # bytes on the topic that do not deserialize as the message type
    "sequence_gap",    # frames missing between two received sequence numbers (lost in transit)
    "link_loss",       # link emulator: dropped by the loss model or a blackout
    "queue_full",      # link emulator: queueing delay above the cap
)

#: Most dimensions and elements any payload shape may declare before codec-specific checks.
MAX_RANK = 4
DEFAULT_MAX_ELEMENTS = 1 << 24


class PayloadError(ValueError):
    """A payload or image was rejected; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_shape_bounds(shape: Sequence[int], max_elements: int = DEFAULT_MAX_ELEMENTS) -> int:
    """Validate rank and size of a declared shape; return its number of elements.

    Guards against memory bombs: the product is computed in Python integers before anything is
    allocated.
    """
    if len(shape) > MAX_RANK:
        raise PayloadError("bad_shape", f"rank {len(shape)} > {MAX_RANK}")
    if any(int(d) <= 0 for d in shape):
        raise PayloadError("bad_shape", f"non-positive dimension in {tuple(shape)}")
    numel = math.prod(int(d) for d in shape)
    if numel > max_elements:
        raise PayloadError("bad_shape", f"shape {tuple(shape)} has {numel} elements > cap {max_elements}")
    return numel


def check_timings(values: Sequence[float], limit_ms: float = 3.6e6) -> None:
    """Timing fields must be finite, non-negative and below ``limit_ms``."""
    for v in values:
        if not math.isfinite(v) or v < 0.0 or v > limit_ms:
            raise PayloadError("bad_timing", f"timing value {v!r} not in [0, {limit_ms}] ms")


def validate_payload(codec: "Codec", codec_name: str, model_id: str, rate_level: int,
                     shape: Sequence[int], data_len: int, max_payload_bytes: int,
                     max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
    """Raise :class:`PayloadError` unless the payload may be handed to ``codec.decode``."""
    if codec_name != codec.name:
        raise PayloadError("unknown_codec", f"codec {codec_name!r} not served (serving {codec.name!r})")
    if model_id != codec.model_id:
        raise PayloadError("model_mismatch",
                           f"payload made by encoder {model_id!r}, this server runs {codec.model_id!r}")
    if rate_level != codec.quality:
        raise PayloadError("bad_rate", f"rate level {rate_level} not served (serving {codec.quality})")
    if data_len == 0:
        raise PayloadError("empty", "payload has no bytes")
    cap = min(max_payload_bytes, codec.max_payload_bytes())
    if data_len > cap:
        raise PayloadError("too_large", f"payload of {data_len} B above the cap of {cap} B")
    check_shape_bounds(shape, max_elements)
    codec.check_shape(tuple(int(d) for d in shape))
