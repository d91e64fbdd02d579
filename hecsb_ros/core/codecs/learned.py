"""The learned codecs, written once: HECS-B, SVB, CR+BQ and the neural input codecs.

Edge half: preprocess -> the model's edge network -> its coder (arithmetic coding with the learned
prior, or CR+BQ's 8-bit quantisation). Server half: the coder's decoding -> the model's server
network -> the tail (the teacher's, or the fine-tuned copy a bottleneck checkpoint carries) or,
behind an input codec, the whole teacher. Everything model-specific is in
:class:`~hecsb_ros.core.learned.split.Split`.

``quality`` is the rate level: one shipped checkpoint ``{kind}_{tag}_r{LEVEL}.safetensors`` each
(``tag`` the teacher's, see :mod:`hecsb_ros.core.store`), level 0 the fewest bytes;
``checkpoint`` may name another file (its rate level is then a label the edge and the server agree
on). The payload carries no shape (the model id fixes it), so :meth:`LearnedCodec.check_shape`
accepts only ``()``. Every learned model kind (:data:`~hecsb_ros.core.learned.base.BUILTIN_MODELS`)
is registered as a codec of the same name; a learned model of one's own is served after
:func:`register_learned_codec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

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
from hecsb_ros.core.learned.base import list_models, model_class
from hecsb_ros.core.learned.split import Split
from hecsb_ros.core.onnx_runtime import OrtSplit
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.preprocess import prepare_image
from hecsb_ros.core.store import level_path, list_levels, read_manifest, read_metadata
from hecsb_ros.core.teachers.registry import teacher_tag
from hecsb_ros.core.teachers.spec import images_to_tensor

#: The rate level a codec runs when none is given, per (codec, teacher tag), where the shipped
#: manifests name none (``selection.default``, chosen on held-out images by
#: ``python -m hecsb_ros.cli.select_levels``); otherwise the highest shipped level.
#: Empty: every shipped level set names its default (a checkpoint folder of the user's may not).
DEFAULT_LEVELS: dict[tuple[str, str], int] = {}
#: Rate levels a checkpoint named by file may be labelled with.
MAX_LABEL_LEVEL = 255


def shipped_levels(kind: str, teacher: str = "") -> list[int]:
    """The shipped rate levels of learned codec ``kind`` for a ``teacher`` setting ('' = shipped
    teacher)."""
    return list_levels(kind, teacher_tag(teacher or None))


def default_level(kind: str, teacher: str = "") -> int:
    """The rate level ``kind`` runs for ``teacher`` when none is given (0 when none is shipped):
    the shipped level whose manifest is marked ``selection.default``, else :data:`DEFAULT_LEVELS`,
    else the highest shipped level."""
    tag = teacher_tag(teacher or None)
    levels = list_levels(kind, tag)
    marked = [
        lv
        for lv in levels
        if read_manifest(level_path(kind, tag, lv)).get("selection", {}).get("default")
    ]
    if marked:
        return marked[0]
    default = DEFAULT_LEVELS.get((kind, tag))
    return default if default in levels else (max(levels) if levels else 0)


class LearnedCodec(Codec):
    """A learned model behind the codec contract; subclasses set ``kind`` (the learned model's)."""

    kind: ClassVar[str] = ""

    @classmethod
    def quality_bounds(cls, settings: CodecSettings) -> tuple[int, int, int]:
        # a file of one's own: its level is a label (its manifest's, by default)
        if settings.checkpoint:
            level = (
                read_metadata(settings.checkpoint)[1].get("rate_level", "0")
                if Path(settings.checkpoint).exists()
                else "0"
            )
            return (int(level) if level.isdigit() else 0), 0, MAX_LABEL_LEVEL
        levels = shipped_levels(cls.kind, settings.teacher)
        return (
            default_level(cls.kind, settings.teacher),
            min(levels, default=0),
            max(levels, default=0),
        )

    def __init__(self, settings: CodecSettings) -> None:
        super().__init__(settings)
        path = (
            Path(settings.checkpoint)
            if settings.checkpoint
            else level_path(self.kind, teacher_tag(settings.teacher or None), self.quality)
        )
        self.path = path
        self.split = Split.load(
            path, teacher=settings.load_teacher(), device=settings.device, kind=self.kind
        )
        self.spec = self.split.teacher.spec
        #: the networks in ONNX Runtime (backend 'onnxruntime'), else None (PyTorch)
        self.ort = (
            OrtSplit(self.split, settings.threads, settings.onnx_cache, settings.device)
            if settings.backend == "onnxruntime"
            else None
        )

    @property
    def model_id(self) -> str:
        return self.split.model_id

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != ():
            raise PayloadError(
                "bad_shape", f"{self.name} payloads carry no shape, got {tuple(shape)}"
            )

    def max_payload_bytes(self) -> int:
        return self.split.max_payload_bytes()

    @torch.inference_mode()
    def encode(self, image: np.ndarray, encoding: str) -> EncodedFrame:
        t = Timer()
        with t("preprocess"):
            x = images_to_tensor(
                prepare_image(image, encoding, self.spec, self.settings.resize or None), self.spec
            ).to(self.device)
        with t("encode"):
            y = (self.ort.latent(x) if self.ort is not None else self.split.latent(x))[0]
        with t("entropy"):
            data = self.split.payload(y)
        return EncodedFrame(data=data, shape=(), timings_ms=t.ms)

    @torch.inference_mode()
    def decode_input(self, data: bytes, shape: tuple[int, ...]) -> torch.Tensor:
        self.check_shape(shape)
        if len(data) > self.max_payload_bytes():
            raise PayloadError(
                "too_large",
                f"{len(data)} B above the {self.max_payload_bytes()} B a payload can take",
            )
        if self.ort is not None:  # the decoded latent: the whole server network runs in infer()
            return self.split.coder.decode(bytes(data))[None]
        return self.split.decode_features(bytes(data))

    @torch.inference_mode()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Network inputs from :meth:`decode_input` -> logits ``(N, K)``: PyTorch runs the tail on
        the decoded features; ONNX Runtime the server network (model's decoder and tail) on the
        decoded latents."""
        if self.ort is not None:
            return self.ort.logits(x)
        return self.split.classify(x)

    @torch.inference_mode()
    def decode(self, data: bytes, shape: tuple[int, ...]) -> Decoded:
        t = Timer()
        with t("decode"):
            h = self.decode_input(data, shape)
        with t("infer"):
            logits = self.infer(h)[0].float().cpu()
        return Decoded(logits=logits, timings_ms=t.ms)


def register_learned_codec(kind: str) -> type[LearnedCodec]:
    """Serve learned model ``kind`` as the codec of the same name (its model's description)."""
    cls = model_class(kind)
    return register_codec(kind)(
        type(
            f"{cls.__name__}Codec",
            (LearnedCodec,),
            {
                "kind": kind,
                "description": cls.description,
                "__doc__": f"The {kind} learned codec ({cls.__name__}).",
            },
        )
    )


for _kind in list_models():  # every built-in learned model is a codec
    register_learned_codec(_kind)
