"""Entropy coding (the core's lowest layer above the file store): the arithmetic coder, CompressAI
CDF tables as a guarded :class:`TableCoder`, the factorized-prior :class:`LatentCoder`, and the
two-stream payload framing. Uses nothing of the core but :mod:`hecsb_ros.core.payload`."""

from hecsb_ros.core.entropy.latent import LatentCoder
from hecsb_ros.core.entropy.tables import (
    Indexes,
    TableCoder,
    channel_indexes,
    frame_two,
    read_varint,
    unframe_two,
    write_varint,
)

__all__ = [
    "Indexes",
    "LatentCoder",
    "TableCoder",
    "channel_indexes",
    "frame_two",
    "read_varint",
    "unframe_two",
    "write_varint",
]
