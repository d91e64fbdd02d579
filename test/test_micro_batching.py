"""Micro-batching on the server: ``Codec.decode_batch`` and the server's ``max_batch`` /
``max_wait_ms``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

from conftest import spin_until
from hecsb_ros.core.codecs import CodecSettings, create_codec
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.msg import ClassificationResult, CompressedLatent
from hecsb_ros.nodes.qos import reliable_qos
from hecsb_ros.nodes.conversions import latent_msg, latent_payload

pytestmark = [pytest.mark.ros]


def _images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize(
    "name, quality", [("hecsb", 5), ("hecsb", 0), ("png", 3), ("raw", -1), ("null", -1)]
)
def test_a_batch_classifies_as_frames_one_by_one_and_a_bad_payload_stays_its_own(name, quality):
    codec = create_codec(name, CodecSettings(quality=quality))
    frames = [codec.encode(img, "mono8") for img in _images(6)]
    items = [(f.data, f.shape) for f in frames]
    bad = b"\xff" * 3 if name != "null" else b"\x00"
    # undecodable / a bad shape
    items.insert(2, (bad, frames[0].shape if name != "null" else (3,)))
    out = codec.decode_batch(items)
    assert isinstance(out[2], PayloadError) and out[2].reason in (
        "decode_error",
        "bad_shape",
        "truncated",
    )
    good = [d for i, d in enumerate(out) if i != 2]
    assert all(d.batch == 6 for d in good) and all(
        "infer" in d.timings_ms and "decode" in d.timings_ms for d in good
    )
    for frame, batched in zip(frames, good):
        single = codec.decode(frame.data, frame.shape).logits
        assert batched.logits.shape == single.shape
        scale = max(float(single.abs().max()), 1.0)
        assert torch.allclose(batched.logits, single, atol=2e-5 * scale, rtol=0), (
            name,
            batched.logits,
            single,
        )


def _latents(codec, n: int, first: int = 0) -> list[bytes]:
    out = []
    for i, img in enumerate(_images(n)):
        frame = codec.encode(img, "mono8")
        msg = latent_msg(
            frame,
            Header(frame_id=f"f{first + i}"),
            first + i,
            codec.name,
            codec.model_id,
            codec.quality,
            1,
            1.0,
        )
        out.append(serialize_message(msg))
    return out


@pytest.fixture()
def batching_server(ros_context):
    from hecsb_ros.nodes.server import ServerNode

    server = ServerNode(
        parameter_overrides=[Parameter("max_batch", value=4), Parameter("max_wait_ms", value=30.0)]
    )
    peer = ros_context.create_node("batching_peer")
    results: list[ClassificationResult] = []
    peer.create_subscription(
        ClassificationResult, "classification", results.append, reliable_qos(100)
    )
    nodes = [server, peer]
    assert spin_until(ros_context, nodes, lambda: peer.count_publishers("classification") > 0)
    yield ros_context, nodes, server, results
    for node in nodes:
        node.destroy_node()


def test_server_classifies_full_batches_at_once_and_the_rest_after_max_wait_ms(batching_server):
    ctx, nodes, server, results = batching_server
    codec = server.codec
    raws = _latents(codec, 7)
    for raw in raws[:4]:  # the fourth fills the batch: classified at once, no timer needed
        server._on_latent(raw)
    assert server.batches == 1 and not server._pending
    for raw in raws[4:]:  # three wait for max_wait_ms
        server._on_latent(raw)
    assert len(server._pending) == 3 and server.batches == 1
    assert spin_until(ctx, nodes, lambda: len(results) == 7)
    assert server.batches == 2 and not server._pending
    assert [r.server_batch for r in results] == [4] * 4 + [3] * 3
    assert all(r.server_wait_ms >= 20.0 for r in results[4:])  # waited for the timer (30 ms)
    assert all(r.server_total_ms >= r.server_wait_ms for r in results)
    # The same classes as one by one, the same bookkeeping.
    single = [
        codec.decode(latent_payload(deserialize_message(raw, CompressedLatent)), ())
        .logits.argmax()
        .item()
        for raw in raws
    ]
    assert [r.class_id for r in results] == single and [r.sequence for r in results] == list(
        range(7)
    )
    assert server.stats.frames_total == 7 and server.stats.drops == 0


def test_bad_latents_in_a_batch_are_dropped_and_counted_and_the_rest_answered(batching_server):
    ctx, nodes, server, results = batching_server
    raws = _latents(server.codec, 4)
    broken = deserialize_message(raws[1], CompressedLatent)
    broken.data = b"\xff" * 64  # bits the entropy decoder refuses
    raws[1] = serialize_message(broken)
    for raw in raws:
        server._on_latent(raw)
    assert spin_until(ctx, nodes, lambda: len(results) == 3)
    assert [r.sequence for r in results] == [0, 2, 3] and all(r.server_batch == 3 for r in results)
    assert sum(server.stats.drop_counts.values()) >= 1


def test_deactivate_answers_what_is_waiting(batching_server):
    ctx, nodes, server, results = batching_server
    for raw in _latents(server.codec, 2):
        server._on_latent(raw)
    assert len(server._pending) == 2
    server.trigger_deactivate()
    assert spin_until(ctx, nodes, lambda: len(results) == 2)
    assert server.batches == 1
