"""Input codecs: the edge encodes the (preprocessed) image, the server decodes it and runs the
whole classifier. ``raw`` (uint8 pixels), ``png``, ``jpeg`` and ``webp`` (OpenCV).

Before any image decoder runs, the declared width and height are read from the format's header
and compared with the expected input, so a small payload cannot make the decoder allocate a huge
image (a decompression bomb).
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
import torch

from hecsb_ros.core.codecs.base import (
    Codec,
    CodecSettings,
    Decoded,
    EncodedFrame,
    Timer,
    register_codec,
)
from hecsb_ros.core.imageformats import jpeg_size, png_check_chunks, png_size, webp_size
from hecsb_ros.core.onnx_runtime import OrtTeacher
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.preprocess import convert_colour, prepare_image
from hecsb_ros.core.teachers.registry import load_teacher
from hecsb_ros.core.teachers.spec import images_to_tensor


class ImageCodec(Codec):
    """Base of the input codecs: payload = the classifier input image, encoded.

    ``shape`` sent with the payload is the image's ``(H, W, C)``; it must equal the classifier's
    input (the server checks before decoding). With ``whole_frame`` the payload is the whole camera
    frame at its own size, as ROS's compressed image transport sends it; the server decodes it and
    then crops and resizes it for the classifier.
    """

    default_quality: ClassVar[int] = 0
    quality_range: ClassVar[tuple[int, int]] = (0, 0)
    whole_frame: ClassVar[bool] = False
    #: largest whole frame accepted (pixels): 4K UHD
    max_frame_pixels: ClassVar[int] = 3840 * 2160

    def __init__(self, settings: CodecSettings) -> None:
        super().__init__(settings)
        self.classifier = (
            load_teacher(settings.checkpoint, device=settings.device)
            if settings.checkpoint
            else settings.load_teacher()
        )
        spec = self.classifier.spec
        self.input_shape = (spec.input_size[0], spec.input_size[1], spec.in_channels)
        #: the classifier in ONNX Runtime (backend 'onnxruntime'), else None (PyTorch)
        self.ort = (
            OrtTeacher(self.classifier, settings.threads, settings.onnx_cache, settings.device)
            if settings.backend == "onnxruntime"
            else None
        )

    @property
    def model_id(self) -> str:
        return f"img-{self.name}"

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.spec.classes

    def check_shape(self, shape: tuple[int, ...]) -> None:
        shape = tuple(shape)
        if self.whole_frame:
            if (
                len(shape) != 3
                or shape[2] != self.input_shape[2]
                or min(shape) < 1
                or shape[0] * shape[1] > self.max_frame_pixels
            ):
                raise PayloadError(
                    "bad_shape",
                    f"frame shape {shape} is not (H, W, "
                    f"{self.input_shape[2]}) "
                    f"with at most {self.max_frame_pixels} pixels",
                )
        elif shape != self.input_shape:
            raise PayloadError(
                "bad_shape", f"image shape {shape} != classifier input {self.input_shape}"
            )

    def max_payload_bytes(self) -> int:
        # Generous bound: an incompressible image plus container overhead.
        pixels = (
            self.max_frame_pixels
            if self.whole_frame
            else self.input_shape[0] * self.input_shape[1]
        )
        return pixels * self.input_shape[2] * 2 + 4096

    # -- format hooks ------------------------------------------------------------------------
    def _encode_pixels(self, pixels: np.ndarray) -> bytes:
        raise NotImplementedError

    def _decode_pixels(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    # -- contract ----------------------------------------------------------------------------
    def encode(self, image: np.ndarray, encoding: str) -> EncodedFrame:
        t = Timer()
        with t("preprocess"):
            if self.whole_frame:
                pixels = convert_colour(image, encoding, self.input_shape[2])
                pixels = np.ascontiguousarray(pixels[:, :, None] if pixels.ndim == 2 else pixels)
            else:
                pixels = prepare_image(
                    image, encoding, self.classifier.spec, self.settings.resize or None
                )
        with t("encode"):
            data = self._encode_pixels(pixels)
        t.ms["entropy"] = 0.0
        return EncodedFrame(data=data, shape=tuple(pixels.shape), timings_ms=t.ms)

    @torch.inference_mode()
    def decode_input(self, data: bytes, shape: tuple[int, ...]) -> torch.Tensor:
        self.check_shape(shape)
        pixels = self._decode_pixels(data, shape)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if tuple(pixels.shape) != tuple(shape):
            raise PayloadError("decode_error", f"decoded image {pixels.shape} != {tuple(shape)}")
        if self.whole_frame:  # the classifier's crop and resize, on the server
            pixels = prepare_image(
                pixels,
                "rgb8" if pixels.shape[2] == 3 else "mono8",
                self.classifier.spec,
                self.settings.resize or None,
            )
        return images_to_tensor(pixels, self.classifier.spec).to(self.device)

    @torch.inference_mode()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        return self.ort(x) if self.ort is not None else self.classifier.model(x)

    @torch.inference_mode()
    def decode(self, data: bytes, shape: tuple[int, ...]) -> Decoded:
        t = Timer()
        with t("decode"):
            x = self.decode_input(data, shape)
        with t("infer"):
            logits = self.infer(x)[0].float().cpu()
        return Decoded(logits=logits, timings_ms=t.ms)


class _OpenCVCodec(ImageCodec):
    ext: ClassVar[str] = ""

    def _params(self) -> list[int]:
        return []

    def _header_size(self, data: bytes) -> tuple[int, int]:
        raise NotImplementedError

    def _check_stream(self, data: bytes) -> None:
        """Format-specific checks of the whole stream before the decoder runs (default: none)."""

    def _encode_pixels(self, pixels: np.ndarray) -> bytes:
        img = pixels[:, :, 0] if pixels.shape[2] == 1 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(self.ext, img, self._params())
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {self.ext}")
        return buf.tobytes()

    def _decode_pixels(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        width, height = self._header_size(data)
        if (height, width) != tuple(shape[:2]):
            raise PayloadError(
                "bad_shape",
                f"{self.name} header says {width}x{height}, expected {shape[1]}x{shape[0]}",
            )
        self._check_stream(data)
        flag = cv2.IMREAD_GRAYSCALE if shape[2] == 1 else cv2.IMREAD_COLOR
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
        if img is None:
            raise PayloadError("decode_error", f"{self.name} payload could not be decoded")
        return img if shape[2] == 1 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@register_codec("raw")
class RawCodec(ImageCodec):
    """Uncompressed uint8 pixels of the classifier input (the no-compression reference)."""

    description = "uint8 pixels, no compression"

    def _encode_pixels(self, pixels: np.ndarray) -> bytes:
        return pixels.tobytes()

    def _decode_pixels(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        need = int(np.prod(shape))
        if len(data) != need:
            raise PayloadError(
                "truncated", f"raw payload has {len(data)} B, shape {tuple(shape)} needs {need} B"
            )
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)


@register_codec("png")
class PngCodec(_OpenCVCodec):
    """Lossless PNG; quality = zlib compression level 0-9."""

    description = "PNG, lossless; quality = compression level 0-9"
    ext = ".png"
    default_quality = 9
    quality_range = (0, 9)

    def _params(self) -> list[int]:
        return [cv2.IMWRITE_PNG_COMPRESSION, self.quality]

    def _header_size(self, data: bytes) -> tuple[int, int]:
        return png_size(data)

    def _check_stream(self, data: bytes) -> None:
        png_check_chunks(data)


@register_codec("jpeg")
class JpegCodec(_OpenCVCodec):
    """Baseline JPEG; quality 1-100."""

    description = "JPEG; quality 1-100"
    ext = ".jpg"
    default_quality = 90
    quality_range = (1, 100)

    def _params(self) -> list[int]:
        return [cv2.IMWRITE_JPEG_QUALITY, self.quality]

    def _header_size(self, data: bytes) -> tuple[int, int]:
        return jpeg_size(data)


@register_codec("webp")
class WebpCodec(_OpenCVCodec):
    """WebP; quality 1-100 lossy, 101 lossless."""

    description = "WebP; quality 1-100 lossy, 101 lossless"
    ext = ".webp"
    default_quality = 75
    quality_range = (1, 101)

    def _params(self) -> list[int]:
        return [cv2.IMWRITE_WEBP_QUALITY, self.quality]

    def _header_size(self, data: bytes) -> tuple[int, int]:
        return webp_size(data)


@register_codec("jpeg_frame")
class JpegFrameCodec(JpegCodec):
    """JPEG of the whole camera frame (ROS compressed image transport's default format); quality
    1-100."""

    description = "JPEG of the whole camera frame, resized on the server; quality 1-100"
    whole_frame = True
    default_quality = 95


@register_codec("webp_frame")
class WebpFrameCodec(WebpCodec):
    """WebP of the whole camera frame; quality 1-100 lossy, 101 lossless."""

    description = (
        "WebP of the whole camera frame, resized on the server; quality 1-100, 101 lossless"
    )
    whole_frame = True


@register_codec("png_frame")
class PngFrameCodec(PngCodec):
    """PNG of the whole camera frame (compressed image transport's lossless format); level 0-9."""

    description = (
        "PNG of the whole camera frame, resized on the server; quality = compression level 0-9"
    )
    whole_frame = True
