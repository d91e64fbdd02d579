"""Message <-> core conversions. Pure functions: no rclpy.init needed, testable on their own."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from cv_bridge import CvBridge, CvBridgeError
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from hecsb_ros.core.codecs import EncodedFrame
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.preprocess import ENCODINGS, MAX_PIXELS
from hecsb_ros.core.results import Classification
from hecsb_ros.msg import ClassificationResult, CompressedLatent, LinkStats

_BRIDGE = CvBridge()
UNKNOWN = CompressedLatent.GROUND_TRUTH_UNKNOWN
UINT64_MAX = 2**64 - 1


def time_to_ns(t: TimeMsg) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def ns_to_time(ns: int) -> TimeMsg:
    return TimeMsg(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def image_msg_to_array(msg: Image, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Validate a ``sensor_msgs/Image`` and return it as ``(H, W)`` or ``(H, W, C)`` uint8.

    Raises ``PayloadError('bad_image')`` for an unsupported encoding, an empty or huge size, a
    step too small for the width, or data whose length disagrees with ``step * height``.
    """
    if msg.encoding not in ENCODINGS:
        raise PayloadError("bad_image", f"encoding {msg.encoding!r} not supported; use {sorted(ENCODINGS)}")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0 or h * w > max_pixels:
        raise PayloadError("bad_image", f"size {w}x{h} outside 1..{max_pixels} pixels")
    if step < w * ENCODINGS[msg.encoding]:
        raise PayloadError("bad_image", f"step {step} < width {w} x {ENCODINGS[msg.encoding]} channels")
    if len(msg.data) != step * h:
        raise PayloadError("bad_image", f"{len(msg.data)} data bytes, step x height = {step * h}")
    try:
        arr = _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")
    except (CvBridgeError, TypeError, ValueError) as exc:
        raise PayloadError("bad_image", f"cv_bridge: {exc}") from exc
    return np.ascontiguousarray(arr)


def array_to_image_msg(image: np.ndarray, encoding: str, header: Header) -> Image:
    """``(H, W)`` / ``(H, W, C)`` uint8 -> ``sensor_msgs/Image`` with ``header``."""
    msg = _BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(image), encoding=encoding)
    msg.header = header
    return msg


def latent_msg(frame: EncodedFrame, header: Header, sequence: int, codec: str, model_id: str,
               rate_level: int, ground_truth: int, sent_ns: int, total_ms: float) -> CompressedLatent:
    """Build the ``CompressedLatent`` for one encoded frame."""
    msg = CompressedLatent()
    msg.header = header
    msg.sequence = sequence
    msg.codec = codec
    msg.model_id = model_id
    msg.rate_level = rate_level
    msg.shape = [int(d) for d in frame.shape]
    msg.data = frame.data  # bytes into uint8[]: fast path
    msg.ground_truth = ground_truth
    msg.edge_sent = ns_to_time(sent_ns)
    msg.edge_preprocess_ms = float(frame.timings_ms.get("preprocess", 0.0))
    msg.edge_encode_ms = float(frame.timings_ms.get("encode", 0.0))
    msg.edge_entropy_ms = float(frame.timings_ms.get("entropy", 0.0))
    msg.edge_total_ms = float(total_ms)
    return msg


def latent_payload(msg: CompressedLatent) -> bytes:
    """The payload bytes of a received latent (``uint8[]`` arrives as array or bytes)."""
    data = msg.data
    return data if isinstance(data, bytes) else bytes(data)


def result_msg(latent: CompressedLatent, cls: Classification, payload_bytes: int, transfer_ms: float,
               decode_ms: float, infer_ms: float, total_ms: float) -> ClassificationResult:
    """Build the ``ClassificationResult`` answering ``latent``."""
    msg = ClassificationResult()
    msg.header = latent.header
    msg.sequence = latent.sequence
    msg.codec = latent.codec
    msg.class_id = cls.class_id
    msg.label = cls.label
    msg.score = cls.score
    msg.topk_ids = list(cls.topk_ids)
    msg.topk_scores = list(cls.topk_scores)
    msg.ground_truth = latent.ground_truth
    msg.payload_bytes = payload_bytes
    msg.edge_total_ms = latent.edge_total_ms
    msg.transfer_ms = float(transfer_ms)
    msg.server_decode_ms = float(decode_ms)
    msg.server_infer_ms = float(infer_ms)
    msg.server_total_ms = float(total_ms)
    return msg


def link_stats_msg(snapshot: dict[str, Any], stamp: TimeMsg, frame_id: str) -> LinkStats:
    """``LinkStats`` from :meth:`LinkStatsAccumulator.snapshot`."""
    msg = LinkStats()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    for key, value in snapshot.items():
        if isinstance(value, float) and math.isinf(value):
            value = math.nan
        elif isinstance(value, int) and not isinstance(value, bool):
            value = min(value, UINT64_MAX)  # saturate: a hostile sequence jump can count 2**64 drops
        elif isinstance(value, list) and value and isinstance(value[0], int):
            value = [min(v, UINT64_MAX) for v in value]
        setattr(msg, key, value)
    return msg
