"""Evaluation of a trained learned model through the real bytes: every payload entropy-coded and
decoded by the server half, the accuracy and payload sizes measured (:func:`measure_split`, the one
implementation: training's manifests, ``hecsb select`` and ``hecsb evaluate`` all use it); and the
quick held-out check (rounded latent, no coder) that levels and defaults are chosen by."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hecsb_ros.core.learned.base import FactorizedLatentModel, rate_bits
from hecsb_ros.core.learned.split import Split
from hecsb_ros.core.teachers.classifier import Classifier
from hecsb_ros.core.training.common import accuracy, batches


@dataclass(frozen=True)
class SplitMeasurement:
    """A rate level measured image by image through its real payloads."""

    #: top-1 of the logits the server half decoded from each payload equals the label ``(N,)``
    correct: np.ndarray
    #: ``len(payload)`` per image ``(N,)``, float64
    sizes: np.ndarray
    #: the prior's estimate ``-log2 p(z)`` of each rounded latent in bits ``(N,)``, float64;
    #: None for a model without a factorized prior
    estimated_bits: np.ndarray | None

    @property
    def accuracy(self) -> float:
        return int(self.correct.sum()) / max(len(self.sizes), 1)

    def summary(self) -> dict[str, float]:
        """Accuracy, mean and p95 payload bytes and the prior's mean estimate of them in bytes
        (the manifest's ``test_accuracy``, ``mean_payload_bytes``, ...)."""
        out = {
            "test_accuracy": self.accuracy,
            "mean_payload_bytes": float(self.sizes.mean()),
            "p95_payload_bytes": float(np.percentile(self.sizes, 95)),
        }
        if self.estimated_bits is not None:
            out["estimated_bytes_mean"] = float(torch.from_numpy(self.estimated_bits).mean()) / 8
        return out


#: Pixels per evaluation batch: a batch of 500 Fashion-MNIST images, or 32 camera-sized crops
#: (224 x 224); 500 camera crops through a teacher's first layers take over 10 GB.
PIXELS_PER_BATCH = 32 * 224 * 224


def fit_batch(x: Any, batch_size: int) -> int:
    """``batch_size``, or fewer images per batch when ``x``'s images are large
    (:data:`PIXELS_PER_BATCH`); ``x`` is ``(N, [C,] H, W)`` or a lazy view of it."""
    if len(x) == 0:
        return batch_size
    shape = x.shape if hasattr(x, "shape") else x[0:1].shape
    pixels = int(shape[-1]) * int(shape[-2])
    return max(1, min(batch_size, PIXELS_PER_BATCH // max(1, pixels)))


@torch.inference_mode()
def measure_split(
    split: Split, x: Any, y: torch.Tensor, batch_size: int = 500, check_decoding: bool = False
) -> SplitMeasurement:
    """Every image through the edge half (latent, payload) and the server half (payload -> logits),
    one payload at a time as deployed. ``x`` may be a lazy folder view. ``check_decoding``: raise
    AssertionError unless every decoded latent equals the edge's rounded one."""
    correct, sizes, est_bits = [], [], []
    factorized = isinstance(split.model, FactorizedLatentModel)
    batch_size = fit_batch(x, batch_size)
    for i in range(0, len(x), batch_size):
        latents = split.latent(x[i : i + batch_size])
        if factorized:
            est_bits.append(rate_bits(split.model.quantize(latents, "round")[1]))
        payloads = [split.payload(v) for v in latents]
        if check_decoding and not all(
            torch.equal(split.coder.decode(p), split.coder.quantize(v))
            for p, v in zip(payloads, latents)
        ):
            raise AssertionError("decoded latents differ from the edge's rounded latents")
        logits = torch.stack([split.decode(p) for p in payloads])
        correct.append((logits.argmax(1) == y[i : i + batch_size]).numpy())
        sizes += [len(p) for p in payloads]
    return SplitMeasurement(
        np.concatenate(correct) if correct else np.zeros(0, dtype=bool),
        np.asarray(sizes, dtype=np.float64),
        torch.cat(est_bits).double().numpy() if est_bits else None,
    )


def evaluate_split(
    split: Split, x: Any, y: torch.Tensor, batch_size: int = 500
) -> dict[str, float]:
    """Accuracy from the server half's decoding of every real payload, payload sizes, and (for a
    factorized-prior latent) the prior's estimate of them: :meth:`SplitMeasurement.summary` of
    :func:`measure_split`."""
    return measure_split(split, x, y, batch_size).summary()


def val_accuracy(path: Path, teacher: Classifier, val: Any) -> float:
    """Accuracy of checkpoint ``path`` on held-out training images (rounded latent, no coder)."""
    split = Split.load(path, teacher)
    n = fit_batch(val.x, 500)
    return accuracy(
        torch.cat([split.logits_rounded(val.x[i : i + n]) for i in range(0, len(val), n)]),
        val.y,
    )


@torch.inference_mode()
def rounded_rate_and_logits(
    model: FactorizedLatentModel,
    teacher: Classifier,
    x: torch.Tensor,
    batch_size: int = 500,
    tail: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimated bits per image ``(N,)`` of the rounded latent and the student logits ``(N, K)``,
    without the coder (a trained model before it is saved).

    ``tail``: the tail behind the bottleneck (default: the teacher's).
    """
    tail = tail if tail is not None else teacher.model.tail
    model.eval()
    tail.eval()
    bits, logits = [], []
    for idx in batches(len(x), fit_batch(x, batch_size)):
        z, lik = model.quantize(model.encode(x[idx]), "round")
        bits.append(rate_bits(lik))
        logits.append(tail(model.synthesize(z)))
    return torch.cat(bits), torch.cat(logits)
