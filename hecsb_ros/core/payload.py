"""Rejection of bad input: the reason codes, :class:`PayloadError` and the bounds every payload
obeys.

Each rejection carries a short ``reason`` code; nodes count rejections per code and publish the
counts in ``LinkStats`` (``drop_reasons``). The checks a server runs before it spends any work on
a payload (cheap metadata first, bytes last) are
:func:`hecsb_ros.core.codecs.base.validate_payload`; this module is at the bottom of the core, so
that every layer can raise the same error.
"""

from __future__ import annotations

import math
from typing import Sequence

#: Every reason code a payload or image can be rejected for.
REASONS: tuple[str, ...] = (
    "unknown_codec",  # codec name not served here
    "model_mismatch",  # model id differs from the server's encoder
    "too_large",  # payload above the cap
    "empty",  # no payload bytes
    "bad_shape",  # shape malformed, absurd, or not what the codec produces
    "truncated",  # payload shorter than its shape needs / entropy decoder ran out
    "decode_error",  # payload bytes could not be decoded
    "bad_image",  # edge: image with wrong encoding, step or size
    "bad_rate",  # rate level not served here
    "bad_timing",  # NaN / negative / absurd timing fields
    "bad_message",  # bytes on the topic that do not deserialize as the message type
    "sequence_gap",  # frames missing between two received sequence numbers (lost in transit)
    # edge: camera frames the middleware reported lost on the image topic (message-lost event)
    "image_lost",
    "link_loss",  # link emulator: dropped by the loss model or a blackout
    "queue_full",  # link emulator: queueing delay above the cap
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
        raise PayloadError(
            "bad_shape", f"shape {tuple(shape)} has {numel} elements > cap {max_elements}"
        )
    return numel


def check_timings(values: Sequence[float], limit_ms: float = 3.6e6) -> None:
    """Timing fields must be finite, non-negative and below ``limit_ms``."""
    for v in values:
        if not math.isfinite(v) or v < 0.0 or v > limit_ms:
            raise PayloadError("bad_timing", f"timing value {v!r} not in [0, {limit_ms}] ms")
