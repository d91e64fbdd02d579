"""Message <-> core conversions. Pure functions: no rclpy.init needed, testable on their own."""

from __future__ import annotations

import hashlib
import math
import sys
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from hecsb_ros.core.imageformats import MAX_DECODED_PIXELS, decode_image, encode_image
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.preprocess import MAX_PIXELS, check_image, check_size, encoding_of, frame_size
from hecsb_ros.msg import ClassificationResult, CompressedLatent, LinkStats

if TYPE_CHECKING:  # type hints only: building messages needs neither torch nor the codecs
    from hecsb_ros.core.codecs import EncodedFrame
    from hecsb_ros.core.results import Classification

UINT64_MAX = 2**64 - 1


def time_to_ns(t: TimeMsg) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def ns_to_time(ns: int) -> TimeMsg:
    return TimeMsg(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def image_msg_to_array(msg: Image, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Validate a ``sensor_msgs/Image`` and return its buffer as the array of its encoding.

    The layout per encoding is :class:`hecsb_ros.core.preprocess.Encoding`'s (e.g. ``(H, W, 3)``
    uint8 for bgr8, ``(H, W, 2)`` for UYVY, ``(H * 3/2, W)`` for NV21, ``(H, W)`` uint16 in native
    order for mono16); row padding (``step`` above the row's bytes) is cut and ``is_bigendian``
    honoured. Only layout work happens here: colour conversion is the core's
    (:func:`hecsb_ros.core.preprocess.convert_colour`).

    Raises ``PayloadError('bad_image')`` for an unsupported encoding (naming the supported ones),
    an empty, odd (4:2:x, Bayer) or huge size, a step too small for the width, or data whose length
    disagrees with ``step`` x buffer rows.
    """
    enc = encoding_of(msg.encoding)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    check_size(enc, h, w, max_pixels)
    row_bytes = enc.row_bytes(w)
    if step < row_bytes:
        raise PayloadError(
            "bad_image", f"step {step} < width {w} x {enc.channels} channel(s) x {enc.itemsize} B"
        )
    rows = enc.buffer_rows(h)
    if len(msg.data) != step * rows:
        raise PayloadError("bad_image", f"{len(msg.data)} data bytes, step x rows = {step * rows}")
    buf = np.frombuffer(msg.data, dtype=np.uint8).reshape(rows, step)[:, :row_bytes]
    if enc.itemsize > 1:  # the message's byte order -> native
        wire = np.dtype(enc.dtype).newbyteorder(">" if msg.is_bigendian else "<")
        buf = np.ascontiguousarray(buf).view(wire).astype(enc.dtype, copy=False)
    return np.ascontiguousarray(buf.reshape(enc.buffer_shape(h, w)))


def array_to_image_msg(
    image: np.ndarray, encoding: str, header: Header, bigendian: bool | None = None
) -> Image:
    """The array of a frame in ``encoding`` (the layout :func:`image_msg_to_array` returns) ->
    ``sensor_msgs/Image`` with ``header``, unpadded rows; 16-bit data is written in this machine's
    byte order unless ``bigendian`` says otherwise."""
    check_image(image, encoding)
    enc = encoding_of(encoding)
    h, w = frame_size(image, encoding)
    big = (sys.byteorder == "big") if bigendian is None else bool(bigendian)
    data = np.ascontiguousarray(image)
    if enc.itemsize > 1:
        data = data.astype(np.dtype(enc.dtype).newbyteorder(">" if big else "<"), copy=False)
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.encoding = h, w, encoding
    msg.is_bigendian = int(big) if enc.itemsize > 1 else 0
    msg.step = enc.row_bytes(w)
    msg.data = data.tobytes()  # bytes into uint8[]: fast path
    return msg


def compressed_msg_to_array(
    msg: CompressedImage, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, str]:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG/PNG/WebP, ``format`` as ROS's compressed
    image transport writes it) -> ``(array, encoding)``, under the same caps as the server's image
    payloads: the declared size is read from the header first and must be at most ``max_pixels``
    and 4K UHD; PNG chunk lengths are walked before OpenCV runs."""
    data = msg.data if isinstance(msg.data, bytes) else bytes(msg.data)
    return decode_image(data, str(msg.format), min(max_pixels, MAX_DECODED_PIXELS))


def array_to_compressed_msg(
    image: np.ndarray, encoding: str, header: Header, fmt: str = "jpeg", quality: int = 95
) -> CompressedImage:
    """A ``bgr8`` / ``rgb8`` / ``mono8`` frame -> ``sensor_msgs/CompressedImage`` as the compressed
    image transport publishes it (``format`` e.g. ``"bgr8; jpeg compressed bgr8"``); ``quality`` is
    the JPEG quality or the PNG compression level."""
    data, format_string = encode_image(image, encoding, fmt, quality)
    msg = CompressedImage()
    msg.header = header
    msg.format = format_string
    msg.data = data
    return msg


def latent_msg(
    frame: EncodedFrame,
    header: Header,
    sequence: int,
    codec: str,
    model_id: str,
    rate_level: int,
    sent_ns: int,
    total_ms: float,
) -> CompressedLatent:
    """Build the ``CompressedLatent`` for one encoded frame."""
    msg = CompressedLatent()
    msg.header = header
    msg.sequence = sequence
    msg.codec = codec
    msg.model_id = model_id
    msg.rate_level = rate_level
    msg.shape = [int(d) for d in frame.shape]
    msg.data = frame.data  # bytes into uint8[]: fast path
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


def result_msg(
    latent: CompressedLatent,
    cls: Classification,
    payload_bytes: int,
    transfer_ms: float,
    decode_ms: float,
    infer_ms: float,
    total_ms: float,
    batch: int = 1,
    wait_ms: float = 0.0,
) -> ClassificationResult:
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
    msg.payload_bytes = payload_bytes
    msg.edge_total_ms = latent.edge_total_ms
    msg.transfer_ms = float(transfer_ms)
    msg.server_decode_ms = float(decode_ms)
    msg.server_infer_ms = float(infer_ms)
    msg.server_total_ms = float(total_ms)
    msg.server_batch = int(batch)
    msg.server_wait_ms = float(wait_ms)
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
            # saturate: a hostile sequence jump can count 2**64 drops
            value = min(value, UINT64_MAX)
        elif isinstance(value, list) and value and isinstance(value[0], int):
            value = [min(v, UINT64_MAX) for v in value]
        setattr(msg, key, value)
    return msg


# -- vision_msgs (optional: a ROS installation has it, the PyPI wheels do not) ------------------
VISION_TYPES = ("Classification", "ObjectHypothesis", "VisionInfo", "LabelInfo", "VisionClass")


def vision_msgs_module() -> Any | None:
    """``vision_msgs.msg`` when it is installed with every type used here (vision_msgs 4.x: Humble
    and later), else None."""
    try:
        import vision_msgs.msg as vision
    except ImportError:
        return None
    return vision if all(hasattr(vision, name) for name in VISION_TYPES) else None


def vision_classification_msg(vision: Any, header: Header, cls: Classification) -> Any:
    """``vision_msgs/Classification``: the result's header (= the camera frame's) and its top-k as
    ``ObjectHypothesis`` (class id as a decimal string, softmax probability as score)."""
    msg = vision.Classification()
    msg.header = header
    msg.results = [
        vision.ObjectHypothesis(class_id=str(int(i)), score=float(s))
        for i, s in zip(cls.topk_ids, cls.topk_scores)
    ]
    return msg


def class_database_version(classes: Sequence[str]) -> int:
    """A non-negative int32 that changes when the class list changes (listeners compare it)."""
    digest = hashlib.sha256("\n".join(classes).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def label_info_msg(vision: Any, header: Header, classes: Sequence[str]) -> Any:
    """``vision_msgs/LabelInfo``: class id -> name for every class of the classifier."""
    msg = vision.LabelInfo()
    msg.header = header
    msg.class_map = [
        vision.VisionClass(class_id=i, class_name=str(name)) for i, name in enumerate(classes)
    ]
    msg.threshold = 0.0
    return msg


def vision_info_msg(
    vision: Any, header: Header, method: str, database_location: str, classes: Sequence[str]
) -> Any:
    """``vision_msgs/VisionInfo``: the pipeline's name, where its class database is (the LabelInfo
    topic) and the database's version (:func:`class_database_version`)."""
    msg = vision.VisionInfo()
    msg.header = header
    msg.method = method
    msg.database_location = database_location
    msg.database_version = class_database_version(classes)
    return msg
