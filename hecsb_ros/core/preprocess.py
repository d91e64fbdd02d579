"""Camera image -> classifier input: encoding check, colour conversion, resize.

Runs on the edge before any codec; never allocates more than the validated image. Every colour
conversion is OpenCV's (``cv2.cvtColor`` codes of :data:`ENCODINGS`, checked against each
encoding's buffer layout on a real photo); numpy only reshapes buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hecsb_ros.core.payload import PayloadError

#: ``to_grey`` marker: convert to RGB first, then to grey (YUV: OpenCV's YUV2GRAY returns the raw,
#: limited-range Y plane, 11 grey levels off on average from the grey of the RGB encodings).
VIA_RGB = -1


@dataclass(frozen=True)
class Encoding:
    """The buffer layout of one ``sensor_msgs/Image`` encoding and its OpenCV conversions.

    The array of a frame (what :func:`hecsb_ros.nodes.conversions.image_msg_to_array` returns and
    codecs receive) is ``(rows, W, channels)``, or ``(rows, W)`` for one channel, of ``dtype`` in
    native byte order, with ``rows = H * rows_per_line[0] / rows_per_line[1]`` (NV21/NV12: the Y
    plane, then the interleaved chroma at half resolution, 3/2 rows per image row).
    """

    name: str
    channels: int  # elements per pixel in the buffer (4:2:2 YUV: 2)
    dtype: str = "uint8"  # uint8 or uint16
    to_rgb: int | None = None  # cv2.cvtColor code to RGB; None = already RGB
    to_grey: int | None = None  # code to grey; None = already grey; VIA_RGB = through RGB
    rows_per_line: tuple[int, int] = (1, 1)
    even_width: bool = False
    even_height: bool = False

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    def buffer_rows(self, height: int) -> int:
        return height * self.rows_per_line[0] // self.rows_per_line[1]

    def row_bytes(self, width: int) -> int:
        """Bytes of one buffer row without padding (``step`` may be larger)."""
        return width * self.channels * self.itemsize

    def buffer_shape(self, height: int, width: int) -> tuple[int, ...]:
        rows = self.buffer_rows(height)
        return (rows, width) if self.channels == 1 else (rows, width, self.channels)


def _encodings() -> dict[str, Encoding]:
    c = cv2
    rgb = dict(channels=3, to_grey=c.COLOR_RGB2GRAY)
    bgr = dict(channels=3, to_rgb=c.COLOR_BGR2RGB, to_grey=c.COLOR_BGR2GRAY)
    mono = dict(channels=1, to_rgb=c.COLOR_GRAY2RGB)
    uyvy = dict(channels=2, to_rgb=c.COLOR_YUV2RGB_UYVY, to_grey=VIA_RGB, even_width=True)
    yuyv = dict(channels=2, to_rgb=c.COLOR_YUV2RGB_YUY2, to_grey=VIA_RGB, even_width=True)
    semi = dict(
        channels=1, to_grey=VIA_RGB, rows_per_line=(3, 2), even_width=True, even_height=True
    )
    bayer = dict(channels=1, even_width=True, even_height=True)
    table = {
        "rgb8": rgb,
        "bgr8": bgr,
        "8UC3": bgr,  # 8UC3: OpenCV's BGR order
        "rgba8": dict(channels=4, to_rgb=c.COLOR_RGBA2RGB, to_grey=c.COLOR_RGBA2GRAY),
        "bgra8": dict(channels=4, to_rgb=c.COLOR_BGRA2RGB, to_grey=c.COLOR_BGRA2GRAY),
        "mono8": mono,
        "8UC1": mono,
        "mono16": dict(mono, dtype="uint16"),  # full-scale 16-bit grey, to 8 bit by /257 (rounded)
        "uyvy": uyvy,
        "yuv422": uyvy,  # yuv422: ROS's older name of UYVY
        "yuyv": yuyv,
        "yuv422_yuy2": yuyv,
        "nv21": dict(semi, to_rgb=c.COLOR_YUV2RGB_NV21),
        "nv12": dict(semi, to_rgb=c.COLOR_YUV2RGB_NV12),
        # ROS names the pattern from the top-left pixel; OpenCV 4's BayerRGGB.. aliases read the
        # same way
        "bayer_rggb8": dict(bayer, to_rgb=c.COLOR_BayerRGGB2RGB, to_grey=c.COLOR_BayerRGGB2GRAY),
        "bayer_bggr8": dict(bayer, to_rgb=c.COLOR_BayerBGGR2RGB, to_grey=c.COLOR_BayerBGGR2GRAY),
        "bayer_gbrg8": dict(bayer, to_rgb=c.COLOR_BayerGBRG2RGB, to_grey=c.COLOR_BayerGBRG2GRAY),
        "bayer_grbg8": dict(bayer, to_rgb=c.COLOR_BayerGRBG2RGB, to_grey=c.COLOR_BayerGRBG2GRAY),
    }
    return {name: Encoding(name, **fields) for name, fields in table.items()}


# : Supported ``sensor_msgs/Image`` encodings (YUV 4:2:2 under both ROS names, BT.601 limited range
# : as V4L2/UVC cameras deliver it; 16-bit data in native order, the message's ``is_bigendian``
# undone).
ENCODINGS: dict[str, Encoding] = _encodings()
#: Largest camera image accepted (pixels), far above any real camera, far below a memory bomb.
MAX_PIXELS = 8192 * 8192


def supported() -> str:
    """The supported encodings, for error messages."""
    return ", ".join(sorted(ENCODINGS))


def encoding_of(name: str) -> Encoding:
    """The :class:`Encoding` called ``name``; ``PayloadError('bad_image')`` naming the supported
    ones."""
    enc = ENCODINGS.get(name)
    if enc is None:
        raise PayloadError(
            "bad_image", f"encoding {name!r} not supported; use one of {supported()}"
        )
    return enc


def check_size(enc: Encoding, height: int, width: int, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``PayloadError('bad_image')`` for a frame size ``enc`` cannot have or above
    ``max_pixels``."""
    if height <= 0 or width <= 0 or height * width > max_pixels:
        raise PayloadError("bad_image", f"size {width}x{height} outside 1..{max_pixels} pixels")
    if (enc.even_width and width % 2) or (enc.even_height and height % 2):
        need = "width and height" if enc.even_height else "width"
        raise PayloadError(
            "bad_image", f"{enc.name} needs an even {need}, frame is {width}x{height}"
        )


def frame_size(image: np.ndarray, encoding: str) -> tuple[int, int]:
    """``(H, W)`` of the frame held in ``image`` (NV21/NV12 buffers have 3/2 rows per image
    row)."""
    enc = encoding_of(encoding)
    num, den = enc.rows_per_line
    return image.shape[0] * den // num, image.shape[1]


def check_image(image: np.ndarray, encoding: str) -> None:
    """Raise ``PayloadError('bad_image')`` unless ``image`` is a plausible ``encoding`` frame."""
    enc = encoding_of(encoding)
    if image.dtype != np.dtype(enc.dtype):
        raise PayloadError("bad_image", f"dtype {image.dtype} is not {enc.dtype} ({encoding})")
    if image.ndim == 2:
        got = 1
    elif image.ndim == 3:
        got = image.shape[2]
    else:
        raise PayloadError("bad_image", f"image has {image.ndim} dimensions")
    if got != enc.channels:
        raise PayloadError(
            "bad_image", f"{encoding} needs {enc.channels} channel(s), image has {got}"
        )
    num, den = enc.rows_per_line
    if image.shape[0] * den % num:
        raise PayloadError(
            "bad_image",
            f"{encoding} buffer of {image.shape[0]} rows is not {num}/{den} rows per image row",
        )
    h, w = frame_size(image, encoding)
    check_size(enc, h, w)


def prepare_image(image: np.ndarray, encoding: str, spec, resize: str | None = None) -> np.ndarray:
    """Convert a camera frame to the classifier's input as uint8 ``(H, W, C)``.

    Args:
        image: the frame in ``encoding`` (one of :data:`ENCODINGS`; its array layout there). spec:
        a :class:`hecsb_ros.core.teachers.spec.ClassifierSpec` (``input_size``, ``in_channels``,
            its resize policy and interpolation).
        resize: another resize policy than the spec's (``squash``, ``center_crop``, ``letterbox``).
    """
    out = convert_colour(image, encoding, spec.in_channels)
    out = fit(
        out,
        tuple(spec.input_size),
        resize or spec.resize,
        getattr(spec, "crop_fraction", 1.0),
        getattr(spec, "interpolation", "area"),
    )
    if out.ndim == 2:
        out = out[:, :, None]
    return np.ascontiguousarray(out)


def convert_colour(image: np.ndarray, encoding: str, channels: int) -> np.ndarray:
    """A camera frame in ``encoding`` (see :class:`Encoding` for its array) -> uint8 RGB ``(h, w,
    3)`` (``channels`` 3) or grey ``(h, w)`` (1), at its own size; raises
    ``PayloadError('bad_image')`` for a frame :func:`check_image` refuses.

    16-bit grey is taken as full scale (0..65535) and rounded to 8 bit (``/257``); grey from YUV
    goes through RGB, so that every encoding of a scene gives the same grey.
    """
    check_image(image, encoding)
    enc = ENCODINGS[encoding]
    img = image[:, :, 0] if (image.ndim == 3 and enc.channels == 1) else image
    img = np.ascontiguousarray(img)
    if enc.dtype == "uint16":
        img = cv2.convertScaleAbs(img, alpha=1.0 / 257.0)
    if channels == 1:
        if enc.to_grey is None:
            return img
        if enc.to_grey == VIA_RGB:
            return cv2.cvtColor(cv2.cvtColor(img, enc.to_rgb), cv2.COLOR_RGB2GRAY)
        return cv2.cvtColor(img, enc.to_grey)
    return img if enc.to_rgb is None else cv2.cvtColor(img, enc.to_rgb)


def fit(
    image: np.ndarray,
    size: tuple[int, int],
    policy: str = "squash",
    crop_fraction: float = 1.0,
    interpolation: str = "area",
) -> np.ndarray:
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
        image = image[top : top + ch, left : left + cw]
    elif policy == "letterbox":
        scale = min(h / ih, w / iw)
        nh, nw = max(1, min(h, round(ih * scale))), max(1, min(w, round(iw * scale)))
        inner = _resize(image, (nh, nw), interpolation)
        out = np.zeros((h, w) + image.shape[2:], dtype=image.dtype)
        top, left = (h - nh) // 2, (w - nw) // 2
        out[top : top + nh, left : left + nw] = inner.reshape((nh, nw) + image.shape[2:])
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
