"""Network link model for the link emulator: serialization at a rate, delay, jitter, loss.

A frame of ``size`` bytes that arrives at ``now`` leaves the sender's queue when the link is free,
occupies it for ``size * 8 / rate`` seconds, and is delivered ``delay (+ jitter)`` later:

    start = max(now, busy_until);  done = start + size*8/rate;  deliver = done + delay + jitter

Delivery order is kept (FIFO), as on one TCP-like or DDS reliable stream.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

#: Data rates of the seed paper's Table 2 (Mbit/s). Propagation delay 0 ms so that transfer times
#: are comparable with the table; set ``delay_ms`` for a real network's latency.
PRESETS: dict[str, tuple[float, float]] = {
    "none": (math.inf, 0.0),
    "4g": (12.0, 0.0),
    "wifi": (54.0, 0.0),
    "5g": (66.9, 0.0),
}


@dataclass(frozen=True)
class LinkProfile:
    """Link parameters. ``rate_mbps`` = inf means no serialization delay."""

    name: str
    rate_mbps: float
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    max_queue_ms: float = 500.0

    def __post_init__(self) -> None:
        if not self.rate_mbps > 0:
            raise ValueError(f"rate_mbps must be > 0, got {self.rate_mbps}")
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.max_queue_ms < 0:
            raise ValueError("delay_ms, jitter_ms and max_queue_ms must be >= 0")
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss must be in [0, 1], got {self.loss}")

    def transfer_ms(self, size_bytes: int) -> float:
        """Expected one-way transfer time of ``size_bytes`` on an idle link (no jitter)."""
        return size_bytes * 8.0 / (self.rate_mbps * 1e3) + self.delay_ms


def make_profile(
    name: str,
    rate_mbps: float = -1.0,
    delay_ms: float = -1.0,
    jitter_ms: float = 0.0,
    loss: float = 0.0,
    max_queue_ms: float = 500.0,
) -> LinkProfile:
    """Preset ``name`` with optional overrides (negative rate/delay keep the preset's value)."""
    if name not in PRESETS:
        raise ValueError(f"unknown link profile {name!r}; known: {', '.join(PRESETS)}")
    rate, delay = PRESETS[name]
    profile = LinkProfile(name, rate, delay, jitter_ms, loss, max_queue_ms)
    if rate_mbps > 0:
        profile = replace(profile, rate_mbps=rate_mbps)
    if delay_ms >= 0:
        profile = replace(profile, delay_ms=delay_ms)
    return profile


@dataclass(frozen=True)
class RateSchedule:
    """A link rate that changes over time: ``(rate_mbps, seconds)`` segments, repeated from the
    start.

    Written as ``"54:10,2:10,12:10"`` (Mbit/s for seconds, in turn): a Wi-Fi link that drops to
    2 Mbit/s behind a wall for 10 s and recovers.
    """

    segments: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.segments or any(r <= 0 or d <= 0 for r, d in self.segments):
            raise ValueError(
                "a rate schedule needs segments of positive rate and duration, not "
                f"{self.segments}"
            )

    @classmethod
    def parse(cls, text: str) -> "RateSchedule":
        """``"RATE:SECONDS,RATE:SECONDS,..."`` -> schedule; ValueError names the expected form."""
        try:
            segments = tuple(
                (float(r), float(d)) for r, d in (part.split(":") for part in text.split(","))
            )
        except ValueError:
            raise ValueError(
                f"rate schedule {text!r} is not 'Mbit/s:seconds,...' (e.g. '54:10,2:10,12:10')"
            ) from None
        return cls(segments)

    @property
    def period_s(self) -> float:
        return sum(d for _, d in self.segments)

    def rate_at(self, t: float) -> float:
        """Rate in Mbit/s ``t`` seconds after the schedule started."""
        t = t % self.period_s
        for rate, duration in self.segments:
            if t < duration:
                return rate
            t -= duration
        return self.segments[-1][0]  # pragma: no cover - float rounding at the period's end


class LinkShaper:
    """Schedules frames on a link; times in seconds on any monotonic clock. With a ``RateSchedule``
    the rate is the schedule's at the moment a frame starts on the link (``start`` is its time 0).
    """

    def __init__(
        self,
        profile: LinkProfile,
        seed: int = 0,
        rate_schedule: RateSchedule | None = None,
        start: float = 0.0,
    ) -> None:
        self.profile = profile
        self.rate_schedule = rate_schedule
        self._t0 = start
        self._rng = random.Random(seed)
        self._busy_until = 0.0
        self._last_delivery = 0.0
        self._blackout_until = -math.inf

    def set_schedule(self, schedule: RateSchedule | None, start: float) -> None:
        """Follow ``schedule`` from ``start`` on (None: the profile's constant rate)."""
        self.rate_schedule, self._t0 = schedule, start

    def rate_mbps(self, now: float) -> float:
        """The link's rate at ``now``."""
        return (
            self.rate_schedule.rate_at(now - self._t0)
            if self.rate_schedule
            else self.profile.rate_mbps
        )

    def blackout(self, now: float, duration_s: float) -> None:
        """Drop everything offered in ``[now, now + duration_s)`` (a link outage)."""
        self._blackout_until = now + duration_s

    def blackout_left(self, now: float) -> float:
        """Seconds of the current blackout still to come (0 when the link is up)."""
        return max(0.0, self._blackout_until - now)

    def schedule(self, size_bytes: int, now: float) -> tuple[float | None, str]:
        """Return ``(delivery_time, "")`` or ``(None, reason)`` for a dropped frame."""
        p = self.profile
        if now < self._blackout_until:
            return None, "link_loss"
        if p.loss > 0.0 and self._rng.random() < p.loss:
            return None, "link_loss"
        start = max(now, self._busy_until)
        if (start - now) * 1e3 > p.max_queue_ms:
            return None, "queue_full"
        rate = self.rate_mbps(start)
        done = start + (size_bytes * 8.0 / (rate * 1e6) if math.isfinite(rate) else 0.0)
        self._busy_until = done
        jitter = self._rng.uniform(-p.jitter_ms, p.jitter_ms) if p.jitter_ms > 0 else 0.0
        deliver = done + max(0.0, p.delay_ms + jitter) / 1e3
        deliver = max(deliver, self._last_delivery)
        self._last_delivery = deliver
        return deliver, ""
