"""Compressed image formats (ROS-free, foundation): header parsers and a capped decoder.

The declared width and height are read from the format's header before any decoder runs, so a
small stream cannot make OpenCV allocate a huge image (a decompression bomb); PNG chunk lengths are
walked first because OpenCV's reader allocates a chunk's declared length before reading it. The
server's image codecs (:mod:`hecsb_ros.core.codecs.image`) and the edge's compressed input
(:func:`decode_image`, ``sensor_msgs/CompressedImage`` as ROS's compressed image transport writes
it) use the same checks.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from hecsb_ros.core.payload import PayloadError

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
#: Largest compressed frame decoded (pixels): 4K UHD, the server's cap for whole-frame codecs.
MAX_DECODED_PIXELS = 3840 * 2160
#: Formats :func:`decode_image` reads, by their first bytes.
MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8": "jpeg", b"RIFF": "webp"}


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG IHDR chunk."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise PayloadError("decode_error", "not a PNG stream")
    return struct.unpack(">II", data[16:24])


def png_check_chunks(data: bytes) -> None:
    """Raise ``PayloadError('truncated')`` unless every PNG chunk up to IEND fits in ``data``.

    OpenCV's PNG reader allocates a chunk's declared length before reading it: a 141-byte stream
    declaring a 2**31-1 byte chunk costs 2 GiB and 2 s. Walking the chunk lengths first stops that.
    """
    pos = 8
    while True:
        if pos + 12 > len(data):
            raise PayloadError("truncated", "PNG stream ends before its IEND chunk")
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        if length > len(data) - pos - 12:
            raise PayloadError(
                "truncated", f"PNG chunk declares {length} B, {len(data) - pos - 12} B left"
            )
        if data[pos + 4 : pos + 8] == b"IEND":
            return
        pos += 12 + length


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the first JPEG start-of-frame marker."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise PayloadError("decode_error", "not a JPEG stream")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise PayloadError("decode_error", "corrupt JPEG marker sequence")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if seg_len < 2:
            raise PayloadError("decode_error", "corrupt JPEG segment length")
        i += 2 + seg_len
    raise PayloadError("truncated", "JPEG stream ends before its frame header")


def webp_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a WebP RIFF header (VP8, VP8L or VP8X)."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise PayloadError("decode_error", "not a WebP stream")
    kind = data[12:16]
    if kind == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise PayloadError("decode_error", f"unknown WebP chunk {kind!r}")


def sniff_format(data: bytes) -> str:
    """'png', 'jpeg' or 'webp' from the stream's first bytes; ``PayloadError('bad_image')``
    otherwise."""
    for magic, name in MAGIC.items():
        if data[: len(magic)] == magic:
            return name
    raise PayloadError(
        "bad_image",
        f"compressed data is not {', '.join(MAGIC.values())} (starts with {bytes(data[:8])!r})",
    )


def max_compressed_bytes(max_pixels: int) -> int:
    """Largest stream accepted for frames of up to ``max_pixels``: incompressible 16-bit colour
    pixels plus container overhead (real JPEG/PNG camera frames are far smaller)."""
    return max_pixels * 3 * 2 + 65536


def decode_image(
    data: bytes, fmt: str = "", max_pixels: int = MAX_DECODED_PIXELS
) -> tuple[np.ndarray, str]:
    """Decode a compressed frame under size caps; return ``(image, encoding)``.

    Args:
        data: the stream (JPEG, PNG or WebP, recognised by its first bytes).
        fmt: ``sensor_msgs/CompressedImage.format`` as ROS's compressed image transport writes it,
            e.g. ``"bgr8; jpeg compressed bgr8"``, ``"mono8; png compressed "`` or plain
            ``"jpeg"``. Only ``"compressed rgb"`` (older publishers that stored RGB order) changes
            the result.
        max_pixels: largest declared ``width * height`` decoded.

    Returns ``(H, W, 3)`` uint8 ``bgr8`` (``rgb8`` for ``compressed rgb``), ``(H, W, 4)``
    ``bgra8``, ``(H, W)`` uint8 ``mono8`` or ``(H, W)`` uint16 ``mono16``. Raises
    :class:`PayloadError`: ``empty``, ``too_large`` (stream above :func:`max_compressed_bytes`),
    ``bad_image`` (unknown format, declared size outside 1..max_pixels, 16-bit colour),
    ``truncated`` / ``decode_error`` (corrupt stream).
    """
    if len(data) == 0:
        raise PayloadError("empty", "compressed image has no bytes")
    if len(data) > max_compressed_bytes(max_pixels):
        raise PayloadError(
            "too_large",
            f"compressed image of {len(data)} B above the cap of "
            f"{max_compressed_bytes(max_pixels)} B",
        )
    kind = sniff_format(data)
    width, height = {"png": png_size, "jpeg": jpeg_size, "webp": webp_size}[kind](data)
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise PayloadError(
            "bad_image", f"{kind} header declares {width}x{height}, outside 1..{max_pixels} pixels"
        )
    if kind == "png":
        png_check_chunks(data)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV's own limits (e.g. CV_IO_MAX_IMAGE_PIXELS)
        raise PayloadError(
            "decode_error", f"{kind} stream refused by OpenCV: {str(exc).strip()[-120:]}"
        ) from exc
    if image is None:
        raise PayloadError("decode_error", f"{kind} stream could not be decoded")
    if image.shape[:2] != (height, width):
        raise PayloadError(
            "decode_error",
            f"decoded {image.shape[1]}x{image.shape[0]}, header says {width}x{height}",
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype == np.uint16 and channels == 1:
        return image, "mono16"
    if image.dtype != np.uint8:
        raise PayloadError(
            "bad_image",
            f"{kind} with {channels} channel(s) of {image.dtype} not "
            "supported "
            "(8-bit colour or grey, 16-bit grey)",
        )
    if channels == 1:
        return (image if image.ndim == 2 else image[:, :, 0]), "mono8"
    if channels == 3:
        return image, ("rgb8" if "compressed rgb" in fmt else "bgr8")
    if channels == 4:
        return image, "bgra8"
    raise PayloadError("bad_image", f"{kind} with {channels} channels not supported")


def encode_image(
    image: np.ndarray, encoding: str, fmt: str = "jpeg", quality: int = 95
) -> tuple[bytes, str]:
    """Compress a ``bgr8`` / ``rgb8`` / ``mono8`` frame as ROS's compressed image transport does;
    return ``(data, format string)``. Colour is stored in BGR order (``"<enc>; jpeg compressed
    bgr8"``), grey as is; ``quality`` is the JPEG quality 1-100 or the PNG compression level 0-9.
    """
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"compressed format {fmt!r}: use jpeg or png")
    if encoding == "mono8":
        pixels, target = image, "mono8"
    elif encoding in ("bgr8", "rgb8"):
        pixels = image if encoding == "bgr8" else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        target = "bgr8"
    else:
        raise ValueError(f"cannot compress {encoding!r} frames; use bgr8, rgb8 or mono8")
    params = (
        [cv2.IMWRITE_JPEG_QUALITY, quality]
        if fmt == "jpeg"
        else [cv2.IMWRITE_PNG_COMPRESSION, quality]
    )
    ok, buf = cv2.imencode(
        ".jpg" if fmt == "jpeg" else ".png", np.ascontiguousarray(pixels), params
    )
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {fmt}")
    # compressed_image_transport writes no target for grey PNG ("mono8; png compressed ")
    suffix = "" if (fmt == "png" and target == "mono8") else target
    return buf.tobytes(), f"{encoding}; {fmt} compressed {suffix}"
