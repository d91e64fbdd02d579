"""Server-side validation of payload metadata: every rejection reason."""

from __future__ import annotations

import math

import pytest

from hecsb_ros.core.codecs import CodecSettings, create_codec
from hecsb_ros.core.codecs import validate_payload
from hecsb_ros.core.payload import PayloadError, check_shape_bounds, check_timings


@pytest.fixture(scope="module")
def png(random_classifier):
    return create_codec("png", CodecSettings(checkpoint=str(random_classifier)))


def _reason(fn, *args, **kw) -> str:
    with pytest.raises(PayloadError) as err:
        fn(*args, **kw)
    return err.value.reason


def test_valid_metadata_passes(png):
    validate_payload(png, "png", png.model_id, png.quality, (28, 28, 1), 300, 1 << 20)


@pytest.mark.parametrize(
    "codec,model_id,rate,shape,size,reason",
    [
        ("jpeg", "img-png", 9, (28, 28, 1), 300, "unknown_codec"),
        ("png", "0123456789abcdef", 9, (28, 28, 1), 300, "model_mismatch"),
        ("png", "img-png", 3, (28, 28, 1), 300, "bad_rate"),
        ("png", "img-png", 9, (28, 28, 1), 0, "empty"),
        ("png", "img-png", 9, (28, 28, 1), 10**7, "too_large"),
        ("png", "img-png", 9, (2**31, 2**31, 2**31), 300, "bad_shape"),
        ("png", "img-png", 9, (1, 1, 1, 1, 1), 300, "bad_shape"),
        ("png", "img-png", 9, (28, 0, 1), 300, "bad_shape"),
        ("png", "img-png", 9, (56, 56, 1), 300, "bad_shape"),
    ],
)
def test_each_bad_field_has_its_reason(png, codec, model_id, rate, shape, size, reason):
    assert _reason(validate_payload, png, codec, model_id, rate, shape, size, 1 << 20) == reason


def test_memory_bomb_shape_is_refused_without_allocating():
    assert _reason(check_shape_bounds, (65535,) * 4, 1 << 24) == "bad_shape"
    assert check_shape_bounds((4, 7, 7)) == 196


@pytest.mark.parametrize("value", [math.nan, -1.0, math.inf, 1e12])
def test_bad_timings(value):
    assert _reason(check_timings, [1.0, value]) == "bad_timing"


def test_unknown_reason_code_is_a_programming_error():
    with pytest.raises(ValueError):
        PayloadError("whatever", "x")
