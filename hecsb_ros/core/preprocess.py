"""Camera image -> classifier input: encoding check, colour conversion, resize.

Runs on the edge before any codec; never allocates more than the validated image.
"""
from __future__ import annotations

import cv2
import numpy as np

from hecsb_ros.core.payload import PayloadError

#: Supported ``sensor_msgs/Image`` encodings and their channel counts.
ENCODINGS: dict[str, int] = {"mono8": 1, "rgb8": 3, "bgr8": 3}
#: Largest camera image accepted (pixels), far above any real camera, far below a memory bomb.
MAX_PIXELS = 8192 * 8192


def check_image(image: np.ndarray, encoding: str) -> None:
    """Raise ``PayloadError('bad_image')`` unless ``image`` is a plausible ``encoding`` frame."""
    if encoding not in ENCODINGS:
        raise PayloadError("bad_image", f"encoding {encoding!r} not supported; use one of {sorted(ENCODINGS)}")
    if image.dtype != np.uint8:
        raise PayloadError("bad_image", f"dtype {image.dtype} is not uint8")
    channels = ENCODINGS[encoding]
    if image.ndim == 2:
        got = 1
    elif image.ndim == 3:
        got = image.shape[2]
    else:
        raise PayloadError("bad_image", f"image has {image.ndim} dimensions")
    if got != channels:
        raise PayloadError("bad_image", f"{encoding} needs {channels} channel(s), image has {got}")
    h, w = image.shape[:2]
    if h == 0 or w == 0 or h * w > MAX_PIXELS:
        raise PayloadError("bad_image", f"image size {w}x{h} outside 1..{MAX_PIXELS} pixels")


def prepare_image(image: np.ndarray, encoding: str, spec, resize: str | None = None) -> np.ndarray:
    """Convert a camera frame to the classifier's input as uint8 ``(H, W, C)``.

    Args:
        image: ``(h, w)`` or ``(h, w, c)`` uint8 in ``encoding`` (mono8, rgb8 or bgr8).
        spec: a :class:`hecsb_ros.core.teachers.spec.ClassifierSpec` (``input_size``, ``in_channels``,
            its resize policy and interpolation).
        resize: another resize policy than the spec's (``squash``, ``center_crop``, ``letterbox``).
    """
    out = convert_colour(image, encoding, spec.in_channels)
    out = fit(out, tuple(spec.input_size), resize or spec.resize, getattr(spec, "crop_fraction", 1.0),
              getattr(spec, "interpolation", "area"))
    if out.ndim == 2:
        out = out[:, :, None]
    return np.ascontiguousarray(out)


def convert_colour(image: np.ndarray, encoding: str, channels: int) -> np.ndarray:
    """A camera frame in ``encoding`` -> uint8 RGB ``(h, w, 3)`` (``channels`` 3) or grey ``(h, w)`` (1),
    at its own size; raises ``PayloadError('bad_image')`` for a frame :func:`check_image` refuses."""
    check_image(image, encoding)
    if channels == 1:
        if encoding == "mono8":
            out = image if image.ndim == 2 else image[:, :, 0]
        else:
            code = cv2.COLOR_RGB2GRAY if encoding == "rgb8" else cv2.COLOR_BGR2GRAY
            out = cv2.cvtColor(np.ascontiguousarray(image), code)
    else:
        if encoding == "mono8":
            out = cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[:2])), cv2.COLOR_GRAY2RGB)
        elif encoding == "bgr8":
            out = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB)
        else:
            out = image
    return out


def fit(image: np.ndarray, size: tuple[int, int], policy: str = "squash", crop_fraction: float = 1.0,
        interpolation: str = "area") -> np.ndarray:
    """``(h, w[, c])`` -> ``size`` = ``(H, W)`` by ``policy``.

    - ``squash``: resize the whole frame (the aspect ratio is not kept);
    - ``center_crop``: the centre region of the target's aspect ratio whose short side is
      ``crop_fraction`` of the frame's, then resize (EfficientNet's evaluation crop: 224 / 256);
    - ``letterbox``: resize the whole frame to fit inside, centred, the rest black.
    """
    h, w = size
    ih, iw = image.shape[:2]
    if policy == "center_crop":
        scale = min(ih / h, iw / w) * crop_fraction
        ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (ih - ch) // 2, (iw - cw) // 2
        image = image[top:top + ch, left:left + cw]
    elif policy == "letterbox":
        scale = min(h / ih, w / iw)
        nh, nw = max(1, min(h, round(ih * scale))), max(1, min(w, round(iw * scale)))
        inner = _resize(image, (nh, nw), interpolation)
        out = np.zeros((h, w) + image.shape[2:], dtype=image.dtype)
        top, left = (h - nh) // 2, (w - nw) // 2
        out[top:top + nh, left:left + nw] = inner.reshape((nh, nw) + image.shape[2:])
        return out
    elif policy != "squash":
        raise ValueError(f"unknown resize policy {policy!r}; use squash, center_crop or letterbox")
    return _resize(image, (h, w), interpolation)


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    if interpolation == "bicubic":
        interp = cv2.INTER_CUBIC
    elif interpolation == "bilinear":
        interp = cv2.INTER_LINEAR
    else:  # area: the best when shrinking, bilinear when enlarging
        interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=interp)
