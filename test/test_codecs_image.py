"""Image codecs: registry, round trips, header checks against decompression bombs, bad payloads."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from hecsb_ros.core.codecs import CodecSettings, create_codec, list_codecs
from hecsb_ros.core.codecs.image import jpeg_size, png_size, webp_size
from hecsb_ros.core.datasets import load_fashion_mnist
from hecsb_ros.core.codecs import validate_payload
from hecsb_ros.core.payload import PayloadError

IMAGE_CODECS = ("raw", "png", "jpeg", "webp")


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("test").images[:8]


@pytest.fixture(scope="module")
def codecs(random_classifier):
    return {
        n: create_codec(n, CodecSettings(checkpoint=str(random_classifier))) for n in IMAGE_CODECS
    }


def test_registry_lists_image_codecs_and_rejects_unknown_names():
    assert set(IMAGE_CODECS) <= set(list_codecs())
    with pytest.raises(ValueError, match="known codecs: .*png"):
        create_codec("nope")


def test_quality_out_of_range_is_rejected(random_classifier):
    with pytest.raises(ValueError, match="quality 0 outside"):
        create_codec("jpeg", CodecSettings(quality=0, checkpoint=str(random_classifier)))


def test_codec_settings_pick_threads_and_the_convolution_backend(random_classifier, images):
    native = create_codec("png", CodecSettings(checkpoint=str(random_classifier), threads=1))
    # native kernels by default
    assert torch.get_num_threads() == 1 and not torch.backends.mkldnn.enabled
    frame = native.encode(images[0], "mono8")
    want = native.decode(frame.data, frame.shape).logits
    onednn = create_codec(
        "png", CodecSettings(checkpoint=str(random_classifier), threads=1, onednn=True)
    )
    assert torch.backends.mkldnn.enabled
    # both backends compute the same network
    assert torch.allclose(onednn.decode(frame.data, frame.shape).logits, want, atol=1e-4)


@pytest.mark.parametrize("name", IMAGE_CODECS)
def test_round_trip_gives_the_same_logits_as_the_classifier(codecs, images, name):
    codec = codecs[name]
    frame = codec.encode(images[0], "mono8")
    assert frame.shape == (28, 28, 1)
    assert set(frame.timings_ms) == {"preprocess", "encode", "entropy"}
    validate_payload(
        codec, name, codec.model_id, codec.quality, frame.shape, len(frame.data), 1 << 20
    )
    out = codec.decode(frame.data, frame.shape)
    assert out.logits.shape == (10,)
    if name in ("raw", "png"):  # lossless: identical to running the classifier on the pixels
        from hecsb_ros.core.teachers import images_to_tensor

        x = images_to_tensor(images[0][:, :, None], codec.classifier.spec)
        with torch.inference_mode():
            ref = codec.classifier.model(x)[0]
        torch.testing.assert_close(out.logits, ref)


def test_lossy_quality_changes_size(codecs, images, random_classifier):
    small = create_codec("jpeg", CodecSettings(quality=10, checkpoint=str(random_classifier)))
    big = create_codec("jpeg", CodecSettings(quality=95, checkpoint=str(random_classifier)))
    assert len(small.encode(images[1], "mono8").data) < len(big.encode(images[1], "mono8").data)


def test_colour_camera_frames_are_converted_to_the_input(codecs):
    frame = codecs["png"].encode(np.full((480, 640, 3), 200, np.uint8), "bgr8")
    assert frame.shape == (28, 28, 1)


@pytest.mark.parametrize("name", ["png", "jpeg", "webp"])
def test_header_sizes_match_opencv_output(codecs, images, name):
    data = codecs[name].encode(images[2], "mono8").data
    sniff = {"png": png_size, "jpeg": jpeg_size, "webp": webp_size}[name]
    assert sniff(data) == (28, 28)


def _png_with_size(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00" * 16
    )


def test_png_bomb_is_refused_before_decoding(codecs):
    with pytest.raises(PayloadError) as err:
        codecs["png"].decode(_png_with_size(100000, 100000), (28, 28, 1))
    assert err.value.reason == "bad_shape"


@pytest.mark.parametrize("name", IMAGE_CODECS)
@pytest.mark.parametrize("mangle", ["truncate", "garbage", "empty_tail"])
def test_bad_payload_bytes_raise_payload_error(codecs, images, name, mangle):
    data = codecs[name].encode(images[3], "mono8").data
    bad = {
        "truncate": data[: len(data) // 3],
        "garbage": bytes(np.random.default_rng(1).integers(0, 256, 300, np.uint8)),
        "empty_tail": data[:5],
    }[mangle]
    with pytest.raises(PayloadError) as err:
        codecs[name].decode(bad, (28, 28, 1))
    assert err.value.reason in ("truncated", "decode_error", "bad_shape")


def test_shape_other_than_the_input_is_refused(codecs, images):
    frame = codecs["raw"].encode(images[0], "mono8")
    with pytest.raises(PayloadError, match="bad_shape"):
        validate_payload(codecs["raw"], "raw", "img-raw", 0, (28, 27, 1), len(frame.data), 1 << 20)


@pytest.mark.parametrize("name", ["jpeg_frame", "webp_frame", "png_frame"])
def test_whole_frame_codecs_send_the_camera_frame_and_resize_on_the_server(
    name, random_classifier
):
    from hecsb_ros.core.codecs import CodecSettings, create_codec, validate_payload

    codec = create_codec(name, CodecSettings(checkpoint=str(random_classifier)))
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    enc = codec.encode(frame, "bgr8")
    assert enc.shape == (480, 640, 1)  # the grey teacher's colour space, the camera's size
    validate_payload(
        codec, name, codec.model_id, codec.quality, enc.shape, len(enc.data), 1 << 22, 1 << 22
    )
    assert codec.decode(enc.data, enc.shape).logits.shape == (10,)
    with pytest.raises(PayloadError, match="bad_shape"):
        codec.check_shape((480, 640, 3))  # not the teacher's channels
    with pytest.raises(PayloadError, match="bad_shape"):
        codec.check_shape((5000, 5000, 1))  # above 4K
    with pytest.raises(PayloadError):
        codec.decode(enc.data, (240, 320, 1))  # the header says otherwise


def test_resize_setting_overrides_the_teachers_policy(random_classifier):
    from hecsb_ros.core.codecs import CodecSettings, create_codec

    frame = np.zeros((40, 80), np.uint8)
    frame[:, 20:60] = 255  # a bright centre square
    squash = create_codec("raw", CodecSettings(checkpoint=str(random_classifier))).encode(
        frame, "mono8"
    )
    crop = create_codec(
        "raw", CodecSettings(checkpoint=str(random_classifier), resize="center_crop")
    ).encode(frame, "mono8")
    assert (
        np.frombuffer(crop.data, np.uint8).min() == 255
        and np.frombuffer(squash.data, np.uint8).min() == 0
    )
