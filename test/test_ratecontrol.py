"""Rate control against a simulated link: the estimate follows the link, the controller meets the
budget with hysteresis; the link emulator's rate schedule."""
from __future__ import annotations

import pytest

from hecsb_ros.core.link import LinkShaper, RateSchedule, make_profile
from hecsb_ros.core.ratecontrol import BudgetController, LevelProfile, LinkEstimator

LEVELS = [LevelProfile(0, 1000, 0.60, 5, 5), LevelProfile(1, 4000, 0.75, 5, 5),
          LevelProfile(2, 16000, 0.85, 5, 5), LevelProfile(3, 64000, 0.90, 5, 5)]


def test_schedule_parses_and_cycles():
    s = RateSchedule.parse("54:10,2:10,12:10")
    assert s.period_s == 30 and [s.rate_at(t) for t in (0, 9.9, 10, 25, 31)] == [54, 54, 2, 12, 54]
    for bad in ("54", "a:1", "0:10", "5:-1", ""):
        with pytest.raises(ValueError):
            RateSchedule.parse(bad)
    shaper = LinkShaper(make_profile("wifi"), rate_schedule=s, start=100.0)
    deliver, _ = shaper.schedule(250_000, now=115.0)  # 2 Mbit/s from t = 10 s: 1 s for 250 kB
    assert deliver == pytest.approx(116.0)


def test_estimator_fits_throughput_and_delay():
    est = LinkEstimator()
    for size in (1000, 4000, 16000, 2000, 8000, 1000):
        est.add(size, 3.0 + size * 8 / (20.0 * 1e3))  # 20 Mbit/s, 3 ms
    assert est.throughput_mbps == pytest.approx(20.0, rel=1e-6) and est.delay_ms == pytest.approx(3.0, abs=1e-6)
    for _ in range(8):  # the link fades to 2 Mbit/s: the newest samples win
        est.add(8000, 3.0 + 8000 * 8 / 2e3)
    assert est.throughput_mbps < 3.0


def _simulate(schedule: RateSchedule, controller: BudgetController | None, level: int = 0, seconds: float = 60,
              rate_hz: float = 10.0) -> tuple[list[float], list[int]]:
    """Frames at ``rate_hz`` through a scheduled link; latency = edge + queue + transfer + server."""
    shaper = LinkShaper(make_profile("wifi", delay_ms=2.0, max_queue_ms=60000), rate_schedule=schedule)
    latencies, chosen = [], []
    for i in range(int(seconds * rate_hz)):
        now = i / rate_hz
        lv = controller.choose(rate_hz) if controller else LEVELS[level]
        chosen.append(lv.level)
        sent = now + lv.edge_ms / 1e3
        deliver, _ = shaper.schedule(int(lv.message_bytes), sent)
        latencies.append((deliver - now) * 1e3 + lv.server_ms)
        if controller:  # the result comes back with its transfer time
            controller.observe(lv.message_bytes, (deliver - sent) * 1e3)
    return latencies, chosen


def test_budget_mode_follows_a_fading_link():
    schedule = RateSchedule.parse("54:10,2:10,12:10")
    lat, chosen = _simulate(schedule, BudgetController(LEVELS, latency_budget_ms=100.0))
    misses = sum(t > 100 for t in lat) / len(lat)
    top, _ = _simulate(schedule, None, 3)
    assert misses < 0.2 * sum(t > 100 for t in top) / len(top)  # the largest level misses half of them
    slow = [c for i, c in enumerate(chosen) if 12 <= (i / 10.0) % 30 < 20]  # 2 Mbit/s, its queue drained
    fast = [c for i, c in enumerate(chosen) if 3 <= (i / 10.0) % 30 < 10]  # 54 Mbit/s
    assert max(slow) <= 2 and min(fast) == 3  # 64 kB frames do not fit 2 Mbit/s at 10 Hz; all fit 54
    switches = sum(a != b for a, b in zip(chosen, chosen[1:]))
    assert switches <= 30  # hysteresis: a few switches per link phase (six in a minute), no oscillation


def test_bit_rate_cap():
    c = BudgetController(LEVELS, latency_budget_ms=0, max_kbit_s=400, patience=3)
    chosen = [c.choose(10.0).level for _ in range(20)]  # it steps up one level after 3 frames that fit
    assert chosen[0] == 0 and chosen[-1] == 1 and max(chosen) == 1  # 320 kbit/s fits, 1280 kbit/s does not


def _simulate_late_results(schedule: RateSchedule, controller: BudgetController, read_pending: bool,
                           seconds: float = 90, rate_hz: float = 10.0) -> list[float]:
    """As the edge sees it: a result comes back only once the frame crossed the link and the server."""
    import heapq

    shaper = LinkShaper(make_profile("wifi", delay_ms=2.0, max_queue_ms=60000), rate_schedule=schedule)
    back: list[tuple[float, int, float, float]] = []  # (arrival s, seq, bytes, transfer ms)
    latencies = []
    for seq in range(int(seconds * rate_hz)):
        now = seq / rate_hz
        while back and back[0][0] <= now:
            _, done, size, transfer = heapq.heappop(back)
            controller.observe(size, transfer)
            controller.answered(done)
        lv = controller.choose(rate_hz, now * 1e3 if read_pending else None)
        sent = now + lv.edge_ms / 1e3
        deliver, _ = shaper.schedule(int(lv.message_bytes), sent)
        if read_pending:
            controller.sent(seq, lv, sent * 1e3)
        arrival = deliver + lv.server_ms / 1e3
        latencies.append((arrival - now) * 1e3)
        heapq.heappush(back, (arrival, seq, lv.message_bytes, (deliver - sent) * 1e3))
    return latencies


def test_frames_that_do_not_come_back_cut_the_rate_before_their_results_arrive():
    schedule = RateSchedule.parse("54:10,2:10,12:10")
    misses = {}
    for read_pending in (False, True):
        c = BudgetController(LEVELS, latency_budget_ms=100.0)
        lat = _simulate_late_results(schedule, c, read_pending)
        misses[read_pending] = sum(t > 100 for t in lat) / len(lat)
    # without reading the unanswered frames, the 64 kB frames in flight when the link fades all come
    # back late, and the controller learns of it only then
    assert misses[True] <= 0.5 * misses[False] and misses[True] < 0.05, misses


def test_unanswered_frames_bound_the_estimate_and_lost_ones_are_forgotten():
    c = BudgetController(LEVELS, latency_budget_ms=100.0)
    c.estimator.throughput_mbps, c.estimator.delay_ms = 50.0, 2.0
    c.sent(7, LEVELS[3], now_ms=0.0)  # 64 kB: 10 ms at 50 Mbit/s
    c.choose(10.0, now_ms=8.0)
    assert c.estimator.throughput_mbps == 50.0  # not late yet
    c.choose(10.0, now_ms=205.0)  # 200 ms on the link and not delivered: at most 512 kbit / 198 ms
    assert c.estimator.throughput_mbps == pytest.approx(64000 * 8 / 198.0 / 1e3)
    assert c.pending == 1
    c.choose(10.0, now_ms=5000.0)  # past max(4 x budget, 2 s): lost, no longer evidence
    assert c.pending == 0
    c.sent(8, LEVELS[0], now_ms=0.0)
    c.answered(8)
    assert c.pending == 0
