"""Comparing rate-accuracy curves: Pareto fronts, bytes at matched accuracy, BD-rate, operating
points.

A curve is a list of ``(bytes, accuracy)`` points. Its Pareto front keeps the points that no
cheaper point matches in accuracy, so that accuracy increases with bytes along it. Bytes at a given
accuracy are interpolated linearly in ``log(bytes)`` between neighbouring front points (no
extrapolation).

Two summaries of one curve against another over the accuracy range both fronts cover, each
reported as ``exp(mean log ratio) - 1`` (-0.5 = A needs half the bytes of B on average):

- :func:`bd_rate`, the Bjontegaard delta rate as the video-coding literature computes it, with
  accuracy as the quality axis: a cubic polynomial of ``log(bytes)`` in accuracy is fitted to each
  front (a lower degree with fewer than four front points), and the difference of their integrals
  over the common range is averaged;
- :func:`mean_log_ratio`, the same average of the piecewise log-linear interpolations (no fit).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Curve = Sequence[tuple[float, float]]


def pareto(curve: Curve) -> list[tuple[float, float]]:
    """Points ``(bytes, accuracy)`` with strictly higher accuracy than every cheaper point, by
    bytes."""
    front: list[tuple[float, float]] = []
    for b, a in sorted(curve, key=lambda p: (p[0], -p[1])):
        if not front or a > front[-1][1]:
            front.append((float(b), float(a)))
    return front


def bytes_at(curve: Curve, accuracy: float) -> float | None:
    """Bytes the curve needs for ``accuracy`` (log-linear between front points); None outside its
    range."""
    front = pareto(curve)
    if not front or accuracy > front[-1][1]:
        return None
    if accuracy <= front[0][1]:
        return front[0][0] if math.isclose(accuracy, front[0][1], abs_tol=1e-12) else None
    for (b0, a0), (b1, a1) in zip(front, front[1:]):
        if a0 <= accuracy <= a1:
            t = (accuracy - a0) / (a1 - a0)
            return float(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))))
    return None  # pragma: no cover - the loop covers the range


def accuracy_at(curve: Curve, budget: float) -> float:
    """Best accuracy of a point using at most ``budget`` bytes (-inf when none does)."""
    return max((a for b, a in curve if b <= budget), default=-math.inf)


def overlap(a: Curve, b: Curve) -> tuple[float, float] | None:
    """Accuracy interval both fronts cover, or None."""
    fa, fb = pareto(a), pareto(b)
    if not fa or not fb:
        return None
    lo, hi = max(fa[0][1], fb[0][1]), min(fa[-1][1], fb[-1][1])
    return (lo, hi) if hi > lo else None


def mean_log_ratio(a: Curve, b: Curve, samples: int = 201) -> float | None:
    """Mean of ``log(bytes_a / bytes_b)`` over the common accuracy range, of the piecewise
    log-linear interpolations, as ``exp(mean) - 1`` (None without a common range)."""
    rng = overlap(a, b)
    if rng is None:
        return None
    accs = np.linspace(rng[0], rng[1], samples)
    # type: ignore[arg-type]
    diffs = [math.log(bytes_at(a, x)) - math.log(bytes_at(b, x)) for x in accs]
    return float(math.exp(float(np.mean(diffs))) - 1.0)


def _log_rate_fit(curve: Curve) -> np.poly1d:
    """Polynomial of ``log(bytes)`` in accuracy through the Pareto front: cubic, or of degree
    ``points - 1`` with fewer than four points."""
    front = pareto(curve)
    acc = np.array([a for _, a in front])
    logb = np.log([b for b, _ in front])
    return np.poly1d(np.polyfit(acc, logb, min(3, len(front) - 1)))


def bd_rate(a: Curve, b: Curve) -> float | None:
    """Bjontegaard delta rate of ``a`` against ``b`` over their common accuracy range (cubic fits
    of log bytes in accuracy, integrated; None without a common range or with one-point fronts)."""
    rng = overlap(a, b)
    if rng is None or min(len(pareto(a)), len(pareto(b))) < 2:
        return None
    lo, hi = rng
    ia, ib = _log_rate_fit(a).integ(), _log_rate_fit(b).integ()
    mean = ((ia(hi) - ia(lo)) - (ib(hi) - ib(lo))) / (hi - lo)
    return float(math.exp(mean) - 1.0)


def matched_ratio(a: Curve, b: Curve, accuracy: float) -> float | None:
    """``bytes_a / bytes_b`` at ``accuracy`` (None when either curve does not reach it)."""
    ba, bb = bytes_at(a, accuracy), bytes_at(b, accuracy)
    return None if ba is None or bb is None else ba / bb


def operating_point(
    curve: Sequence[tuple[float, float, object]], teacher_accuracy: float, tolerance: float = 0.01
) -> object:
    """Tag of the smallest-payload point within ``tolerance`` of the teacher, else of the most
    accurate.

    ``curve`` holds ``(bytes, accuracy, tag)``; ties in accuracy go to fewer bytes.
    """
    ok = [p for p in curve if p[1] >= teacher_accuracy - tolerance - 1e-12]
    if ok:
        return min(ok, key=lambda p: (p[0], -p[1]))[2]
    return max(curve, key=lambda p: (p[1], -p[0]))[2]


def best_everywhere(
    curves: dict[str, Curve],
    champion: str,
    teacher_accuracy: float,
    within: float = 0.03,
    max_budget: float | None = None,
) -> tuple[bool, list[dict]]:
    """Whether ``champion`` has the best accuracy at every payload size where any codec is within
    ``within`` of the teacher.

    Payload sizes checked: every point's mean bytes at or above the smallest payload of any point
    within ``within`` of the teacher (and at most ``max_budget``). At a budget a codec's accuracy
    is that of its best point using at most that many bytes. Returns (holds, violations).
    """
    near = [b for c in curves.values() for b, a in c if a >= teacher_accuracy - within - 1e-12]
    if not near:
        return True, []
    start = min(near)
    budgets = sorted(
        {
            b
            for c in curves.values()
            for b, _ in c
            if b >= start and (max_budget is None or b <= max_budget)
        }
    )
    violations = []
    for budget in budgets:
        mine = accuracy_at(curves[champion], budget)
        for name, c in curves.items():
            if name == champion:
                continue
            other = accuracy_at(c, budget)
            if other > mine:
                violations.append(
                    {"bytes": budget, "codec": name, "accuracy": other, "champion_accuracy": mine}
                )
    return not violations, violations
