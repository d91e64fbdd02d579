"""The ONNX Runtime backend at camera scale (EfficientNet-Lite0 levels, 224 x 224 photos): the same
payload bytes and classes as PyTorch, each backend's edge with the other's server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.slow]

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hecsb_ros.core.codecs import CodecSettings, create_codec  # noqa: E402

from test_onnx import _crbq_payloads_agree  # noqa: E402

TEACHER = "efficientnet_lite0"
KINDS = ("hecsb", "svb", "crbq", "factorized", "hyperprior")


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Two real photos (scikit-learn's sample images, RGB 427 x 640) and a generated 224 x 224
    gradient."""
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    named = {Path(n).stem: img for n, img in zip(data.filenames, data.images)}
    yy, xx = np.mgrid[0:224, 0:224]
    gradient = np.stack([xx, yy, (xx + yy) // 2], -1).astype(np.uint8)
    return [named["china"], named["flower"], gradient]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("onnx_cache"))


@pytest.mark.parametrize("kind", KINDS)
def test_camera_levels_give_the_torch_payloads_and_classes(kind, photos, cache):
    torch.set_num_threads(1)
    a = create_codec(kind, CodecSettings(teacher=TEACHER, threads=1))
    b = create_codec(
        kind, CodecSettings(teacher=TEACHER, threads=1, backend="onnxruntime", onnx_cache=cache)
    )
    assert a.model_id == b.model_id and b.ort is not None
    for image in photos:
        fa, fb = a.encode(image, "rgb8"), b.encode(image, "rgb8")
        if kind == "crbq":
            assert _crbq_payloads_agree(fa.data, fb.data)
        else:
            assert fa.data == fb.data, kind
        for data in (fa.data, fb.data):
            lt, lo = a.decode(data, ()).logits, b.decode(data, ()).logits
            assert lt.shape == (1000,) and float((lt - lo).abs().max()) < 1e-2
            assert int(lt.argmax()) == int(lo.argmax())


def test_the_whole_teacher_in_onnxruntime_classifies_a_photo(photos, cache):
    a = create_codec("raw", CodecSettings(teacher=TEACHER, threads=1))
    b = create_codec(
        "raw", CodecSettings(teacher=TEACHER, threads=1, backend="onnxruntime", onnx_cache=cache)
    )
    frame = a.encode(photos[1], "rgb8")
    lt, lo = a.decode(frame.data, frame.shape).logits, b.decode(frame.data, frame.shape).logits
    assert float((lt - lo).abs().max()) < 1e-2
    assert a.classes[int(lo.argmax())] == a.classes[int(lt.argmax())] == "daisy"
