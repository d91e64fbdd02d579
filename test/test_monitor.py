"""The monitor scores results against the ground-truth side channel (image_raw/ground_truth) by the
frame's header, whichever of the two arrives first."""

from __future__ import annotations

import pytest
from std_msgs.msg import Header

from hecsb_ros.monitor import Monitor
from hecsb_ros.msg import ClassificationResult, GroundTruth
from hecsb_ros.nodes.conversions import ns_to_time

pytestmark = [pytest.mark.ros]


def _header(stamp_ns: int, frame_id: str = "camera") -> Header:
    return Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id)


def test_results_are_scored_by_header_whichever_comes_first(ros_context):
    monitor = Monitor("monitor_scoring_test")
    try:
        # the class first, then its result (the usual order)
        monitor._on_truth(GroundTruth(header=_header(1_000), class_id=2), "")
        monitor._on_result(ClassificationResult(header=_header(1_000), sequence=0, class_id=2))
        # the result first (the monitor's reader matched late): scored when the class comes
        monitor._on_result(ClassificationResult(header=_header(2_000), sequence=1, class_id=5))
        assert monitor.results[1].correct is None
        monitor._on_truth(GroundTruth(header=_header(2_000), class_id=4), "")
        # a frame of another camera with the same stamp, and a frame whose class never comes
        monitor._on_truth(GroundTruth(header=_header(3_000, "other"), class_id=1), "")
        monitor._on_result(ClassificationResult(header=_header(3_000), sequence=2, class_id=1))
        assert [r.correct for r in monitor.results] == [True, False, None]
    finally:
        monitor.destroy()
