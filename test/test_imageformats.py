"""Compressed frames: the header parsers (shared with the server's image codecs) and the capped
decoder the edge's compressed input uses."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from hecsb_ros.core import imageformats
from hecsb_ros.core.codecs import image as codec_image
from hecsb_ros.core.imageformats import (
    MAX_DECODED_PIXELS,
    decode_image,
    encode_image,
    jpeg_size,
    png_size,
    webp_size,
)
from hecsb_ros.core.payload import PayloadError


def _photo(h: int = 120, w: int = 160) -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return cv2.resize(
        cv2.cvtColor(load_sample_images().images[0], cv2.COLOR_RGB2BGR),
        (w, h),
        interpolation=cv2.INTER_AREA,
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    )


def test_the_server_codecs_use_the_same_parsers():
    for name in ("png_size", "png_check_chunks", "jpeg_size", "webp_size"):
        assert getattr(codec_image, name) is getattr(imageformats, name)


@pytest.mark.parametrize("fmt,quality", [("jpeg", 95), ("png", 3)])
@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8"])
def test_round_trip_as_compressed_image_transport_writes_it(fmt, quality, encoding):
    bgr = _photo()
    image = {
        "bgr8": bgr,
        "rgb8": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        "mono8": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
    }[encoding]
    data, format_string = encode_image(image, encoding, fmt, quality)
    target = "mono8" if encoding == "mono8" else "bgr8"
    assert format_string == f"{encoding}; {fmt} compressed " + (
        "" if (fmt, target) == ("png", "mono8") else target
    )
    assert (png_size if fmt == "png" else jpeg_size)(data) == (160, 120)
    out, out_encoding = decode_image(data, format_string)
    assert out_encoding == target and out.shape == (
        image.shape if encoding == "mono8" else bgr.shape
    )
    want = bgr if target == "bgr8" else image
    err = np.abs(out.astype(int) - want.astype(int)).mean()
    assert err == 0 if fmt == "png" else err < 4


def test_old_rgb_order_grey_16_bit_and_alpha():
    bgr = _photo()
    data = cv2.imencode(".jpg", bgr)[1].tobytes()
    assert decode_image(data, "jpeg")[1] == "bgr8"
    assert decode_image(data, "rgb8; jpeg compressed rgb8")[1] == "rgb8"
    grey16 = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    out, enc = decode_image(cv2.imencode(".png", grey16)[1].tobytes(), "mono16; png compressed ")
    assert enc == "mono16" and out.dtype == np.uint16 and np.array_equal(out, grey16)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    assert decode_image(cv2.imencode(".png", bgra)[1].tobytes())[1] == "bgra8"
    with pytest.raises(PayloadError, match="16-bit|uint16"):
        decode_image(cv2.imencode(".png", bgr.astype(np.uint16) * 257)[1].tobytes())
    webp = cv2.imencode(".webp", bgr)[1].tobytes()
    assert webp_size(webp) == (160, 120) and decode_image(webp)[0].shape == bgr.shape


def test_bombs_and_garbage_are_refused_before_decoding():
    # a PNG header declaring 65535 x 65535 pixels in 33 bytes
    with pytest.raises(PayloadError) as exc:
        decode_image(_png_header(65535, 65535) + _chunk(b"IEND", b""))
    assert exc.value.reason == "bad_image" and "65535x65535" in exc.value.detail
    # a chunk declaring 2 GiB that is not there (OpenCV would allocate it)
    bomb = _png_header(16, 16) + struct.pack(">I", 2**31 - 1) + b"IDAT" + bytes(100)
    with pytest.raises(PayloadError) as exc:
        decode_image(bomb)
    assert exc.value.reason == "truncated"
    # a JPEG whose frame header declares more pixels than the cap
    jpeg = bytearray(cv2.imencode(".jpg", _photo())[1].tobytes())
    sof = next(
        i for i in range(2, len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC0, 0xC2)
    )
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(PayloadError, match="outside 1..") as exc:
        decode_image(bytes(jpeg))
    with pytest.raises(PayloadError) as exc:
        decode_image(bytes(jpeg[: len(jpeg) // 3]), max_pixels=60000 * 60000)
    assert exc.value.reason in ("decode_error", "too_large", "truncated")
    small = cv2.imencode(".jpg", _photo())[1].tobytes()
    with pytest.raises(PayloadError, match="outside 1..100 pixels"):
        decode_image(small, max_pixels=100)
    for data, reason in (
        (b"", "empty"),
        (b"GIF89a" + bytes(40), "bad_image"),
        (small[:200], "decode_error"),
        (bytes(MAX_DECODED_PIXELS * 6 + 65537), "too_large"),
    ):
        with pytest.raises(PayloadError) as exc:
            decode_image(data)
        assert exc.value.reason == reason, (data[:8], exc.value)
