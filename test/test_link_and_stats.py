"""Link model timing, loss, queueing; statistics percentiles, drops, sequence gaps."""

from __future__ import annotations

import math

import pytest

from hecsb_ros.core.link import PRESETS, LinkProfile, LinkShaper, make_profile
from hecsb_ros.core.stats import (
    FrameRecord,
    GroundTruthBook,
    LinkStatsAccumulator,
    SequenceTracker,
    percentile,
    skipped_count,
)


@pytest.mark.parametrize("name,rate", [("4g", 12.0), ("wifi", 54.0), ("5g", 66.9)])
def test_presets_use_the_paper_table_2_rates(name, rate):
    assert make_profile(name).rate_mbps == rate


@pytest.mark.parametrize("size", [16, 1000, 150_000])
def test_transfer_time_is_bytes_times_8_over_rate_plus_delay(size):
    shaper = LinkShaper(make_profile("4g", delay_ms=20.0))
    deliver, reason = shaper.schedule(size, now=100.0)
    assert reason == ""
    assert deliver - 100.0 == pytest.approx(size * 8 / 12e6 + 0.020, rel=1e-9)


def test_back_to_back_frames_queue_behind_each_other():
    shaper = LinkShaper(make_profile("4g"))
    t1, _ = shaper.schedule(15000, 0.0)  # 10 ms on the wire
    t2, _ = shaper.schedule(15000, 0.0)
    assert t1 == pytest.approx(0.010)
    assert t2 == pytest.approx(0.020)


def test_queue_cap_drops_instead_of_growing():
    shaper = LinkShaper(LinkProfile("slow", rate_mbps=0.1, max_queue_ms=50.0))
    reasons = [shaper.schedule(10_000, 0.0)[1] for _ in range(5)]
    assert reasons[0] == "" and "queue_full" in reasons


def test_loss_rate_is_respected():
    shaper = LinkShaper(make_profile("none", loss=0.25), seed=3)
    lost = sum(shaper.schedule(10, i * 1.0)[0] is None for i in range(4000))
    assert 0.2 < lost / 4000 < 0.3


def test_blackout_drops_then_recovers():
    shaper = LinkShaper(make_profile("wifi"))
    shaper.blackout(10.0, 5.0)
    assert shaper.schedule(100, 12.0) == (None, "link_loss")
    assert shaper.schedule(100, 15.1)[0] is not None


def test_none_profile_has_no_serialization_delay():
    assert LinkShaper(make_profile("none")).schedule(10**6, 1.0)[0] == 1.0


def test_invalid_profiles_are_rejected():
    with pytest.raises(ValueError, match="unknown link profile"):
        make_profile("3g")
    with pytest.raises(ValueError):
        LinkProfile("x", rate_mbps=0.0)
    with pytest.raises(ValueError):
        make_profile("4g", loss=2.0)
    assert set(PRESETS) == {"none", "4g", "wifi", "5g"}


def test_snapshot_figures():
    acc = LinkStatsAccumulator()
    acc.snapshot(0.0)
    for i in range(100):
        acc.add(
            FrameRecord(
                payload_bytes=i + 1,
                message_bytes=200,
                latency_ms=float(i),
                edge_ms=1.0,
                transfer_ms=2.0,
                server_ms=3.0,
                correct=(i % 4 != 0),
            )
        )
    acc.drop("truncated", 2)
    acc.drop("model_mismatch")
    snap = acc.snapshot(2.0)
    assert snap["frames"] == 100 and snap["window_s"] == 2.0
    assert snap["payload_bytes_mean"] == pytest.approx(50.5)
    assert snap["kbit_per_s"] == pytest.approx(5050 * 8 / 1e3 / 2.0)
    assert snap["frames_per_s"] == pytest.approx(50.0)
    assert snap["latency_p50_ms"] == pytest.approx(49.5)
    assert snap["latency_p99_ms"] == pytest.approx(98.01)
    assert snap["accuracy"] == pytest.approx(0.75)
    assert snap["drops"] == 3 and snap["decode_errors"] == 2
    # skipped frames ride along under "skipped" and are not drops
    assert dict(zip(snap["drop_reasons"], snap["drop_counts"])) == {
        "truncated": 2,
        "model_mismatch": 1,
        "skipped": 0,
    }
    acc.skip(4)
    later = acc.snapshot(2.5)
    assert later["drops"] == 3 and skipped_count(later["drop_reasons"], later["drop_counts"]) == 4
    empty = acc.snapshot(3.0)  # next window: no frames, totals kept
    assert (
        empty["frames"] == 0
        and empty["frames_total"] == 100
        and math.isnan(empty["latency_p50_ms"])
    )


def test_window_memory_is_bounded():
    acc = LinkStatsAccumulator(max_window=10)
    for _ in range(1000):
        acc.add(FrameRecord(payload_bytes=1))
    assert acc.snapshot(1.0)["frames"] == 10 and acc.frames_total == 1000


def test_percentile_ignores_nan():
    assert percentile([1.0, math.nan, 3.0], 50) == 2.0
    assert math.isnan(percentile([], 50))


def test_sequence_gaps_and_restarts():
    t = SequenceTracker()
    assert [t.update(s) for s in (0, 1, 2, 5, 6, 0, 1, 3)] == [0, 0, 0, 2, 0, 0, 0, 1]


def test_a_forged_sequence_jump_is_one_reset_not_a_million_drops():
    """A number further ahead than the sender could have produced since its previous frame (at most
    BURST + MAX_RATE_HZ * elapsed) is a reset; real losses, however long the outage, still count.
    """
    t = SequenceTracker(max_rate_hz=100.0, burst=4)
    assert t.update(0, 0.0) == 0 and t.update(1, 0.1) == 0
    assert t.update(10**6, 0.2) == 0 and t.resets == 1  # forged: 10 s of frames in 0.1 s
    assert t.update(2, 0.3) == 0  # the real sender again: below the forged number, a restart
    assert t.update(8, 0.4) == 5  # 5 lost frames in 0.1 s: within burst + 100 Hz * 0.1 s
    assert t.update(508, 5.4) == 499 and t.resets == 1  # a 5 s outage at 100 Hz: real losses
    assert t.update(10**6, 5.5) == 0 and t.resets == 2


def test_unknown_drop_reason_is_refused():
    with pytest.raises(ValueError):
        LinkStatsAccumulator().drop("because")


def test_ground_truth_book_scores_a_result_by_its_frame_and_stays_bounded():
    """The ground-truth side channel: a result is matched to its frame's class by capture stamp and
    frame id; each label is taken once; unknown frames are unscored; the oldest labels go first."""
    book = GroundTruthBook(capacity=3)
    book.add(100, "cam", 4)
    book.add(100, "other_cam", 5)
    assert book.correct(100, "cam", 4) is True and book.correct(100, "cam", 4) is None  # taken
    assert book.correct(100, "other_cam", 4) is False
    assert book.correct(200, "cam", 4) is None  # no label for that frame
    for stamp in range(10):
        book.add(stamp, "cam", 1)
    assert len(book) == 3 and book.take(6, "cam") is None and book.take(9, "cam") == 1
