"""Message <-> core conversions, without rclpy.init."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

from hecsb_ros.core.codecs import EncodedFrame
from hecsb_ros.core.results import classify
from hecsb_ros.core.stats import FrameRecord, LinkStatsAccumulator, skipped_count
from hecsb_ros.msg import ClassificationResult, CompressedLatent, GroundTruth, LinkStats
from hecsb_ros.nodes.conversions import (
    array_to_image_msg,
    image_msg_to_array,
    latent_msg,
    latent_payload,
    link_stats_msg,
    ns_to_time,
    result_msg,
    time_to_ns,
)

pytestmark = [pytest.mark.ros, pytest.mark.quick]


def _latent() -> CompressedLatent:
    frame = EncodedFrame(
        b"\x01\x02\xff" * 5, (4, 7, 7), {"preprocess": 0.5, "encode": 1.5, "entropy": 0.25}
    )
    header = Header(stamp=ns_to_time(1_700_000_000_123_456_789), frame_id="cam")
    return latent_msg(
        frame, header, 42, "hecsb", "0123456789abcdef", 2, 1_700_000_000_200_000_000, 2.5
    )


def test_time_round_trip():
    for ns in (0, 1, 999_999_999, 1_700_000_000_123_456_789):
        assert time_to_ns(ns_to_time(ns)) == ns


def test_latent_fields_survive_serialization():
    msg = deserialize_message(serialize_message(_latent()), CompressedLatent)
    assert latent_payload(msg) == b"\x01\x02\xff" * 5
    assert list(msg.shape) == [4, 7, 7] and msg.sequence == 42 and msg.rate_level == 2
    assert msg.codec == "hecsb" and msg.model_id == "0123456789abcdef"
    assert (
        time_to_ns(msg.header.stamp) == 1_700_000_000_123_456_789 and msg.header.frame_id == "cam"
    )
    assert time_to_ns(msg.edge_sent) == 1_700_000_000_200_000_000
    assert (
        msg.edge_preprocess_ms,
        msg.edge_encode_ms,
        msg.edge_entropy_ms,
        msg.edge_total_ms,
    ) == (0.5, 1.5, 0.25, 2.5)


def test_operational_messages_carry_no_labels():
    """Ground truth is a benchmark-only side channel (GroundTruth on image_raw/ground_truth):
    neither the latent on the link nor the result sent back carries a label."""
    for msg_type in (CompressedLatent, ClassificationResult):
        assert not any("truth" in name for name in msg_type.get_fields_and_field_types())
    assert set(GroundTruth.get_fields_and_field_types()) == {"header", "class_id"}


def test_result_copies_header():
    latent = _latent()
    cls = classify(torch.tensor([0.1, 3.0, 0.2]), ("a", "b", "c"), k=2)
    msg = result_msg(latent, cls, 15, 3.0, 1.0, 2.0, 3.5)
    assert msg.header == latent.header and msg.sequence == 42
    assert msg.class_id == 1 and msg.label == "b" and list(msg.topk_ids) == [1, 2]
    assert math.isclose(msg.score, cls.score, rel_tol=1e-6) and msg.payload_bytes == 15
    back = deserialize_message(serialize_message(msg), ClassificationResult)
    assert back.transfer_ms == 3.0 and back.server_total_ms == 3.5


def test_link_stats_from_a_snapshot():
    acc = LinkStatsAccumulator()
    acc.snapshot(0.0)
    acc.add(FrameRecord(10, 100, 5.0, 1.0, 2.0, 3.0, True))
    acc.drop("truncated")
    acc.skip(2)
    msg = link_stats_msg(acc.snapshot(1.0), ns_to_time(5), "server")
    back = deserialize_message(serialize_message(msg), LinkStats)
    assert back.frames == 1 and back.payload_bytes_mean == 10.0 and back.accuracy == 1.0
    # skipped frames ride along under their own name and are not drops
    assert list(back.drop_reasons) == ["truncated", "skipped"] and list(back.drop_counts) == [1, 2]
    assert back.drops == 1 and skipped_count(back.drop_reasons, back.drop_counts) == 2
    assert back.header.frame_id == "server"
    empty = link_stats_msg(LinkStatsAccumulator().snapshot(0.0), ns_to_time(5), "server")
    assert math.isnan(empty.accuracy) and empty.frames == 0


def test_image_round_trip_keeps_pixels_and_header():
    img = np.random.default_rng(0).integers(0, 256, (5, 9, 3), np.uint8)
    msg = array_to_image_msg(img, "rgb8", Header(frame_id="cam"))
    assert msg.header.frame_id == "cam" and msg.step == 27
    np.testing.assert_array_equal(image_msg_to_array(msg), img)
