"""Rate control: the rate level that meets a latency budget (or a bit-rate cap) on the link at
hand.

A robot's link is not a constant 12 Mbit/s. The edge sees what comes back in every result: the
payload's bytes, the transfer time (edge send -> server receive) and the server's time.
:class:`LinkEstimator` turns recent results into the link's throughput and delay (a least-squares
fit of ``transfer = delay + bits / throughput`` over a window, which the changing levels make
identifiable, the delay never above the quickest frame's; the newest frames win when they show a
slower link; with too little spread in size, the last delay is kept and the throughput follows);
:class:`BudgetController` then picks, per frame, the most accurate level whose expected capture ->
result time (edge + transfer + server) stays within the budget and whose bit rate the link can
carry, with hysteresis: it steps down at once when the current level no longer fits, and up, one
level at a time, only after ``patience`` frames in which the next level fits with a ``margin`` to
spare. Results come back late exactly when the link fades, so the controller also reads the frames
that have not come back (:meth:`BudgetController.sent` / :meth:`BudgetController.answered`). What a
frame spends after the link (the server's queue and network, the result's way back, the edge's own
callback queue) varies from frame to frame; the controller keeps the recent such times (from the
answered frames: round trip minus transfer) and calls a frame late only when it has been out longer
than the estimate's transfer plus the 80th percentile of them. A late frame shows the link is at
most ``its bits / its time on the link`` fast; how much longer it will take is not known until its
result comes back (a 27x fade and a 3x one look the same for the first tens of ms). Until then the
controller sends the lowest level, the frames that cross the link fastest, and cuts the estimate at
once, assuming the late frame is half way (``late_factor`` = 2); when the late frames are back and
the link turns out fast enough after all (a passing delay), it returns to the level it had at once,
without climbing. The next frame also queues behind the frames still on the link: their remaining
transfer counts against its budget.

ROS-free; the edge node feeds it and publishes its choice and estimate.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LevelProfile:
    """What one rate level costs and gives: message bytes on the wire, accuracy, edge and server
    ms."""

    level: int
    message_bytes: float
    accuracy: float
    edge_ms: float
    server_ms: float


class LinkEstimator:
    """Throughput (Mbit/s) and one-way delay (ms) of the link, from ``(bytes, transfer ms)``
    samples."""

    def __init__(
        self, window: int = 30, initial_mbps: float = 12.0, initial_delay_ms: float = 2.0
    ) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=window)
        self.throughput_mbps = initial_mbps
        self.delay_ms = initial_delay_ms

    def add(self, message_bytes: float, transfer_ms: float) -> None:
        if (
            not (math.isfinite(message_bytes) and math.isfinite(transfer_ms))
            or message_bytes <= 0
            or transfer_ms < 0
        ):
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
                now = float(np.median(bits[recent] / 1e3 / self._sending_ms(ms[recent])))
                # the newest samples decide when they disagree with the window (a fading link)
                self.throughput_mbps = float(min(fitted, now) if now < 0.7 * fitted else fitted)
                return
        self.throughput_mbps = float(np.median(bits[recent] / 1e3 / self._sending_ms(ms[recent])))

    def _sending_ms(self, transfer_ms: np.ndarray) -> np.ndarray:
        """The part of each transfer spent sending bits: after the delay, and at least a tenth of
        it (a delay fitted on other sizes can take up a whole transfer, which would read as an
        endless link)."""
        return np.maximum(np.maximum(transfer_ms - self.delay_ms, 0.1 * transfer_ms), 1e-3)

    def transfer_ms(self, message_bytes: float) -> float:
        """Expected one-way transfer time of a message of ``message_bytes``."""
        return self.delay_ms + message_bytes * 8.0 / (self.throughput_mbps * 1e3)


class BudgetController:
    """Picks the most accurate level that meets ``latency_budget_ms`` and ``max_kbit_s`` (0 = no
    cap).

    ``rate_hz``: frames per second the edge sends (the link must carry ``bytes * 8 * rate_hz``;
    ``utilisation`` of its throughput at most, else the queue grows without bound).
    ``late_factor``: a frame late on the link is assumed to need this many times the time it has
    been on it so far. ``after_link_quantile``: the share of recent after-link times (server, way
    back) a frame may take before it counts as late on the link. ``worst_link_kbit_s``: a level
    must also meet the budget if the link drops to this rate just after the frame is sent (the
    slowest the link gets; 0 = the estimate as it is): a hard deadline through sudden fades, paid
    for with smaller levels while the link is fast.
    """

    def __init__(
        self,
        levels: list[LevelProfile],
        latency_budget_ms: float = 100.0,
        max_kbit_s: float = 0.0,
        margin: float = 0.15,
        patience: int = 5,
        utilisation: float = 0.8,
        estimator: LinkEstimator | None = None,
        late_factor: float = 2.0,
        after_link_quantile: float = 0.8,
        worst_link_kbit_s: float = 0.0,
    ) -> None:
        if not levels:
            raise ValueError("rate control needs at least one level")
        if not worst_link_kbit_s >= 0.0:
            raise ValueError(f"worst_link_kbit_s {worst_link_kbit_s} below 0 (0 = off)")
        if late_factor < 1.0:
            raise ValueError(
                f"late_factor {late_factor} below 1: a late frame needs at least the "
                "time it has had"
            )
        self.levels = sorted(levels, key=lambda lv: lv.accuracy)
        self.budget_ms = latency_budget_ms
        self.max_kbit_s = max_kbit_s
        self.margin = margin
        self.patience = patience
        self.utilisation = utilisation
        self.late_factor = late_factor
        self.after_link_quantile = after_link_quantile
        self.worst_link_kbit_s = worst_link_kbit_s
        self.estimator = estimator or LinkEstimator()
        self.current = self.levels[0]
        self.backlog_ms = 0.0  # link time still owed to the frames in flight, at the last choice
        self._better_for = 0
        # the level before late frames forced the lowest
        self._before_doubt: LevelProfile | None = None
        self._pending: OrderedDict[int, tuple[float, LevelProfile]] = OrderedDict()
        # frames found late: the transfer ms expected when they were sent
        self._late: dict[int, float] = {}
        self._after_link: deque[float] = deque(maxlen=50)
        # their after_link_quantile (from five on), kept up to date
        self._after_link_q: float | None = None

    def expected_ms(self, level: LevelProfile) -> float:
        """Expected capture -> result time of one frame at ``level`` on the estimated link, behind
        the frames still on it."""
        return (
            level.edge_ms
            + self.backlog_ms
            + self.estimator.transfer_ms(level.message_bytes)
            + level.server_ms
        )

    def fits(self, level: LevelProfile, rate_hz: float, slack: float = 0.0) -> bool:
        kbit_s = level.message_bytes * 8.0 * rate_hz / 1e3
        carried = kbit_s <= self.utilisation * self.estimator.throughput_mbps * 1e3
        capped = self.max_kbit_s <= 0 or kbit_s <= self.max_kbit_s
        timely = self.budget_ms <= 0 or self.expected_ms(level) <= self.budget_ms * (1.0 - slack)
        worst = self.worst_link_kbit_s
        if timely and self.budget_ms > 0 and 0 < worst < self.estimator.throughput_mbps * 1e3:
            # the link drops to `worst` now: what is on it and this frame at that rate
            est = self.estimator
            bits = self.backlog_ms * est.throughput_mbps * 1e3 + level.message_bytes * 8.0
            faded = level.edge_ms + est.delay_ms + bits / worst + level.server_ms
            timely = faded <= self.budget_ms * (1.0 - slack)
        return carried and capped and timely

    def observe(self, message_bytes: float, transfer_ms: float) -> None:
        """A result came back: update the link estimate."""
        self.estimator.add(message_bytes, transfer_ms)

    def sent(self, seq: int, level: LevelProfile, now_ms: float) -> None:
        """Frame ``seq`` left the edge at ``now_ms`` (a monotonic clock) at ``level``."""
        self._pending[seq] = (now_ms, level)
        while len(self._pending) > 256:
            self._late.pop(self._pending.popitem(last=False)[0], None)

    def answered(
        self, seq: int, now_ms: float | None = None, transfer_ms: float | None = None
    ) -> None:
        """The result of frame ``seq`` came back (at ``now_ms``, the clock of :meth:`sent`, after
        ``transfer_ms`` on the link: the rest of its round trip is an after-link time)."""
        sent = self._pending.pop(seq, None)
        expected = self._late.pop(seq, None)
        if (
            expected is not None
            and transfer_ms is not None
            and transfer_ms > self.late_factor * expected
        ):
            self._before_doubt = None  # a late frame that was slow on the link: the link did fade
        if (
            sent is not None
            and now_ms is not None
            and transfer_ms is not None
            and math.isfinite(transfer_ms)
        ):
            after = now_ms - sent[0] - max(transfer_ms, 0.0)
            if math.isfinite(after) and after >= 0:
                self._after_link.append(after)
                if len(self._after_link) >= 5:
                    self._after_link_q = float(
                        np.quantile(self._after_link, self.after_link_quantile)
                    )

    @property
    def pending(self) -> int:
        """Frames sent whose results have not come back (nor been given up on)."""
        return len(self._pending)

    @property
    def late(self) -> int:
        """Of those, the frames found late on the link (while any is, the lowest level is sent)."""
        return len(self._late)

    def after_link_ms(self, level: LevelProfile) -> float:
        """What a frame may spend after the link before it counts as late on it: the
        ``after_link_quantile`` of the recent after-link times, never less than the level's server
        time (twice it before five frames have come back)."""
        if self._after_link_q is None:
            return 2.0 * level.server_ms
        return max(level.server_ms, self._after_link_q)

    def _overdue(self, now_ms: float) -> bool:
        """Lower the throughput estimate to what the unanswered frames show, and add up the link
        time they still owe (:attr:`backlog_ms`); True if any frame is late on the link."""
        est, late = self.estimator, False
        horizon = max(4.0 * self.budget_ms, 2000.0)  # older: lost on the way, no longer evidence
        for seq, (t, level) in list(self._pending.items()):
            age = now_ms - t
            if age > horizon:
                del self._pending[seq]
                self._late.pop(seq, None)
                continue
            # at least this long on the link, still not delivered
            on_link = age - self.after_link_ms(level)
            if on_link > est.transfer_ms(level.message_bytes):
                # late: assume it needs late_factor times what it has had, and the link is that
                # slow
                late = True
                self._late.setdefault(seq, est.transfer_ms(level.message_bytes))
                needs = self.late_factor * on_link - est.delay_ms
                est.throughput_mbps = min(
                    est.throughput_mbps, level.message_bytes * 8.0 / max(needs, 1e-3) / 1e3
                )
        # the link is first in, first out: when is it free of what is on it? A frame the estimate
        # says arrived (its result on the way back) owes nothing; a late one, as long again as it
        # has had.
        busy_until = -math.inf
        for seq, (t, level) in self._pending.items():
            busy_until = max(busy_until, t) + level.message_bytes * 8.0 / (
                est.throughput_mbps * 1e3
            )
            if seq in self._late:
                busy_until = max(
                    busy_until,
                    now_ms + (self.late_factor - 1.0) * (now_ms - t - self.after_link_ms(level)),
                )
        self.backlog_ms = max(0.0, busy_until - now_ms)
        return late

    def choose(self, rate_hz: float, now_ms: float | None = None) -> LevelProfile:
        """The level for the next frame (``now_ms``: the clock of :meth:`sent`, to read late
        frames)."""
        self.backlog_ms = 0.0
        if now_ms is not None and self._pending and self._overdue(now_ms):
            # a frame is late: the link is slower than estimated, by how much its result will tell;
            # until then the frames that cross the link fastest (the lowest level)
            if self._before_doubt is None:
                self._before_doubt = self.current
            self.current, self._better_for = self.levels[0], 0
            return self.current
        if self._before_doubt is not None:  # the late frames are back: was it a passing delay?
            before, self._before_doubt = self._before_doubt, None
            if self.fits(before, rate_hz, self.margin):
                self.current, self._better_for = before, 0
                return self.current
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


class InFlightWindow:
    """How many latents the edge has sent whose results have not come back: the edge encodes a new
    frame only while fewer than ``limit`` are out (0 = no limit).

    An overloaded pipeline otherwise fills up: the edge encodes every frame it can, the latents
    wait at the server (up to a camera period each) and the edge's CPU goes to frames the server
    then skips. With a limit the newest camera frame waits at the edge instead (older ones are
    skipped there) and is encoded the moment a result frees a place, so it meets an idle server.

    Results of one edge come back in order (the server answers each robot's latents in order,
    skipping older ones for newer), so a result for ``seq`` also answers every earlier latent still
    out: those were skipped or lost and will not be answered. A latent out longer than the timeout
    no longer counts (:attr:`expired`): a result lost on the way cannot stall the edge. The timeout
    is ``timeout_ms`` when > 0; else ``factor`` x the 95th percentile of the recent round trips, at
    least ``min_timeout_ms`` (``initial_timeout_ms`` until ``min_samples`` have come back).
    Thread-safe: the edge's worker sends, its executor takes the results.
    """

    def __init__(
        self,
        limit: int,
        timeout_ms: float = 0.0,
        min_timeout_ms: float = 100.0,
        initial_timeout_ms: float = 1000.0,
        factor: float = 3.0,
        window: int = 50,
        min_samples: int = 5,
    ) -> None:
        if limit < 0:
            raise ValueError(f"in-flight limit {limit} below 0 (0 = no limit)")
        if not (timeout_ms >= 0 and min_timeout_ms > 0 and initial_timeout_ms > 0 and factor > 0):
            raise ValueError(
                "in-flight timeouts and factor must be positive (timeout_ms 0 = adaptive)"
            )
        self.limit = limit
        self.fixed_timeout_ms = timeout_ms
        self.min_timeout_ms, self.initial_timeout_ms = min_timeout_ms, initial_timeout_ms
        self.factor, self.min_samples = factor, min_samples
        self._out: OrderedDict[int, float] = OrderedDict()  # seq -> sent at (ms, monotonic)
        self._round_trips: deque[float] = deque(maxlen=window)
        self._timeout_ms = timeout_ms if timeout_ms > 0 else initial_timeout_ms
        self.expired = 0  # latents given up on (their results not back within the timeout)
        # latents answered implicitly, by the result of a later one (skipped or lost)
        self.released = 0
        self._lock = threading.Lock()

    @property
    def timeout_ms(self) -> float:
        """The timeout in force now."""
        return self._timeout_ms

    @property
    def out(self) -> int:
        """Latents out now (sent, not answered, not expired)."""
        with self._lock:
            return len(self._out)

    def sent(self, seq: int, now_ms: float) -> None:
        """Latent ``seq`` left the edge at ``now_ms`` (a monotonic clock, ms)."""
        with self._lock:
            self._out[seq] = now_ms
            # bounded whatever happens to the results
            while len(self._out) > max(256, 4 * self.limit):
                self._out.popitem(last=False)
                self.expired += 1

    def answered(self, seq: int, now_ms: float) -> bool:
        """The result of ``seq`` came back at ``now_ms``: it and every earlier latent still out are
        no longer out. True when ``seq`` was out (its round trip then feeds the adaptive timeout).
        """
        with self._lock:
            sent = self._out.pop(seq, None)
            earlier = [s for s in self._out if s < seq]
            for s in earlier:
                del self._out[s]
            self.released += len(earlier)
            if sent is None:
                return False
            self._round_trips.append(max(0.0, now_ms - sent))
            if self.fixed_timeout_ms <= 0 and len(self._round_trips) >= self.min_samples:
                p95 = float(np.percentile(self._round_trips, 95))
                self._timeout_ms = max(self.min_timeout_ms, self.factor * p95)
            return True

    def wait_ms(self, now_ms: float) -> float:
        """0 when a new frame may be encoded now; else how long until the oldest latent out expires
        (a result may free a place sooner). Latents past the timeout are expired first."""
        if self.limit <= 0:
            return 0.0
        with self._lock:
            timeout = self._timeout_ms
            while self._out:
                seq, t = next(iter(self._out.items()))
                if now_ms - t < timeout:
                    break
                del self._out[seq]
                self.expired += 1
            if len(self._out) < self.limit:
                return 0.0
            return max(0.0, next(iter(self._out.values())) + timeout - now_ms)
