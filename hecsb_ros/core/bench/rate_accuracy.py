"""Rate-accuracy evaluation through the codec contract (the seed paper's Fig. 8 protocol).

Every test image goes through the edge half (``codec.encode``), the server's payload validation
and the server half (``codec.decode``), one frame at a time as in deployment; accuracy is computed
from the decoded logits and sizes are ``len(payload)``. Timing is a separate phase: edge and server
halves of all rate points called in turn on the same images (batch 1, the caller fixes the torch
threads), so that load from other processes affects all codecs alike; the medians are reported.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from hecsb_ros.core.bench.intervals import PerImage
from hecsb_ros.core.bench.macs import edge_macs
from hecsb_ros.core.bench.points import RatePoint
from hecsb_ros.core.bench.timing import TimedCall, interleaved_ms
from hecsb_ros.core.codecs.base import Codec, CodecSettings, create_codec, validate_payload


@dataclass
class PointResult:
    """Measured figures of one rate point (bytes over all evaluated images; times in ms).

    ``accuracy`` and ``top5`` are over the labelled frames; ``agreement`` is the share of all
    frames on which the top-1 class equals the uncompressed teacher's on the same frame (NaN
    without one).
    """

    point: RatePoint
    images: int
    accuracy: float
    bytes_mean: float
    bytes_p50: float
    bytes_p95: float
    bytes_max: float
    model_id: str
    edge_macs: int = 0
    edge_ms: float = float("nan")
    server_ms: float = float("nan")
    parts_ms: dict[str, float] = field(default_factory=dict)
    top5: float = float("nan")
    agreement: float = float("nan")
    # correct top-1 (NaN: no label) and bytes per image, for intervals
    per_image: PerImage | None = None

    def row(self, teacher_accuracy: float) -> dict:
        """CSV row."""
        return {
            "codec": self.point.codec,
            "quality": self.point.quality,
            "setting": self.point.setting,
            "images": self.images,
            "bytes_mean": round(self.bytes_mean, 2),
            "bytes_p50": self.bytes_p50,
            "bytes_p95": self.bytes_p95,
            "bytes_max": self.bytes_max,
            "accuracy": round(self.accuracy, 4),
            "top5": round(self.top5, 4),
            "agreement": round(self.agreement, 4),
            "delta_pp": round(100 * (self.accuracy - teacher_accuracy), 2),
            "edge_ms": round(self.edge_ms, 4),
            "server_ms": round(self.server_ms, 4),
            "edge_network_ms": round(self.parts_ms.get("encode", float("nan")), 4),
            "edge_entropy_ms": round(self.parts_ms.get("entropy", float("nan")), 4),
            "edge_macs": self.edge_macs,
            "model_id": self.model_id,
        }


def load_codecs(points: list[RatePoint], threads: int = 1, teacher: str = "") -> dict[str, Codec]:
    """One codec instance per rate point (keyed by :attr:`RatePoint.key`), for ``teacher`` ('' =
    shipped)."""
    return {
        p.key: create_codec(
            p.codec, CodecSettings(quality=p.quality, threads=threads, teacher=teacher)
        )
        for p in points
    }


def evaluate_point(
    codec: Codec,
    point: RatePoint,
    images: Sequence[np.ndarray],
    labels: np.ndarray,
    progress: bool = False,
    encoding: str = "mono8",
    reference: np.ndarray | None = None,
    max_elements: int = 1 << 26,
) -> PointResult:
    """Encode, validate and decode every camera frame (uint8, in ``encoding``) one at a time: top-1
    and top-5 accuracy on the labelled frames (label >= 0), agreement with ``reference`` (the
    uncompressed teacher's top-1 per frame), sizes, and the edge half's multiply-accumulates (on
    the first frame)."""
    macs = edge_macs(codec, images[0], encoding) if len(images) else 0
    sizes = np.empty(len(images), dtype=np.float64)
    correct = np.full(len(images), np.nan)
    top1 = top5 = agree = 0
    for i in tqdm(
        range(len(images)), desc=point.key, file=sys.stderr, leave=False, disable=not progress
    ):
        frame = codec.encode(images[i], encoding)
        validate_payload(
            codec,
            codec.name,
            codec.model_id,
            codec.quality,
            frame.shape,
            len(frame.data),
            codec.max_payload_bytes(),
            max_elements,
        )
        logits = codec.decode(frame.data, frame.shape).logits
        best = logits.topk(min(5, logits.numel())).indices.tolist()
        if labels[i] >= 0:
            correct[i] = float(best[0] == int(labels[i]))
            top1 += int(best[0] == int(labels[i]))
            top5 += int(int(labels[i]) in best)
        if reference is not None:
            agree += int(best[0] == int(reference[i]))
        sizes[i] = len(frame.data)
    labelled = max(int((np.asarray(labels) >= 0).sum()), 1)
    return PointResult(
        point,
        len(images),
        top1 / labelled,
        float(sizes.mean()),
        float(np.percentile(sizes, 50)),
        float(np.percentile(sizes, 95)),
        float(sizes.max()),
        codec.model_id,
        macs,
        top5=top5 / labelled,
        agreement=agree / len(images) if reference is not None and len(images) else float("nan"),
        per_image=PerImage(correct, sizes),
    )


def time_samples(
    codecs: dict[str, Codec],
    images: Sequence[np.ndarray],
    rounds: int,
    warmup: int = 5,
    progress: bool = False,
    encoding: str = "mono8",
) -> dict[str, dict[str, list[float]]]:
    """Wall ms of every codec's edge half and server half per frame, calls interleaved per image
    (codecs in a new random order each frame; :func:`~hecsb_ros.core.bench.timing.interleaved_ms`).

    Returns per key ``{"edge": [ms], "server": [ms], <edge part>: [ms]}`` (parts from
    ``timings_ms``).
    """

    def halves(codec: Codec) -> TimedCall:
        def call(r: int) -> dict[str, float]:
            image = images[r % len(images)]
            t0 = time.perf_counter_ns()
            frame = codec.encode(image, encoding)
            t1 = time.perf_counter_ns()
            codec.decode(frame.data, frame.shape)
            t2 = time.perf_counter_ns()
            return {"edge": (t1 - t0) / 1e6, "server": (t2 - t1) / 1e6, **frame.timings_ms}

        return call

    samples = interleaved_ms(
        {k: halves(c) for k, c in codecs.items()}, rounds, warmup, progress=progress
    )
    return {k: {"edge": [], "server": [], **parts} for k, parts in samples.items()}


def time_points(
    codecs: dict[str, Codec],
    images: Sequence[np.ndarray],
    rounds: int,
    warmup: int = 5,
    progress: bool = False,
    encoding: str = "mono8",
) -> dict[str, dict[str, float]]:
    """Median wall ms of each codec's edge half, server half and edge parts
    (:func:`time_samples`)."""
    samples = time_samples(codecs, images, rounds, warmup, progress, encoding)
    return {
        k: {part: float(np.median(v)) for part, v in parts.items()} for k, parts in samples.items()
    }


@torch.inference_mode()
def teacher_accuracy(images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    """Accuracy of the shipped teacher (whole network, no compression) on ``images`` ``(N, H,
    W)``."""
    from hecsb_ros.core.teachers import images_to_tensor, load_teacher

    teacher = load_teacher(None)
    x = images_to_tensor(images[..., None], teacher.spec)
    pred = torch.cat([teacher.model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == torch.from_numpy(labels)).float().mean())


@torch.inference_mode()
def teacher_outputs(
    teacher, frames: Sequence[np.ndarray], encoding: str, batch: int = 50
) -> np.ndarray:
    """Logits ``(N, K)`` of the uncompressed teacher on camera frames, preprocessed as the edge
    does."""
    from hecsb_ros.core.preprocess import prepare_image
    from hecsb_ros.core.teachers import images_to_tensor

    out = []
    for i in range(0, len(frames), batch):
        x = images_to_tensor(
            np.stack([prepare_image(f, encoding, teacher.spec) for f in frames[i : i + batch]]),
            teacher.spec,
        )
        out.append(teacher.model(x).float().numpy())
    return np.concatenate(out)


class TeacherOnEdge:
    """The reference a split is compared with: the whole teacher run on the edge (preprocessing and
    the full network), timed in the same interleaved loop as the codecs (:func:`time_samples`)."""

    name = "teacher"

    def __init__(self, teacher) -> None:
        self.teacher = teacher

    @torch.inference_mode()
    def encode(self, image: np.ndarray, encoding: str):
        from hecsb_ros.core.codecs.base import EncodedFrame
        from hecsb_ros.core.preprocess import prepare_image
        from hecsb_ros.core.teachers import images_to_tensor

        self.teacher.model(
            images_to_tensor(prepare_image(image, encoding, self.teacher.spec), self.teacher.spec)
        )
        return EncodedFrame(data=b"", shape=())

    def decode(self, data: bytes, shape: tuple[int, ...]) -> None:
        return None
