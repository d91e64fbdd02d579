"""Rate control against a simulated link: the estimate follows the link, the controller meets the
budget with hysteresis; the link emulator's rate schedule."""

from __future__ import annotations

import pytest

from hecsb_ros.core.link import LinkShaper, RateSchedule, make_profile
from hecsb_ros.core.ratecontrol import BudgetController, LevelProfile, LinkEstimator

LEVELS = [
    LevelProfile(0, 1000, 0.60, 5, 5),
    LevelProfile(1, 4000, 0.75, 5, 5),
    LevelProfile(2, 16000, 0.85, 5, 5),
    LevelProfile(3, 64000, 0.90, 5, 5),
]


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
    assert est.throughput_mbps == pytest.approx(20.0, rel=1e-6) and est.delay_ms == pytest.approx(
        3.0, abs=1e-6
    )
    for _ in range(8):  # the link fades to 2 Mbit/s: the newest samples win
        est.add(8000, 3.0 + 8000 * 8 / 2e3)
    assert est.throughput_mbps < 3.0
    # a delay (fitted on other sizes) as long as the transfers
    est = LinkEstimator(initial_delay_ms=40.0)
    for _ in range(5):
        est.add(8000, 40.0)
    # bounded: a tenth of 40 ms sending
    assert est.throughput_mbps == pytest.approx(64000 / 4.0 / 1e3)


def _simulate(
    schedule: RateSchedule,
    controller: BudgetController | None,
    level: int = 0,
    seconds: float = 60,
    rate_hz: float = 10.0,
) -> tuple[list[float], list[int]]:
    """Frames at ``rate_hz`` through a scheduled link; latency = edge + queue + transfer +
    server."""
    shaper = LinkShaper(
        make_profile("wifi", delay_ms=2.0, max_queue_ms=60000), rate_schedule=schedule
    )
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
    # the largest level misses half of them
    assert misses < 0.2 * sum(t > 100 for t in top) / len(top)
    # 2 Mbit/s, its queue drained
    slow = [c for i, c in enumerate(chosen) if 12 <= (i / 10.0) % 30 < 20]
    fast = [c for i, c in enumerate(chosen) if 3 <= (i / 10.0) % 30 < 10]  # 54 Mbit/s
    # 64 kB frames do not fit 2 Mbit/s at 10 Hz; all fit 54
    assert max(slow) <= 2 and min(fast) == 3
    switches = sum(a != b for a, b in zip(chosen, chosen[1:]))
    # hysteresis: a few switches per link phase (six in a minute), no oscillation
    assert switches <= 30


def test_bit_rate_cap():
    c = BudgetController(LEVELS, latency_budget_ms=0, max_kbit_s=400, patience=3)
    # it steps up one level after 3 frames that fit
    chosen = [c.choose(10.0).level for _ in range(20)]
    # 320 kbit/s fits, 1280 kbit/s does not
    assert chosen[0] == 0 and chosen[-1] == 1 and max(chosen) == 1


def _simulate_late_results(
    schedule: RateSchedule,
    controller: BudgetController,
    read_pending: bool,
    seconds: float = 90,
    rate_hz: float = 10.0,
) -> list[float]:
    """As the edge sees it: a result comes back only once the frame crossed the link and the
    server."""
    import heapq

    shaper = LinkShaper(
        make_profile("wifi", delay_ms=2.0, max_queue_ms=60000), rate_schedule=schedule
    )
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
    # without reading the unanswered frames, the 64 kB frames in flight when the link fades all
    # come back late, and the controller learns of it only then
    assert misses[True] <= 0.5 * misses[False] and misses[True] < 0.05, misses


def test_unanswered_frames_bound_the_estimate_and_lost_ones_are_forgotten():
    c = BudgetController(LEVELS, latency_budget_ms=100.0)
    c.current = LEVELS[3]
    c.estimator.throughput_mbps, c.estimator.delay_ms = 50.0, 2.0
    c.sent(7, LEVELS[3], now_ms=0.0)  # 64 kB: 10 ms at 50 Mbit/s
    # not late yet
    assert c.choose(10.0, now_ms=8.0) is LEVELS[3] and c.estimator.throughput_mbps == 50.0
    # 205 ms out, of which at most 2 x 5 ms at the server (no after-link times known yet): 195 ms
    # on the link and not delivered; assumed half way, the link is 512 kbit / (2 x 195 - 2) ms fast
    assert c.choose(10.0, now_ms=205.0) is LEVELS[0]  # until its result tells: the lowest level
    assert c.estimator.throughput_mbps == pytest.approx(64000 * 8 / 388.0 / 1e3)
    assert c.backlog_ms == pytest.approx(195.0)  # the next frame waits for it: as long again
    assert c.pending == 1 and c.late == 1
    c.choose(10.0, now_ms=5000.0)  # past max(4 x budget, 2 s): lost, no longer evidence
    assert c.pending == 0 and c.late == 0 and c.backlog_ms == 0.0
    c.sent(8, LEVELS[0], now_ms=0.0)
    c.answered(8)
    assert c.pending == 0


def test_a_passing_delay_costs_one_frame_and_a_fade_holds_the_lowest_level():
    for transfer, expect in ((12.0, 3), (400.0, 0)):
        c = BudgetController(LEVELS, latency_budget_ms=100.0)
        c.current = LEVELS[3]
        for i in range(8):  # 50 Mbit/s: 64 kB in ~12 ms, results ~20 ms after sending
            c.sent(i, LEVELS[3], i * 100.0)
            c.observe(64000, 2.0 + 64000 * 8 / 50e3)
            c.answered(i, i * 100.0 + 20.0, 2.0 + 64000 * 8 / 50e3)
        assert c.choose(10.0, 800.0) is LEVELS[3]
        c.sent(8, LEVELS[3], 800.0)
        assert c.choose(10.0, 900.0) is LEVELS[0]  # 100 ms out, expected back in 20: late
        c.sent(9, LEVELS[0], 900.0)
        # frame 8 comes back: 12 ms on the link (the server stalled) or 400
        c.observe(64000, transfer)
        c.answered(8, 980.0 if transfer < 100 else 1410.0, transfer)
        c.observe(1000, 2.2 if transfer < 100 else 100.0)
        c.answered(9, 990.0 if transfer < 100 else 1415.0, 2.2 if transfer < 100 else 100.0)
        assert c.choose(10.0, 1000.0 if transfer < 100 else 1420.0).level == expect


def test_after_link_jitter_is_not_read_as_a_slow_link():
    import random

    rnd = random.Random(1)
    c = BudgetController(LEVELS, latency_budget_ms=200.0)
    c.current = LEVELS[3]
    c.estimator.throughput_mbps, c.estimator.delay_ms = 50.0, 2.0
    for i in range(50):  # the server's time jitters between 5 and 80 ms
        c.sent(i, LEVELS[3], i * 100.0)
        c.answered(i, i * 100.0 + 12.0 + rnd.uniform(5.0, 80.0), 12.0)
    c.sent(50, LEVELS[3], 5000.0)
    assert c.after_link_ms(LEVELS[3]) > 60.0
    assert c.choose(10.0, 5000.0 + 12.0 + 60.0) is LEVELS[3]  # within what the server often takes
    assert c.choose(10.0, 5000.0 + 12.0 + 200.0) is LEVELS[0]  # far past it: late on the link


# Camera-scale levels (message bytes, held-out accuracy), edge 35 ms and server 75 ms per frame, a
# 27x fade
CAMERA = [
    LevelProfile(lv, b, a, 35.0, 75.0)
    for lv, b, a in (
        (2, 1310, 0.41),
        (3, 1620, 0.60),
        (4, 2180, 0.69),
        (5, 2830, 0.78),
        (6, 3460, 0.83),
    )
]


def _simulate_camera(
    controller: BudgetController | None,
    fixed: LevelProfile | None,
    seed: int,
    jitter: tuple[float, float] = (0.7, 1.5),
    seconds: float = 300.0,
    rate_hz: float = 5.0,
) -> tuple[float, float]:
    """The fading benchmark's setting as the edge sees it, server times jittering by a factor drawn
    from ``jitter`` (and queueing): (deadline misses, accuracy over all frames with misses wrong)
    at a 400 ms budget; 10 fades in 300 s."""
    import heapq
    import random

    rnd = random.Random(seed)
    shaper = LinkShaper(
        make_profile("wifi", delay_ms=2.0, max_queue_ms=60000),
        rate_schedule=RateSchedule.parse("2.16:10,0.08:10,0.48:10"),
    )
    back: list[tuple[float, int, float, float]] = []
    server_free, misses, correct, n = 0.0, 0, 0.0, int(seconds * rate_hz)
    for seq in range(n):
        now = seq / rate_hz
        while controller and back and back[0][0] <= now:
            at, done, size, transfer = heapq.heappop(back)
            controller.observe(size, transfer)
            controller.answered(done, at * 1e3, transfer)
        lv = controller.choose(rate_hz, now * 1e3) if controller else fixed
        sent = now + lv.edge_ms / 1e3
        deliver, _ = shaper.schedule(int(lv.message_bytes), sent)
        if controller:
            controller.sent(seq, lv, sent * 1e3)
        server_ms = lv.server_ms * rnd.uniform(*jitter)
        server_free = max(deliver, server_free) + server_ms / 1e3
        arrival = server_free + 0.002
        if (arrival - now) * 1e3 > 400.0:
            misses += 1
        else:
            correct += lv.accuracy
        heapq.heappush(back, (arrival, seq, lv.message_bytes, (deliver - sent) * 1e3))
    return misses / n, correct / n


def test_budget_mode_meets_the_fading_goal_at_camera_scale_on_a_simulated_link():
    # The goal of the fading benchmark: <= 1% misses, more accurate than every fixed level that
    # also has <= 1% misses. The frame sent at the largest level just before each fade cannot make
    # it (1 in 150, 0.67%); without the late-frame rules the four sent after it miss too (3.3%).
    misses, accuracy = _simulate_camera(
        BudgetController(CAMERA, latency_budget_ms=400.0), None, 0, (1.0, 1.0)
    )
    assert misses == pytest.approx(10 / 1500) and accuracy > 0.65
    # the server's time jitters 0.7-1.5x: the frame queued behind it may miss too
    for seed in (0, 1, 2):
        misses, accuracy = _simulate_camera(
            BudgetController(CAMERA, latency_budget_ms=400.0), None, seed
        )
        fixed = [_simulate_camera(None, lv, seed) for lv in CAMERA]
        usable = [acc for miss, acc in fixed if miss <= 0.01]
        assert misses <= 20 / 1500 and usable and accuracy > max(usable) + 0.05, (
            misses,
            accuracy,
            fixed,
        )
        assert max(miss for miss, _ in fixed) > 0.2  # the top levels do miss: the fade matters


# Levels of larger latents (300 labelled imagen photos): the r6 frame sent at a fade and the one
# queued behind it miss
LARGER = [
    LevelProfile(lv, b, a, 35.0, 75.0)
    for lv, b, a in (
        (2, 1530, 0.396),
        (3, 1855, 0.557),
        (4, 2455, 0.627),
        (5, 3125, 0.70),
        (6, 3725, 0.718),
    )
]


def test_a_worst_link_keeps_every_frame_within_the_budget_through_a_fade():
    c = BudgetController(LARGER, latency_budget_ms=400.0, worst_link_kbit_s=80.0)
    c.estimator.throughput_mbps, c.estimator.delay_ms = 2.16, 2.0
    # at 80 kbit/s: r4 takes 35 + 2 + 246 + 75 = 358 ms, r5 425 ms
    assert c.fits(LARGER[2], 5.0) and not c.fits(LARGER[3], 5.0)
    # without it r6 fits
    assert BudgetController(LARGER, latency_budget_ms=400.0).fits(LARGER[4], 5.0)
    default, _ = _simulate_camera(
        BudgetController(LARGER, latency_budget_ms=400.0), None, 0, (1.0, 1.0)
    )
    floored, accuracy = _simulate_camera(
        BudgetController(LARGER, latency_budget_ms=400.0, worst_link_kbit_s=80.0),
        None,
        0,
        (1.0, 1.0),
    )
    r2_misses, r2_accuracy = _simulate_camera(None, LARGER[0], 0, (1.0, 1.0))
    assert default == pytest.approx(20 / 1500)  # two per fade
    assert floored == 0.0 and r2_misses == 0.0 and accuracy > r2_accuracy + 0.05
    with pytest.raises(ValueError, match="below 0"):
        BudgetController(LARGER, worst_link_kbit_s=-1.0)
