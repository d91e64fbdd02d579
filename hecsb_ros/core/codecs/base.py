"""The one codec contract and its registry.

Every codec, learned or classic, has an edge half (image -> payload bytes) and a server half
(payload bytes -> logits). Nodes only talk to this contract, so adding a codec never touches a
node:

    codec = create_codec("png", CodecSettings(quality=3))
    frame = codec.encode(image, "mono8")       # edge: EncodedFrame(data, shape, timings_ms)
    result = codec.decode(frame.data, frame.shape)  # server: Decoded(logits (K,), timings_ms)

A server must call :func:`validate_payload` before :meth:`Codec.decode`; it checks the codec
name, model id, rate level, payload cap and shape against :meth:`Codec.check_shape`.

Built-in codecs live in the modules of :data:`BUILTIN_CODEC_MODULES` (imported on first use of the
registry); a codec of one's own is a :class:`Codec` subclass decorated with :func:`register_codec`
in a module that is imported before the nodes create their codec (the nodes' ``plugins``
parameter names such modules).
"""

from __future__ import annotations

import abc
import importlib
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from hecsb_ros.core.onnx_runtime import check_backend
from hecsb_ros.core.payload import DEFAULT_MAX_ELEMENTS, PayloadError, check_shape_bounds
from hecsb_ros.core.teachers.classifier import Classifier

#: Modules whose ``@register_codec`` classes are the built-in codecs.
BUILTIN_CODEC_MODULES = (
    "hecsb_ros.core.codecs.learned",
    "hecsb_ros.core.codecs.image",
    "hecsb_ros.core.codecs.null",
)


@dataclass(frozen=True)
class CodecSettings:
    """Settings shared by all codecs.

    Attributes:
        quality: quality or rate level; -1 picks the codec's default. Meaning per codec (JPEG/WebP
            quality 1-100, PNG compression level 0-9, learned codecs: index of a rate level).
        checkpoint: path of a classifier or bottleneck checkpoint; '' uses the shipped default.
        teacher: the classifier a split codec was trained for (its tail runs on the server, its
            input size and normalisation on the edge) and the classifier the input codecs run when
            ``checkpoint`` is empty: a registered teacher name (``resnet50:PATH`` with a weights
            file), a classifier checkpoint, or local torchvision ResNet-50 weights (``.pth``); ''
            uses the shipped Fashion-MNIST teacher (see :mod:`hecsb_ros.core.teachers.registry`).
        device: 'cpu' or 'cuda'.
        threads: torch intra-op threads for this codec's work (0 leaves torch's default); also ONNX
            Runtime's with backend ``onnxruntime`` (0: one per core).
        onednn: run CPU convolutions with oneDNN (MKL-DNN). Off by default: at batch 1 on these
        small
            networks PyTorch's native kernels are faster (every codec, edge and server; see
            benchmarks/README.md); oneDNN pays off for large inputs such as ResNet-50 at 224 x 224.
        resize: how a camera frame of another shape becomes the teacher's input (``squash``,
            ``center_crop``, ``letterbox``); '' uses the teacher's own policy, the one its
            bottlenecks were trained and evaluated with (recorded in their manifests).
        backend: the runtime of the codec's networks: ``torch`` (PyTorch eager) or ``onnxruntime``
        (the
            networks exported to ONNX, :mod:`hecsb_ros.core.onnx_runtime`; ``threads`` intra-op
            threads). Learned codecs run their edge and server networks there, image codecs their
            server's teacher; preprocessing, entropy coding and payloads are the same for both, so
            an edge on one backend talks to a server on the other.
        onnx_cache: folder of the exported ONNX files ('' = ``~/.cache/hecsb_ros/onnx``, see
            :func:`hecsb_ros.core.onnx_runtime.cache_dir`).
    """

    quality: int = -1
    checkpoint: str = ""
    device: str = "cpu"
    threads: int = 0
    onednn: bool = False
    teacher: str = ""
    resize: str = ""
    backend: str = "torch"
    onnx_cache: str = ""

    def load_teacher(self) -> Classifier:
        """The :class:`~hecsb_ros.core.teachers.Classifier` named by ``teacher`` (or the shipped
        one)."""
        from hecsb_ros.core.teachers.registry import load_teacher

        return load_teacher(self.teacher or None, device=self.device)


@dataclass(frozen=True)
class EncodedFrame:
    """Edge output: payload bytes, the shape the server needs, and timings in ms per part."""

    data: bytes
    shape: tuple[int, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Decoded:
    """Server output: logits ``(K,)`` for one frame, timings in ms per part, and the number of
    frames whose network ran together with this one (``batch``; ``infer`` is that whole batch's
    time)."""

    logits: torch.Tensor
    timings_ms: dict[str, float] = field(default_factory=dict)
    batch: int = 1


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
        self.ms[self._name] = (
            self.ms.get(self._name, 0.0) + (time.perf_counter_ns() - self._start) / 1e6
        )


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
        default, lo, hi = self.quality_bounds(settings)
        quality = default if settings.quality < 0 else settings.quality
        if not lo <= quality <= hi:
            raise ValueError(f"codec {self.name!r}: quality {quality} outside [{lo}, {hi}]")
        check_backend(settings.backend)
        self.settings = settings
        self.quality = quality
        self.device = torch.device(settings.device)
        configure_torch(settings)

    @classmethod
    def quality_bounds(cls, settings: CodecSettings) -> tuple[int, int, int]:
        """(default, lowest, highest) quality for ``settings`` (learned codecs: the shipped
        levels)."""
        return cls.default_quality, *cls.quality_range

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
        """Raise :class:`PayloadError` ('bad_shape') unless ``shape`` is one this codec
        produces."""

    def max_payload_bytes(self) -> int:
        """Largest payload this codec can legitimately produce (used with the node's cap)."""
        return 1 << 24

    # -- micro-batching (server) -------------------------------------------------------------
    def decode_input(self, data: bytes, shape: tuple[int, ...]) -> torch.Tensor:
        """Server half, first part: one payload -> the network's input ``(1, ...)`` (entropy or
        image decoding, per payload). Codecs that implement it and :meth:`infer` get a batched
        :meth:`decode_batch`; the others are decoded one by one."""
        raise NotImplementedError

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Server half, second part: network inputs ``(N, ...)`` -> logits ``(N, K)``."""
        raise NotImplementedError

    def decode_batch(
        self, items: Sequence[tuple[bytes, tuple[int, ...]]]
    ) -> list["Decoded | PayloadError"]:
        """Server half for several payloads: each is decoded on its own (a bad one becomes its
        :class:`PayloadError`, the others go on), then one network call classifies all that
        decoded. The result for item i is its :class:`Decoded` or its error."""
        out: list[Decoded | PayloadError | None] = [None] * len(items)
        inputs: list[tuple[int, torch.Tensor, dict[str, float]]] = []
        for i, (data, shape) in enumerate(items):
            t = Timer()
            try:
                with t("decode"):
                    x = self.decode_input(data, shape)
            except NotImplementedError:  # a codec without the two hooks: one by one
                return [decode_or_error(self, d, s) for d, s in items]
            except PayloadError as exc:
                out[i] = exc
                continue
            # a decoder bug on hostile bytes stays this item's
            except Exception as exc:
                out[i] = PayloadError("decode_error", f"{type(exc).__name__}: {exc}")
                continue
            inputs.append((i, x, t.ms))
        groups: dict[tuple[int, ...], list[tuple[int, torch.Tensor, dict[str, float]]]] = {}
        for item in inputs:  # one network call per input shape (one shape per codec in practice)
            groups.setdefault(tuple(item[1].shape[1:]), []).append(item)
        for group in groups.values():
            t = Timer()
            with torch.inference_mode(), t("infer"):
                logits = self.infer(torch.cat([x for _, x, _ in group])).float().cpu()
            for row, (i, _, ms) in enumerate(group):
                out[i] = Decoded(
                    logits=logits[row], timings_ms={**ms, "infer": t.ms["infer"]}, batch=len(group)
                )
        return out  # type: ignore[return-value]


def decode_or_error(codec: Codec, data: bytes, shape: tuple[int, ...]) -> "Decoded | PayloadError":
    """``codec.decode``, with the :class:`PayloadError` that refuses the payload returned instead
    of raised (any other exception of a decoder on hostile bytes becomes a 'decode_error')."""
    try:
        return codec.decode(data, shape)
    except PayloadError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001
        return PayloadError("decode_error", f"{type(exc).__name__}: {exc}")


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


def load_codec_modules(modules: Sequence[str] = (), builtin: bool = True) -> None:
    """Import the built-in codec modules (``builtin``) and ``modules`` (codecs of one's own); their
    ``@register_codec`` decorators fill the registry. ValueError names a module that cannot be
    imported."""
    for name in (*(BUILTIN_CODEC_MODULES if builtin else ()), *modules):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"codec module {name!r} cannot be imported: {exc}") from exc


def _load_builtin_codecs() -> None:
    load_codec_modules()


#: The built-in modules in the order :func:`codec_class` imports them to find a name: the classic
#: codecs first, so a process that runs one never imports the learned models (and CompressAI).
_LOOKUP_ORDER = (
    "hecsb_ros.core.codecs.image",
    "hecsb_ros.core.codecs.null",
    *BUILTIN_CODEC_MODULES,
)


def list_codecs() -> list[str]:
    """Names of all registered codecs, sorted."""
    _load_builtin_codecs()
    return sorted(_REGISTRY)


def codec_class(name: str) -> type[Codec]:
    """The class registered as ``name``; ValueError lists the known names otherwise. Built-in
    modules are imported until one registers ``name`` (all of them for an unknown name)."""
    for module in _LOOKUP_ORDER:
        if name in _REGISTRY:
            break
        load_codec_modules([module], builtin=False)
    if name not in _REGISTRY:
        raise ValueError(f"unknown codec {name!r}; known codecs: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_codec(name: str, settings: CodecSettings | None = None) -> Codec:
    """Build a codec by registry name (timm-style factory)."""
    return codec_class(name)(settings or CodecSettings())


def validate_payload(
    codec: Codec,
    codec_name: str,
    model_id: str,
    rate_level: int,
    shape: Sequence[int],
    data_len: int,
    max_payload_bytes: int,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> None:
    """Raise :class:`PayloadError` unless the payload may be handed to ``codec.decode``."""
    if codec_name != codec.name:
        raise PayloadError(
            "unknown_codec", f"codec {codec_name!r} not served (serving {codec.name!r})"
        )
    if model_id != codec.model_id:
        raise PayloadError(
            "model_mismatch",
            f"payload made by encoder {model_id!r}, this server runs {codec.model_id!r}",
        )
    if rate_level != codec.quality:
        raise PayloadError(
            "bad_rate", f"rate level {rate_level} not served (serving {codec.quality})"
        )
    if data_len == 0:
        raise PayloadError("empty", "payload has no bytes")
    cap = min(max_payload_bytes, codec.max_payload_bytes())
    if data_len > cap:
        raise PayloadError("too_large", f"payload of {data_len} B above the cap of {cap} B")
    check_shape_bounds(shape, max_elements)
    codec.check_shape(tuple(int(d) for d in shape))


__all__ = [
    "BUILTIN_CODEC_MODULES",
    "Codec",
    "CodecSettings",
    "Decoded",
    "EncodedFrame",
    "PayloadError",
    "Timer",
    "codec_class",
    "create_codec",
    "list_codecs",
    "load_codec_modules",
    "register_codec",
    "validate_payload",
]
