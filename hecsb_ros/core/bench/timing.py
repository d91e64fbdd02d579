"""Measurements the benchmarks share: a process's CPU time (:func:`cpu_seconds`) and the
percentiles of samples (:func:`percentile`)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0-100) of all ``values``: NaN when there are none (or any is NaN; unlike
    :func:`hecsb_ros.core.stats.percentile`, which leaves non-finite values out)."""
    return float(np.percentile(values, q)) if len(values) else math.nan
