"""Nodes in one process over DDS: each malformed input is dropped, counted, and the node keeps
going."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from hecsb_ros.core.codecs import CodecSettings, create_codec
from hecsb_ros.msg import ClassificationResult, CompressedLatent, GroundTruth
from hecsb_ros.nodes.qos import reliable_qos
from hecsb_ros.nodes.conversions import array_to_image_msg, latent_msg, ns_to_time

from conftest import spin_until

pytestmark = [pytest.mark.ros]


def _overrides(ckpt, **extra):
    values = {"codec": "png", "checkpoint": str(ckpt), "stats_period_s": 0.2, **extra}
    return [Parameter(k, value=v) for k, v in values.items()]


@pytest.fixture()
def server(ros_context, random_classifier):
    from hecsb_ros.nodes.server import ServerNode

    node = ServerNode(parameter_overrides=_overrides(random_classifier, max_payload_bytes=4096))
    peer = ros_context.create_node("test_peer")
    results: list[ClassificationResult] = []
    peer.create_subscription(
        ClassificationResult, "classification", results.append, reliable_qos(100)
    )
    pub = peer.create_publisher(CompressedLatent, "latent", reliable_qos(100))
    assert spin_until(
        ros_context,
        [node, peer],
        lambda: pub.get_subscription_count() > 0 and node.count_publishers("classification") > 0,
    )
    yield node, peer, pub, results
    node.destroy_node()
    peer.destroy_node()


def _good(codec, seq, image):
    frame = codec.encode(image, "mono8")
    header = Header(stamp=ns_to_time(seq * 1_000_000_000), frame_id="camera")
    return latent_msg(frame, header, seq, "png", codec.model_id, codec.quality, 0, 1.0)


def _mutations(good: CompressedLatent):
    def m(**fields):
        msg = latent_msg.__globals__["CompressedLatent"]()
        for name in msg.get_fields_and_field_types():
            setattr(msg, name, getattr(good, name))
        for k, v in fields.items():
            setattr(msg, k, v)
        return msg

    data = bytes(good.data)
    return {
        "unknown_codec": m(codec="svb"),
        "model_mismatch": m(model_id="0123456789abcdef"),
        "truncated_or_decode": m(data=data[: len(data) // 2]),
        "empty": m(data=b""),
        "shape_disagrees": m(shape=[14, 14, 1]),
        "absurd_shape": m(shape=[2**31, 2**31, 2**31, 2**31]),
        "too_large": m(data=b"\x89PNG" + bytes(10000)),
        "nan_timing": m(edge_total_ms=float("nan")),
        "bad_rate": m(rate_level=42),  # PNG serves levels 0-9
    }


def test_server_drops_each_bad_latent_and_keeps_serving(server, random_classifier, ros_context):
    node, peer, pub, results = server
    from hecsb_ros.core.datasets import load_fashion_mnist

    images = load_fashion_mnist("test").images
    codec = create_codec("png", CodecSettings(checkpoint=str(random_classifier)))
    good = _good(codec, 0, images[0])
    bad = _mutations(good)
    expected = {
        "unknown_codec": "unknown_codec",
        "model_mismatch": "model_mismatch",
        "empty": "empty",
        "shape_disagrees": "bad_shape",
        "absurd_shape": "bad_shape",
        "too_large": "too_large",
        "nan_timing": "bad_timing",
        "bad_rate": "bad_rate",
    }
    for case, msg in bad.items():
        before = node.stats.drops
        pub.publish(msg)
        assert spin_until(ros_context, [node, peer], lambda: node.stats.drops > before), case
        if case in expected:
            assert node.stats.drop_counts[expected[case]] >= 1, case
    assert node.stats.drop_counts["truncated"] + node.stats.drop_counts["decode_error"] == 1
    # Bytes that are not a CompressedLatent at all.
    pub.publish(b"\x00\x01\x00\x00garbage")
    assert spin_until(
        ros_context, [node, peer], lambda: node.stats.drop_counts["bad_message"] == 1
    )
    # Still serving: good frames after all that (one at a time: the newest policy would skip a
    # frame that arrives while the one before it is classified). The first two have their true
    # class on the ground-truth side channel (class 3, by the frame's header), the third has none.
    truth = peer.create_publisher(GroundTruth, "image_raw/ground_truth", reliable_qos(10))
    assert spin_until(ros_context, [node, peer], lambda: truth.get_subscription_count() > 0)
    labels = node.robots[0].labels
    for seq in range(1, 4):
        msg = _good(codec, seq, images[seq])
        if seq < 3:
            truth.publish(GroundTruth(header=msg.header, class_id=3))
            assert spin_until(ros_context, [node, peer], lambda: len(labels) == 1), seq
        pub.publish(msg)
        assert spin_until(ros_context, [node, peer], lambda: len(results) == seq), seq
    assert [r.sequence for r in results] == [1, 2, 3]
    assert results[0].payload_bytes > 0 and len(results[0].topk_ids) == 5
    assert node.stats.labelled == 2 and len(labels) == 0  # scored by header, each label taken
    assert node.stats.correct == sum(r.class_id == 3 for r in results[:2])
    assert node.stats.drops == len(bad) + 1


def _image(**fields):
    msg = Image()
    msg.header = Header(frame_id="camera")
    msg.height, msg.width, msg.encoding, msg.step = 28, 28, "mono8", 28
    msg.data = bytes(28 * 28)
    for k, v in fields.items():
        setattr(msg, k, v)
    return msg


def test_edge_drops_bad_images_and_keeps_encoding(ros_context, random_classifier):
    from hecsb_ros.nodes.edge import EdgeNode

    node = EdgeNode(
        parameter_overrides=_overrides(random_classifier, max_image_pixels=4096 * 4096)
    )
    peer = ros_context.create_node("test_camera")
    latents: list[CompressedLatent] = []
    peer.create_subscription(CompressedLatent, "latent", latents.append, reliable_qos(100))
    pub = peer.create_publisher(Image, "image_raw", 10)
    try:
        assert spin_until(ros_context, [node, peer], lambda: pub.get_subscription_count() > 0)
        bad = [
            _image(encoding="32FC1"),  # wrong encoding
            _image(step=20),  # step < width
            # data disagrees with step*height
            _image(data=bytes(100)),
            _image(height=0, width=0, step=0, data=b""),  # zero-size
            _image(height=100000, width=100000, step=100000),  # huge, tiny data
            # 3-channel needs 3x the bytes
            _image(encoding="rgb8"),
        ]
        for i, msg in enumerate(bad):
            pub.publish(msg)
            assert spin_until(
                ros_context, [node, peer], lambda: node.stats.drop_counts["bad_image"] == i + 1
            ), i
        good = array_to_image_msg(
            np.full((480, 640, 3), 90, np.uint8), "bgr8", Header(frame_id="camera")
        )
        pub.publish(good)
        assert spin_until(ros_context, [node, peer], lambda: len(latents) == 1)
        assert latents[0].codec == "png" and list(latents[0].shape) == [28, 28, 1]
        assert latents[0].edge_total_ms > 0
        # results are scored at the edge against the ground-truth side channel, by header
        node._on_truth(GroundTruth(header=latents[0].header, class_id=4))
        node._on_result(ClassificationResult(header=latents[0].header, sequence=0, class_id=4))
        assert node.stats.labelled == node.stats.correct == 1
    finally:
        node.destroy_node()
        peer.destroy_node()


def _jpeg_photo(width: int = 640, height: int = 480) -> bytes:
    import cv2
    from sklearn.datasets import load_sample_images

    bgr = cv2.cvtColor(
        cv2.resize(load_sample_images().images[0], (width, height)), cv2.COLOR_RGB2BGR
    )
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def test_edge_compressed_input_drops_bad_streams_and_keeps_encoding(
    ros_context, random_classifier
):
    """input: compressed subscribes image_raw/compressed; bombs and garbage are refused before
    decoding."""
    import struct
    import zlib

    from sensor_msgs.msg import CompressedImage

    from hecsb_ros.nodes.edge import EdgeNode

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    png_head = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    )
    small_head = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    )
    good = _jpeg_photo()
    node = EdgeNode(parameter_overrides=_overrides(random_classifier, input="compressed"))
    peer = ros_context.create_node("test_camera")
    latents: list[CompressedLatent] = []
    peer.create_subscription(CompressedLatent, "latent", latents.append, reliable_qos(100))
    pub = peer.create_publisher(CompressedImage, "image_raw/compressed", 10)
    raw_pub = peer.create_publisher(Image, "image_raw", 10)
    try:
        assert spin_until(ros_context, [node, peer], lambda: pub.get_subscription_count() > 0)
        # raw frames are not read with input: compressed
        assert raw_pub.get_subscription_count() == 0
        bad = [
            (b"", "empty"),
            # not JPEG/PNG/WebP
            (b"GIF89a" + bytes(64), "bad_image"),
            # declares 1.6 G pixels
            (png_head + chunk(b"IEND", b""), "bad_image"),
            # 2 GiB chunk
            (small_head + struct.pack(">I", 2**31 - 1) + b"IDAT" + bytes(64), "truncated"),
            # truncated JPEG
            (good[: len(good) // 4], "decode_error"),
        ]
        for data, reason in bad:
            before = node.stats.drop_counts[reason]
            pub.publish(
                CompressedImage(header=Header(frame_id="camera"), format="jpeg", data=data)
            )
            assert spin_until(
                ros_context, [node, peer], lambda: node.stats.drop_counts[reason] == before + 1
            ), reason
        pub.publish(
            CompressedImage(
                header=Header(frame_id="camera"), format="bgr8; jpeg compressed bgr8", data=good
            )
        )
        assert spin_until(ros_context, [node, peer], lambda: len(latents) == 1)
        assert latents[0].codec == "png" and list(latents[0].shape) == [28, 28, 1]
        assert node.stats.drops == len(bad) and node.images_in == len(bad) + 1
    finally:
        node.destroy_node()
        peer.destroy_node()
