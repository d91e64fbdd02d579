"""Measurements the benchmarks share.

:func:`interleaved_ms` is the one timing loop of rate levels: every call of a set once per round,
in turn, so that load from other processes falls on all of them alike (the rate-accuracy and
backend benchmarks and ``hecsb evaluate`` time with it). :func:`cpu_seconds` reads a process's CPU
time, :func:`percentile` summarises samples.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

#: A timed call: ``call(round)`` runs one measurement and returns None (its wall time is recorded
#: as ``"ms"``) or the times in ms of the parts it timed itself (recorded instead).
TimedCall = Callable[[int], "Mapping[str, float] | None"]


def interleaved_ms(
    calls: Mapping[str, TimedCall],
    rounds: int,
    warmup: int = 5,
    shuffle_seed: int | None = 0,
    progress: bool = False,
    desc: str = "timing",
) -> dict[str, dict[str, list[float]]]:
    """Wall ms of every call, each called once per round after ``warmup`` untimed rounds.

    The calls of a round run in a new random order (``numpy.random.default_rng(shuffle_seed)``),
    or in the given order when ``shuffle_seed`` is None. Returns per key ``{part: [ms, ...]}``
    over the timed rounds (parts in the order a call first reports them).
    """
    keys = list(calls)
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in keys}
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    for r in tqdm(
        range(warmup + rounds), desc=desc, file=sys.stderr, leave=False, disable=not progress
    ):
        for k in rng.permutation(keys) if rng is not None else keys:
            t0 = time.perf_counter_ns()
            parts = calls[k](r)
            ms = (time.perf_counter_ns() - t0) / 1e6
            if r < warmup:
                continue
            for part, v in parts.items() if parts is not None else (("ms", ms),):
                samples[k].setdefault(part, []).append(v)
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0-100) of all ``values``: NaN when there are none (or any is NaN; unlike
    :func:`hecsb_ros.core.stats.percentile`, which leaves non-finite values out)."""
    return float(np.percentile(values, q)) if len(values) else math.nan
