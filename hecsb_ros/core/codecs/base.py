"""The one codec contract and its registry.

Every codec, learned or classic, has an edge half (image -> payload bytes) and a server half
(payload bytes -> logits). Nodes only talk to this contract, so adding a codec never touches a node:

    codec = create_codec("png", CodecSettings(quality=3))
    frame = codec.encode(image, "mono8")       # edge: EncodedFrame(data, shape, timings_ms)
    result = codec.decode(frame.data, frame.shape)  # server: Decoded(logits (K,), timings_ms)

A server must call :func:`hecsb_ros.core.payload.validate_payload` before :meth:`Codec.decode`;
it checks the codec name, model id, payload cap and shape against :meth:`Codec.check_shape`.
"""
from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar

import numpy as np
import torch

from hecsb_ros.core.payload import PayloadError

if TYPE_CHECKING:  # for the annotation only; codecs import the models when they load one
    from hecsb_ros.core.models import Classifier


@dataclass(frozen=True)
class CodecSettings:
    """Settings shared by all codecs.

    Attributes:
        quality: quality or rate level; -1 picks the codec's default. Meaning per codec (JPEG/WebP
            quality 1-100, PNG compression level 0-9, learned codecs: index of a rate level).
        checkpoint: path of a classifier or bottleneck checkpoint; '' uses the shipped default.
        teacher: the classifier a split codec was trained for (its tail runs on the server, its
            input size and normalisation on the edge) and the classifier the input codecs run when
            ``checkpoint`` is empty: a classifier checkpoint, or local torchvision ResNet-50 weights
            (``.pth``); '' uses the shipped Fashion-MNIST teacher.
        device: 'cpu' or 'cuda'.
        threads: torch intra-op threads for this codec's work (0 leaves torch's default).
        onednn: run CPU convolutions with oneDNN (MKL-DNN). Off by default: at batch 1 on these small
            networks PyTorch's native kernels are faster (every codec, edge and server; see
            benchmarks/README.md); oneDNN pays off for large inputs such as ResNet-50 at 224 x 224.
    """

    quality: int = -1
    checkpoint: str = ""
    device: str = "cpu"
    threads: int = 0
    onednn: bool = False
    teacher: str = ""

    def load_teacher(self) -> Classifier:
        """The :class:`~hecsb_ros.core.models.Classifier` named by ``teacher`` (or the shipped one)."""
        from hecsb_ros.core.models import load_classifier  # heavy: torch models

        return load_classifier(self.teacher or None, device=self.device)


@dataclass(frozen=True)
class EncodedFrame:
    """Edge output: payload bytes, the shape the server needs, and timings in ms per part."""

    data: bytes
    shape: tuple[int, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Decoded:
    """Server output: logits ``(K,)`` for one frame and timings in ms per part."""

    logits: torch.Tensor
    timings_ms: dict[str, float] = field(default_factory=dict)


class Timer:
    """Collects named wall-clock durations (``time.perf_counter_ns``) in milliseconds."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._start = 0

    def __call__(self, name: str) -> "Timer":
        self._name = name
        return self

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ms[self._name] = self.ms.get(self._name, 0.0) + (time.perf_counter_ns() - self._start) / 1e6


class Codec(abc.ABC):
    """Base class of every codec. Subclasses set ``name`` and implement the abstract methods.

    ``model_id`` identifies the encoder that makes payloads (a content hash of its checkpoint, or a
    fixed tag for classic image codecs); a server refuses payloads whose model id differs.
    """

    name: ClassVar[str] = ""
    default_quality: ClassVar[int] = 0
    quality_range: ClassVar[tuple[int, int]] = (0, 0)
    description: ClassVar[str] = ""

    def __init__(self, settings: CodecSettings) -> None:
        lo, hi = self.quality_range
        quality = self.default_quality if settings.quality < 0 else settings.quality
        if not lo <= quality <= hi:
            raise ValueError(f"codec {self.name!r}: quality {quality} outside [{lo}, {hi}]")
        self.settings = settings
        self.quality = quality
        self.device = torch.device(settings.device)
        configure_torch(settings)

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """Identifier of the encoder (16 hex characters for learned codecs)."""

    @property
    @abc.abstractmethod
    def classes(self) -> tuple[str, ...]:
        """Class names, index = class id."""

    @abc.abstractmethod
    def encode(self, image: np.ndarray, encoding: str) -> EncodedFrame:
        """Edge half: camera image ``(H, W)`` or ``(H, W, C)`` uint8 in ``encoding`` -> payload."""

    @abc.abstractmethod
    def decode(self, data: bytes, shape: tuple[int, ...]) -> Decoded:
        """Server half: payload -> logits. Raises :class:`PayloadError` on undecodable input."""

    @abc.abstractmethod
    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`PayloadError` ('bad_shape') unless ``shape`` is one this codec produces."""

    def max_payload_bytes(self) -> int:
        """Largest payload this codec can legitimately produce (used with the node's cap)."""
        return 1 << 24


def configure_torch(settings: CodecSettings) -> None:
    """Apply the process-wide torch settings a codec runs with: intra-op threads and the CPU
    convolution backend (one codec per node; the benchmark gives every codec the same settings)."""
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    if torch.device(settings.device).type == "cpu":
        torch.backends.mkldnn.enabled = settings.onednn


_REGISTRY: dict[str, type[Codec]] = {}


def register_codec(name: str) -> Callable[[type[Codec]], type[Codec]]:
    """Class decorator: make a codec available to :func:`create_codec` under ``name``."""

    def wrap(cls: type[Codec]) -> type[Codec]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"codec {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _load_builtin_codecs() -> None:
    # Importing the modules runs their @register_codec decorators.
    from hecsb_ros.core.codecs import builtin  # noqa: F401


def list_codecs() -> list[str]:
    """Names of all registered codecs, sorted."""
    _load_builtin_codecs()
    return sorted(_REGISTRY)


def codec_class(name: str) -> type[Codec]:
    """The class registered as ``name``; ValueError lists the known names otherwise."""
    _load_builtin_codecs()
    if name not in _REGISTRY:
        raise ValueError(f"unknown codec {name!r}; known codecs: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_codec(name: str, settings: CodecSettings | None = None) -> Codec:
    """Build a codec by registry name (timm-style factory)."""
    return codec_class(name)(settings or CodecSettings())


__all__ = [
    "Codec", "CodecSettings", "Decoded", "EncodedFrame", "PayloadError", "Timer",
    "codec_class", "create_codec", "list_codecs", "register_codec",
]
