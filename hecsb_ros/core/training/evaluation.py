"""Evaluation of a trained learned model through the real bytes: every payload entropy-coded and
decoded by the server half, the accuracy and payload sizes measured; and the quick held-out check
(rounded latent, no coder) that levels and defaults are chosen by."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hecsb_ros.core.learned.base import FactorizedLatentModel, rate_bits
from hecsb_ros.core.learned.split import Split
from hecsb_ros.core.teachers.classifier import Classifier
from hecsb_ros.core.training.common import accuracy


@torch.inference_mode()
def evaluate_split(split: Split, x: Any, y: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """Accuracy from the server half's decoding of every real payload, payload sizes, and (for a
    factorized-prior latent) the prior's estimate of them. ``x`` may be a lazy folder view."""
    correct, sizes, est_bits = 0, [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        latents = split.latent(xb)
        if isinstance(split.model, FactorizedLatentModel):
            est_bits.append(rate_bits(split.model.quantize(latents, "round")[1]))
        payloads = [split.payload(v) for v in latents]
        logits = torch.stack([split.decode(p) for p in payloads])
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
        sizes += [len(p) for p in payloads]
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    out = {"test_accuracy": correct / max(len(sizes), 1), "mean_payload_bytes": float(sizes_arr.mean()),
           "p95_payload_bytes": float(np.percentile(sizes_arr, 95))}
    if est_bits:
        out["estimated_bytes_mean"] = float(torch.cat(est_bits).double().mean()) / 8
    return out


def val_accuracy(path: Path, teacher: Classifier, val: Any) -> float:
    """Accuracy of checkpoint ``path`` on held-out training images (rounded latent, no coder)."""
    split = Split.load(path, teacher)
    return accuracy(torch.cat([split.logits_rounded(val.x[i:i + 500]) for i in range(0, len(val), 500)]), val.y)
