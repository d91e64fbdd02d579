"""Turning logits into a classification (ROS-free)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Classification:
    """Top-1 and top-k of one frame; scores are softmax probabilities."""

    class_id: int
    label: str
    score: float
    topk_ids: tuple[int, ...]
    topk_scores: tuple[float, ...]


def classify(logits: torch.Tensor, classes: tuple[str, ...], k: int = 5) -> Classification:
    """``logits`` of shape ``(K,)`` -> :class:`Classification` with ``min(k, K)`` entries."""
    if logits.ndim != 1 or logits.numel() != len(classes):
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} do not match {len(classes)} classes"
        )
    probs = torch.softmax(logits.float(), dim=0)
    scores, ids = torch.topk(probs, min(max(k, 1), probs.numel()))
    top = int(ids[0])
    return Classification(
        top,
        classes[top],
        float(scores[0]),
        tuple(int(i) for i in ids),
        tuple(float(s) for s in scores),
    )
