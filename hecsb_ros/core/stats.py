"""Bandwidth, latency and error statistics over windows and since start (ROS-free).

Nodes add one :class:`FrameRecord` per completed frame and call
:meth:`LinkStatsAccumulator.snapshot` periodically; the snapshot's keys are the fields of
``hecsb_ros/msg/LinkStats``.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from hecsb_ros.core.payload import REASONS


# : Name under which LinkStats' drop_reasons / drop_counts carry the frames skipped on purpose (not
# in ``drops``).
SKIPPED = "skipped"


def skipped_count(reasons, counts) -> int:
    """The skipped count from a LinkStats message's ``drop_reasons`` / ``drop_counts`` (0 when
    absent)."""
    return int(dict(zip(reasons, counts)).get(SKIPPED, 0))


@dataclass(frozen=True)
class FrameRecord:
    """One completed frame. Times in milliseconds; ``correct`` None when ground truth is
    unknown."""

    payload_bytes: int
    message_bytes: int = 0
    latency_ms: float = math.nan
    edge_ms: float = math.nan
    transfer_ms: float = math.nan
    server_ms: float = math.nan
    correct: bool | None = None


class GroundTruthBook:
    """True classes of camera frames, by capture stamp (ns) and frame id, for whoever scores the
    results: each result's header is its camera frame's, so the class of the frame a result answers
    is looked up by that header. Filled from the benchmark-only ``image_raw/ground_truth`` topic
    (data-set sources send it just before each frame); the latents and results carry no labels.

    Keeps the newest ``capacity`` entries (frames skipped or lost never take theirs); thread-safe
    (a node's worker thread takes while its executor adds).
    """

    def __init__(self, capacity: int = 1000) -> None:
        self._labels: OrderedDict[tuple[int, str], int] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, frame_id: str, class_id: int) -> None:
        with self._lock:
            self._labels[(stamp_ns, frame_id)] = int(class_id)
            while len(self._labels) > self._capacity:
                self._labels.popitem(last=False)

    def take(self, stamp_ns: int, frame_id: str) -> int | None:
        """The class of that frame, removed from the book; None when it is not known."""
        with self._lock:
            return self._labels.pop((stamp_ns, frame_id), None)

    def correct(self, stamp_ns: int, frame_id: str, class_id: int) -> bool | None:
        """Whether ``class_id`` is that frame's class (None: not known); takes the entry."""
        truth = self.take(stamp_ns, frame_id)
        return None if truth is None or truth < 0 else truth == class_id

    def __len__(self) -> int:
        with self._lock:
            return len(self._labels)


def percentile(values: Iterable[float], q: float) -> float:
    """q-th percentile (0-100) of the finite values; NaN when there are none."""
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else math.nan


class LinkStatsAccumulator:
    """Accumulates frames and drops. Memory is bounded by ``max_window`` records."""

    def __init__(self, max_window: int = 10000) -> None:
        self._window: deque[FrameRecord] = deque(maxlen=max_window)
        self._window_start: float | None = None
        self.frames_total = 0
        self.labelled = 0
        self.correct = 0
        self.drop_counts: Counter[str] = Counter()
        self.skipped = 0  # frames passed over on purpose for a newer one (not drops)
        self.all_latencies: deque[float] = deque(maxlen=100000)
        self._lock = threading.Lock()  # a node's worker thread adds while its executor reports

    def add(self, rec: FrameRecord) -> None:
        with self._lock:
            self._add(rec)

    def _add(self, rec: FrameRecord) -> None:
        self._window.append(rec)
        self.frames_total += 1
        if math.isfinite(rec.latency_ms):
            self.all_latencies.append(rec.latency_ms)
        if rec.correct is not None:
            self.labelled += 1
            self.correct += int(rec.correct)

    def drop(self, reason: str, count: int = 1) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown drop reason {reason!r}")
        with self._lock:
            self.drop_counts[reason] += count

    def skip(self, count: int = 1) -> None:
        """Count frames passed over on purpose because a newer one arrived (newest-frame
        policy)."""
        with self._lock:
            self.skipped += count

    @property
    def drops(self) -> int:
        return sum(self.drop_counts.values())

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else math.nan

    def snapshot(self, now_s: float) -> dict:
        """Figures of the window since the previous snapshot (then starts a new window)."""
        with self._lock:
            recs = list(self._window)
            self._window.clear()
        start = self._window_start if self._window_start is not None else now_s
        window_s = max(now_s - start, 1e-9)
        self._window_start = now_s
        payload = [r.payload_bytes for r in recs]
        reasons = sorted(self.drop_counts)
        counts = [self.drop_counts[r] for r in reasons]
        # Skipped frames ride along in drop_reasons / drop_counts under SKIPPED (LinkStats has no
        # field of its own for them) but are not drops: ``drops`` stays rejected input + frames
        # lost on the way.
        reasons, counts = reasons + [SKIPPED], counts + [self.skipped]
        return {
            "window_s": float(now_s - start),
            "frames": len(recs),
            "frames_total": self.frames_total,
            "payload_bytes_mean": float(np.mean(payload)) if payload else math.nan,
            "payload_bytes_p50": percentile(payload, 50),
            "payload_bytes_p95": percentile(payload, 95),
            "message_bytes_mean": float(np.mean([r.message_bytes for r in recs]))
            if recs
            else math.nan,
            "kbit_per_s": sum(payload) * 8 / 1e3 / window_s,
            "frames_per_s": len(recs) / window_s,
            "latency_p50_ms": percentile((r.latency_ms for r in recs), 50),
            "latency_p95_ms": percentile((r.latency_ms for r in recs), 95),
            "latency_p99_ms": percentile((r.latency_ms for r in recs), 99),
            "edge_p50_ms": percentile((r.edge_ms for r in recs), 50),
            "edge_p95_ms": percentile((r.edge_ms for r in recs), 95),
            "transfer_p50_ms": percentile((r.transfer_ms for r in recs), 50),
            "transfer_p95_ms": percentile((r.transfer_ms for r in recs), 95),
            "server_p50_ms": percentile((r.server_ms for r in recs), 50),
            "server_p95_ms": percentile((r.server_ms for r in recs), 95),
            "drops": self.drops,
            "decode_errors": sum(self.drop_counts[r] for r in ("decode_error", "truncated")),
            "drop_reasons": reasons,
            "drop_counts": counts,
            "labelled_frames": self.labelled,
            "accuracy": self.accuracy,
        }


class SequenceTracker:
    """Counts frames missing between received sequence numbers.

    A number at or below the previous one is a restarted sender: counting starts again from it. A
    jump larger than the sender could have produced since its previous frame -- more than
    ``burst + max_rate_hz * seconds since the previous frame arrived`` frames -- is a reset too (a
    forged or corrupted number), counted in ``resets`` and not as lost frames, so that one message
    cannot add a million drops.
    """

    #: The highest frame rate a sender is credited with (the camera source's highest ``rate_hz``).
    MAX_RATE_HZ = 1000.0
    # : Frames a sender may have produced back to back regardless of the time (bursts after a
    # stall).
    BURST = 16

    def __init__(self, max_rate_hz: float = MAX_RATE_HZ, burst: int = BURST) -> None:
        self._last: int | None = None
        self._last_s = 0.0
        self.max_rate_hz = max_rate_hz
        self.burst = burst
        self.resets = 0

    def update(self, seq: int, now_s: float | None = None) -> int:
        """Return the number of frames lost before ``seq`` (0 for in-order, restarts, repeats and
        implausible jumps). ``now_s``: arrival time in seconds (monotonic); None = no time check.
        """
        last, last_s, self._last = self._last, self._last_s, seq
        if now_s is not None:
            self._last_s = now_s
        if last is None or seq <= last:
            return 0
        gap = seq - last - 1
        if now_s is not None and gap > self.burst + self.max_rate_hz * max(0.0, now_s - last_s):
            self.resets += 1
            return 0
        return gap
