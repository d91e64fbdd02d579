"""Rate control: the rate level that meets a latency budget (or a bit-rate cap) on the link at hand.

A robot's link is not a constant 12 Mbit/s. The edge sees what comes back in every result: the
payload's bytes, the transfer time (edge send -> server receive) and the server's time.
:class:`LinkEstimator` turns recent results into the link's throughput and delay (a least-squares
fit of ``transfer = delay + bits / throughput`` over a window, which the changing levels make
identifiable, the delay never above the quickest frame's; the newest frames win when they show a
slower link; with too little spread in size, the last delay is kept and the throughput follows);
:class:`BudgetController` then picks, per frame, the most accurate level whose expected
capture -> result time (edge + transfer + server) stays within the budget and whose bit rate the
link can carry, with hysteresis: it steps down at once when the current level no longer fits, and
up, one level at a time, only after ``patience`` frames in which the next level fits with a
``margin`` to spare. Results come back late exactly when the link fades, so the controller also
reads the frames that have not come back (:meth:`BudgetController.sent` /
:meth:`BudgetController.answered`): a frame longer on the link than the estimate allows shows that
the link is at most ``its bits / its time on the link`` fast, and the estimate drops to that at once,
before any late result arrives.

ROS-free; the edge node feeds it and publishes its choice and estimate.
"""
from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LevelProfile:
    """What one rate level costs and gives: message bytes on the wire, accuracy, edge and server ms."""

    level: int
    message_bytes: float
    accuracy: float
    edge_ms: float
    server_ms: float


class LinkEstimator:
    """Throughput (Mbit/s) and one-way delay (ms) of the link, from ``(bytes, transfer ms)`` samples."""

    def __init__(self, window: int = 30, initial_mbps: float = 12.0, initial_delay_ms: float = 2.0) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=window)
        self.throughput_mbps = initial_mbps
        self.delay_ms = initial_delay_ms

    def add(self, message_bytes: float, transfer_ms: float) -> None:
        if not (math.isfinite(message_bytes) and math.isfinite(transfer_ms)) or message_bytes <= 0 or transfer_ms < 0:
            return
        self.samples.append((message_bytes * 8.0, transfer_ms))
        self._fit()

    def _fit(self) -> None:
        bits = np.array([b for b, _ in self.samples])
        ms = np.array([t for _, t in self.samples])
        recent = slice(-min(len(ms), 8), None)  # the link changes: weigh what just happened
        if len(bits) >= 4 and bits.std() > 0.15 * bits.mean():
            slope, delay = np.polyfit(bits, ms, 1)  # ms per bit, ms
            if slope > 0:
                self.delay_ms = float(min(max(0.0, delay), ms.min()))
                fitted = 1e-3 / slope  # Mbit/s
                now = float(np.median(bits[recent] / 1e3 / np.maximum(ms[recent] - self.delay_ms, 1e-3)))
                # the newest samples decide when they disagree with the window (a fading link)
                self.throughput_mbps = float(min(fitted, now) if now < 0.7 * fitted else fitted)
                return
        self.throughput_mbps = float(np.median(bits[recent] / 1e3 / np.maximum(ms[recent] - self.delay_ms, 1e-3)))

    def transfer_ms(self, message_bytes: float) -> float:
        """Expected one-way transfer time of a message of ``message_bytes``."""
        return self.delay_ms + message_bytes * 8.0 / (self.throughput_mbps * 1e3)


class BudgetController:
    """Picks the most accurate level that meets ``latency_budget_ms`` and ``max_kbit_s`` (0 = no cap).

    ``rate_hz``: frames per second the edge sends (the link must carry ``bytes * 8 * rate_hz``;
    ``utilisation`` of its throughput at most, else the queue grows without bound).
    """

    def __init__(self, levels: list[LevelProfile], latency_budget_ms: float = 100.0, max_kbit_s: float = 0.0,
                 margin: float = 0.15, patience: int = 5, utilisation: float = 0.8,
                 estimator: LinkEstimator | None = None) -> None:
        if not levels:
            raise ValueError("rate control needs at least one level")
        self.levels = sorted(levels, key=lambda lv: lv.accuracy)
        self.budget_ms = latency_budget_ms
        self.max_kbit_s = max_kbit_s
        self.margin = margin
        self.patience = patience
        self.utilisation = utilisation
        self.estimator = estimator or LinkEstimator()
        self.current = self.levels[0]
        self._better_for = 0
        self._pending: OrderedDict[int, tuple[float, LevelProfile]] = OrderedDict()

    def expected_ms(self, level: LevelProfile) -> float:
        """Expected capture -> result time of one frame at ``level`` on the estimated link."""
        return level.edge_ms + self.estimator.transfer_ms(level.message_bytes) + level.server_ms

    def fits(self, level: LevelProfile, rate_hz: float, slack: float = 0.0) -> bool:
        kbit_s = level.message_bytes * 8.0 * rate_hz / 1e3
        carried = kbit_s <= self.utilisation * self.estimator.throughput_mbps * 1e3
        capped = self.max_kbit_s <= 0 or kbit_s <= self.max_kbit_s
        timely = self.budget_ms <= 0 or self.expected_ms(level) <= self.budget_ms * (1.0 - slack)
        return carried and capped and timely

    def observe(self, message_bytes: float, transfer_ms: float) -> None:
        """A result came back: update the link estimate."""
        self.estimator.add(message_bytes, transfer_ms)

    def sent(self, seq: int, level: LevelProfile, now_ms: float) -> None:
        """Frame ``seq`` left the edge at ``now_ms`` (a monotonic clock) at ``level``."""
        self._pending[seq] = (now_ms, level)
        while len(self._pending) > 256:
            self._pending.popitem(last=False)

    def answered(self, seq: int) -> None:
        """The result of frame ``seq`` came back."""
        self._pending.pop(seq, None)

    @property
    def pending(self) -> int:
        """Frames sent whose results have not come back (nor been given up on)."""
        return len(self._pending)

    def _overdue(self, now_ms: float) -> None:
        """Lower the throughput estimate to what the unanswered frames show the link can at most be."""
        est = self.estimator
        horizon = max(4.0 * self.budget_ms, 2000.0)  # older: lost on the way, no longer evidence
        for seq, (t, level) in list(self._pending.items()):
            age = now_ms - t
            if age > horizon:
                del self._pending[seq]
                continue
            on_link = age - level.server_ms  # at least this long on the link, still not delivered
            if on_link > est.transfer_ms(level.message_bytes):
                bound = level.message_bytes * 8.0 / max(on_link - est.delay_ms, 1e-3) / 1e3  # Mbit/s
                est.throughput_mbps = min(est.throughput_mbps, bound)

    def choose(self, rate_hz: float, now_ms: float | None = None) -> LevelProfile:
        """The level for the next frame (``now_ms``: the clock of :meth:`sent`, to read late frames)."""
        if now_ms is not None and self._pending:
            self._overdue(now_ms)
        best = next((lv for lv in reversed(self.levels) if self.fits(lv, rate_hz)), self.levels[0])
        if best.accuracy < self.current.accuracy or not self.fits(self.current, rate_hz):
            self.current, self._better_for = best, 0  # down at once
        elif best.accuracy > self.current.accuracy:
            up = next(lv for lv in self.levels if lv.accuracy > self.current.accuracy)
            self._better_for = self._better_for + 1 if self.fits(up, rate_hz, self.margin) else 0
            if self._better_for >= self.patience:
                self.current, self._better_for = up, 0  # up one level at a time
        else:
            self._better_for = 0
        return self.current
