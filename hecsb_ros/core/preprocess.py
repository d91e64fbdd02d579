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


def prepare_image(image: np.ndarray, encoding: str, spec) -> np.ndarray:
    """Convert a camera frame to the classifier's input as uint8 ``(H, W, C)``.

    Args:
        image: ``(h, w)`` or ``(h, w, c)`` uint8 in ``encoding`` (mono8, rgb8 or bgr8).
        spec: a :class:`hecsb_ros.core.teachers.spec.ClassifierSpec` (``input_size``, ``in_channels``).
    """
    check_image(image, encoding)
    if spec.in_channels == 1:
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
    h, w = spec.input_size
    if out.shape[:2] != (h, w):
        interp = cv2.INTER_AREA if out.shape[0] > h else cv2.INTER_LINEAR
        out = cv2.resize(np.ascontiguousarray(out), (w, h), interpolation=interp)
    if out.ndim == 2:
        out = out[:, :, None]
    return np.ascontiguousarray(out)
