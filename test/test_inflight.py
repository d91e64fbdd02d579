"""The edge's in-flight limit: InFlightWindow (ROS-free) and NewestWorker's gate (no rclpy.init
needed)."""

from __future__ import annotations

import time

import pytest

from hecsb_ros.core.ratecontrol import InFlightWindow


def test_window_blocks_at_the_limit_and_a_result_frees_a_place():
    w = InFlightWindow(2, timeout_ms=1000.0)
    assert w.wait_ms(0.0) == 0.0
    w.sent(0, 0.0)
    assert w.wait_ms(1.0) == 0.0
    w.sent(1, 10.0)
    assert w.wait_ms(20.0) == pytest.approx(980.0)  # until the oldest expires
    assert w.answered(0, 30.0)
    assert w.out == 1 and w.wait_ms(30.0) == 0.0


def test_a_result_answers_every_earlier_latent():
    """The server skips older latents for newer ones: their results never come; the newer one's
    frees them."""
    w = InFlightWindow(3, timeout_ms=1000.0)
    for seq in range(3):
        w.sent(seq, float(seq))
    assert w.wait_ms(5.0) > 0
    assert w.answered(2, 40.0)
    assert w.out == 0 and w.released == 2 and w.expired == 0
    assert not w.answered(1, 41.0)  # already released: a late result changes nothing


def test_a_lost_result_expires_and_is_counted():
    w = InFlightWindow(1, timeout_ms=50.0)
    w.sent(7, 100.0)
    assert w.wait_ms(120.0) == pytest.approx(30.0)
    assert w.wait_ms(150.0) == 0.0
    assert w.expired == 1 and w.out == 0


def test_adaptive_timeout_follows_the_round_trips():
    w = InFlightWindow(
        1, min_timeout_ms=100.0, initial_timeout_ms=1000.0, factor=3.0, min_samples=5
    )
    assert w.timeout_ms == 1000.0
    for seq in range(10):
        w.sent(seq, seq * 100.0)
        w.answered(seq, seq * 100.0 + 60.0)  # 60 ms round trips
    assert w.timeout_ms == pytest.approx(180.0)
    for seq in range(10, 60):
        w.sent(seq, seq * 100.0)
        w.answered(seq, seq * 100.0 + 10.0)  # quick: the floor holds
    assert w.timeout_ms == 100.0


def test_no_limit_never_blocks_and_memory_stays_bounded():
    w = InFlightWindow(0)
    for seq in range(1000):
        w.sent(seq, 0.0)
        assert w.wait_ms(0.0) == 0.0
    assert w.out <= 256


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        InFlightWindow(-1)
    with pytest.raises(ValueError):
        InFlightWindow(1, timeout_ms=-5.0)


def test_worker_gate_holds_the_newest_item_and_skips_older_ones():
    from hecsb_ros.nodes.worker import NewestWorker

    done, skipped, errors = [], [], []
    window = InFlightWindow(1, timeout_ms=10_000.0)
    now = lambda: time.monotonic() * 1e3  # noqa: E731

    def process(items):
        for item in items:
            window.sent(item, now())
            done.append(item)

    worker = NewestWorker(
        "test_worker",
        process,
        lambda _k, old: skipped.append(old),
        errors.append,
        gate=lambda: window.wait_ms(now()) / 1e3,
    )
    try:
        worker.put("frame", 0)
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.005)
        assert done == [0]
        for item in (1, 2, 3):  # latent 0 is out: these wait, each replacing the one before
            worker.put("frame", item)
        time.sleep(0.2)
        assert done == [0] and skipped == [1, 2] and worker.waiting == 1
        window.answered(0, now())
        worker.wake()
        deadline = time.monotonic() + 5
        while len(done) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert done == [0, 3] and not errors
    finally:
        worker.stop()


def test_worker_gate_reopens_when_the_latent_out_expires():
    from hecsb_ros.nodes.worker import NewestWorker

    done = []
    window = InFlightWindow(1, timeout_ms=150.0)
    now = lambda: time.monotonic() * 1e3  # noqa: E731
    window.sent(0, now())  # never answered
    worker = NewestWorker(
        "test_worker",
        lambda items: done.extend(items),
        lambda _k, _o: None,
        lambda e: None,
        gate=lambda: window.wait_ms(now()) / 1e3,
    )
    try:
        t0 = time.monotonic()
        worker.put("frame", 1)
        while not done and time.monotonic() - t0 < 5:
            time.sleep(0.005)
        assert done == [1] and window.expired == 1
        assert time.monotonic() - t0 >= 0.12  # held until the timeout, not released at once
    finally:
        worker.stop()


def test_worker_stop_processes_what_waits_behind_a_closed_gate():
    from hecsb_ros.nodes.worker import NewestWorker

    done = []
    worker = NewestWorker(
        "test_worker",
        lambda items: done.extend(items),
        lambda _k, _o: None,
        lambda e: None,
        gate=lambda: 0.5,
    )  # never opens
    worker.put("frame", "last")
    time.sleep(0.05)
    assert done == []
    worker.stop()
    assert done == ["last"]


def test_worker_skips_an_item_gone_stale_behind_the_gate_and_takes_the_next_one():
    """max_frame_wait: a frame that waited too long for a place is skipped; the next one is encoded
    on arrival. The wait behind a busy worker does not count, only the wait for a place since the
    worker was free."""
    from hecsb_ros.nodes.worker import NewestWorker

    done, skipped = [], []
    window = InFlightWindow(1, timeout_ms=10_000.0)
    now = lambda: time.monotonic() * 1e3  # noqa: E731

    def stale(item, idle_since):
        return time.monotonic() - max(item[1], idle_since) > 0.05

    def process(items):
        for name, _ in items:
            time.sleep(0.1 if name == "slow" else 0.0)  # busy longer than the stale limit
            window.sent(len(done), now())
            done.append(name)

    worker = NewestWorker(
        "test_worker",
        process,
        lambda _k, old: skipped.append(old[0]),
        lambda e: None,
        gate=lambda: window.wait_ms(now()) / 1e3,
        stale=stale,
    )
    try:
        worker.put("frame", ("slow", time.monotonic()))
        time.sleep(0.02)
        # waits ~80 ms for the busy worker
        worker.put("frame", ("behind busy worker", time.monotonic()))
        deadline = time.monotonic() + 5
        while len(done) < 1 and time.monotonic() < deadline:
            time.sleep(0.002)
        window.answered(0, now())
        worker.wake()
        while len(done) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        # not stale: waited for the worker
        assert done == ["slow", "behind busy worker"] and skipped == []
        # latent 1 is out: the gate is closed
        worker.put("frame", ("behind the gate", time.monotonic()))
        time.sleep(0.15)
        window.answered(1, now())
        worker.wake()  # the gate opens: the waiting frame waited 150 ms for a place, stale
        time.sleep(0.05)
        assert skipped == ["behind the gate"] and worker.waiting == 0 and len(done) == 2
        worker.put("frame", ("fresh", time.monotonic()))
        while len(done) < 3 and time.monotonic() < deadline:
            time.sleep(0.002)
        assert done[-1] == "fresh"
    finally:
        worker.stop()
