"""Paired bootstrap intervals for the benchmark's comparisons.

All codecs are evaluated on the same images, so differences are judged *paired*: every bootstrap
round draws one resample of the image indices (with replacement) and recomputes every codec's
accuracy and mean bytes, and the teacher's accuracy, on that same resample. Reported: the 2.5 and
97.5 percentiles over the rounds (a 95% interval) of

- each rate point's accuracy minus the teacher's (in pp), and
- the byte ratio of two curves at a matched accuracy (e.g. HECS-B / SVB at the teacher - 1 pp, the
  target moving with the teacher's accuracy in each round); rounds in which a curve does not reach
  the target are counted and left out of the interval.

A claim holds only if its whole interval does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hecsb_ros.core.bench import compare

ROUNDS = 1000


def resample_indices(n: int, rounds: int = ROUNDS, seed: int = 0) -> np.ndarray:
    """``(rounds, n)`` image indices drawn with replacement (a fixed seed: the intervals are
    reproducible)."""
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n), dtype=np.int32)


@dataclass
class PerImage:
    """One rate point's per-image outcomes: correct top-1 (1/0, for labelled images) and payload
    bytes."""

    correct: np.ndarray  # (N,) float, NaN where the image has no label
    sizes: np.ndarray  # (N,) float


def _accuracy(correct: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Accuracy per round: ``correct`` ``(..., N)`` with NaN for unlabelled, ``idx`` ``(R, N)`` ->
    ``(..., R)``."""
    picked = correct[..., idx]  # (..., R, N)
    return np.nanmean(picked, axis=-1)


def accuracy_delta_interval(
    point: PerImage, teacher_correct: np.ndarray, idx: np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """95% interval of (point accuracy - teacher accuracy) in percentage points, paired over
    images."""
    delta = 100 * (_accuracy(point.correct, idx) - _accuracy(teacher_correct, idx))
    lo, hi = np.percentile(delta, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def curve_rounds(points: Sequence[PerImage], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean bytes, accuracy) of every point in every round: two ``(P, R)`` arrays."""
    sizes = np.stack([p.sizes for p in points])
    correct = np.stack([p.correct for p in points])
    return sizes[:, idx].mean(axis=-1), _accuracy(correct, idx)


def matched_ratio_interval(
    a: Sequence[PerImage],
    b: Sequence[PerImage],
    teacher_correct: np.ndarray,
    idx: np.ndarray,
    below_teacher_pp: float = 1.0,
    level: float = 0.95,
    at: str = "teacher",
) -> dict[str, float | int | str | None]:
    """Interval of ``bytes_a / bytes_b`` at a matched accuracy, recomputed in each round.

    ``at="teacher"``: at the teacher's accuracy - ``below_teacher_pp``; ``at="common_top"``: at the
    highest accuracy both curves reach in that round (the point estimate's fallback when they do
    not both reach the teacher - 1 pp). Returns ``lo``, ``hi``, ``median`` (None when no round has
    both curves at the target), ``undefined`` (rounds where a curve does not reach it) and ``at``.
    """
    if at not in ("teacher", "common_top"):
        raise ValueError(f"at={at!r}: 'teacher' or 'common_top'")
    (ba, aa), (bb, ab) = curve_rounds(a, idx), curve_rounds(b, idx)
    if at == "teacher":
        target = _accuracy(teacher_correct, idx) - below_teacher_pp / 100
    else:
        target = np.minimum(aa.max(axis=0), ab.max(axis=0))
    ratios = []
    for r in range(idx.shape[0]):
        ratio = compare.matched_ratio(
            list(zip(ba[:, r], aa[:, r])), list(zip(bb[:, r], ab[:, r])), float(target[r])
        )
        if ratio is not None:
            ratios.append(ratio)
    undefined = idx.shape[0] - len(ratios)
    if not ratios:
        return {"lo": None, "hi": None, "median": None, "undefined": undefined, "at": at}
    lo, med, hi = np.percentile(ratios, [50 * (1 - level), 50, 50 * (1 + level)])
    return {
        "lo": float(lo),
        "hi": float(hi),
        "median": float(med),
        "undefined": undefined,
        "at": at,
    }


def claim1_interval(
    a: Sequence[PerImage], b: Sequence[PerImage], teacher_correct: np.ndarray, idx: np.ndarray
) -> dict[str, float | int | str | None]:
    """Claim 1's interval where its point estimate is taken: at the teacher - 1 pp when both curves
    reach it on all the images, else at the top of their common accuracy range."""
    full = np.arange(len(teacher_correct))[None, :]
    (ba, aa), (bb, ab) = curve_rounds(a, full), curve_rounds(b, full)
    target = float(_accuracy(teacher_correct, full)[0]) - 0.01
    reached = compare.matched_ratio(
        list(zip(ba[:, 0], aa[:, 0])), list(zip(bb[:, 0], ab[:, 0])), target
    )
    return matched_ratio_interval(
        a, b, teacher_correct, idx, at="teacher" if reached is not None else "common_top"
    )
