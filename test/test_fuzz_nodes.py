"""Fuzzing the server and edge callbacks with malformed and hostile messages (short CI budget).

The full run (>= 10,000 messages per handler) is ``python -m hecsb_ros.cli.fuzz``; its report is in
benchmarks/reliability/. ``HECSB_FUZZ_EXAMPLES`` scales the budget here.
"""

from __future__ import annotations

import os
import struct
import time

import pytest
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message

from hecsb_ros.core.payload import PayloadError
from hecsb_ros.reliability.fuzz import (
    IMAGE_KINDS,
    LATENT_KINDS,
    fuzz_edge,
    fuzz_edge_results,
    fuzz_server,
    fuzz_server_over_dds,
    png_bytes,
    rss_mb,
    valid_latent,
)

pytestmark = [pytest.mark.ros, pytest.mark.slow]

N = int(os.environ.get("HECSB_FUZZ_EXAMPLES", "700"))
#: Resident memory a fuzz run may add (hypothesis keeps some state per example); a single memory
#: bomb getting through costs far more (the PNG chunk bomb below took 2 GiB).
RSS_BUDGET_MB = 150.0


def _params(ckpt, **extra):
    return [
        Parameter(k, value=v)
        for k, v in {"codec": "png", "checkpoint": str(ckpt), **extra}.items()
    ]


@pytest.fixture()
def server(ros_context, random_classifier):
    from hecsb_ros.nodes.server import ServerNode

    node = ServerNode(parameter_overrides=_params(random_classifier))
    yield node
    node.destroy_node()


@pytest.fixture()
def edge(ros_context, random_classifier):
    from hecsb_ros.nodes.edge import EdgeNode

    node = EdgeNode(parameter_overrides=_params(random_classifier, max_image_pixels=1 << 22))
    yield node
    node.destroy_node()


#: Drop reasons of the server (every outcome but "served").
REFUSED = frozenset(
    {
        "bad_message",
        "empty",
        "truncated",
        "decode_error",
        "bad_shape",
        "bad_timing",
        "bad_rate",
        "unknown_codec",
        "model_mismatch",
        "too_large",
    }
)
#: The outcomes each malformed-latent kind may have (PNG codec); anything else fails the test.
LATENT_OUTCOMES: dict[str, frozenset[str]] = {
    "valid": frozenset({"served"}),
    "hostile_header": frozenset({"served"}),  # odd stamps and sequence numbers are survivable
    "absurd_shape": frozenset({"bad_shape"}),
    "shape_mismatch": frozenset({"bad_shape"}),
    "png_size_bomb": frozenset({"bad_shape"}),
    "unknown_model": frozenset({"model_mismatch"}),
    "unknown_codec": frozenset({"unknown_codec"}),
    "bad_rate": frozenset({"bad_rate"}),
    "bad_timing": frozenset({"bad_timing"}),
    "empty": frozenset({"empty"}),
    "oversize": frozenset({"too_large"}),
    "random_bytes": frozenset({"bad_message"}),
    "cdr_random": frozenset({"bad_message"}),
    "truncated_cdr": frozenset({"bad_message"}),
    "corrupt_png_body": frozenset({"truncated", "decode_error"}),
    "random_payload": frozenset({"truncated", "decode_error"}),
    "truncated_payload": frozenset({"empty", "truncated", "decode_error"}),
    "multi": REFUSED,  # several fields wrong: refused, for whichever check sees it first
    # A zlib stream that inflates within the size cap is a valid (if odd) PNG.
    "png_zlib_bomb": frozenset({"served", "too_large", "decode_error", "bad_shape"}),
    # One random byte flipped in a valid message: harmless (served) or refused, never a crash.
    "mutated_cdr": REFUSED | {"served"},
}


def _check_latent_outcomes(report):
    assert set(LATENT_OUTCOMES) == set(LATENT_KINDS)
    for kind, outcome in report.kind_outcomes:
        assert outcome in LATENT_OUTCOMES[kind], (kind, outcome)


def _check(report, kinds, n):
    d = report.to_dict()
    assert d["crashes"] == 0, d["crash_examples"]
    assert d["uncounted"] == 0 and not any(k.startswith("multiple") for k in report.outcomes), d[
        "outcomes"
    ]
    assert report.messages == n == sum(report.outcomes.values())
    assert set(report.by_kind) == set(kinds), (
        f"kinds not generated: {set(kinds) - set(report.by_kind)}"
    )
    assert report.rss_peak_mb - report.rss_start_mb < RSS_BUDGET_MB, d


def test_server_survives_and_counts_every_malformed_latent(server):
    report = fuzz_server(server, N, rng_seed=1)
    _check(report, LATENT_KINDS, N)
    _check_latent_outcomes(report)
    # Still serving after all that.
    before = server.stats.frames_total
    server._on_latent(serialize_message(valid_latent(server)))
    assert server.stats.frames_total == before + 1


def test_edge_survives_and_counts_every_malformed_image(edge):
    from hecsb_ros.core.preprocess import ENCODINGS

    # The generator's "wrong" encodings include some the edge now accepts (rgba8, bgra8, mono16,
    # bayer_rggb8, yuv422, 8UC3): record each message's encoding and whether it was refused.
    seen: list[tuple[str, bool]] = []
    on_image = edge._on_image

    def recorded(msg):
        before = edge.stats.drop_counts["bad_image"]
        on_image(msg)
        seen.append((msg.encoding, edge.stats.drop_counts["bad_image"] > before))

    edge._on_image = recorded
    report = fuzz_edge(edge, N, rng_seed=2)
    _check(report, IMAGE_KINDS, N)
    assert len(seen) == N and all(
        refused for encoding, refused in seen if encoding not in ENCODINGS
    )
    assert any(encoding not in ENCODINGS for encoding, _ in seen)
    # Every kind has one expected outcome: malformed frames are refused, well-formed ones served.
    expected = {
        kind: "bad_image"
        for kind in (
            "wrong_encoding",
            "bad_step",
            "data_mismatch",
            "zero_size",
            "huge_declared",
            "multi",
        )
    }
    expected.update(
        {
            kind: "served"
            for kind in ("valid", "odd_aspect", "padded_step", "big_valid", "hostile_header")
        }
    )
    assert set(expected) == set(IMAGE_KINDS)
    for kind, outcome in report.kind_outcomes:
        assert outcome == expected[kind], (kind, outcome)


def test_edge_survives_hostile_results(edge):
    n = max(50, N // 5)
    report = fuzz_edge_results(edge, n, rng_seed=3)
    assert not report.crashes, report.crashes[:3]
    assert report.outcomes == {"served": n}  # each recorded in edge_stats, none crashed the node
    msg = edge._stats_pub.msg_type  # the stats still convert to a LinkStats message
    assert msg.__name__ == "LinkStats"
    edge._report()


def test_server_over_dds_counts_every_hostile_message(server):
    n = max(60, N // 6)
    report = fuzz_server_over_dds(server, n, rng_seed=4)
    assert not report.crashes and report.outcomes["not_received"] == 0, report.to_dict()
    assert report.uncounted == 0 and sum(report.outcomes.values()) == n
    assert server.received == n
    # Each outcome belongs to the message just published (one at a time, in order).
    _check_latent_outcomes(report)


# -- regressions found by the fuzzer
# ---------------------------------------------------------------
def test_png_chunk_length_bomb_is_refused_before_opencv_allocates(server):
    """141 bytes declaring a 2**31-1 byte chunk made OpenCV allocate 2 GiB and spend 2 s."""
    codec = server.codec
    bomb = png_bytes(28, 28, b"")[:33] + struct.pack(">I", 2**31 - 1) + b"tEXt" + b"x" * 100
    rss0, t0 = rss_mb(), time.perf_counter()
    with pytest.raises(PayloadError) as err:
        codec.decode(bomb, (28, 28, 1))
    assert err.value.reason == "truncated"
    assert rss_mb() - rss0 < 50 and time.perf_counter() - t0 < 1.0


def test_negative_stamps_and_huge_sequence_jumps_do_not_stop_the_server(server):
    msg = valid_latent(server)
    msg.header.stamp.sec = -5  # rclpy Time.from_msg raised ValueError here, which ended the node
    server._on_latent(serialize_message(msg))
    assert server.stats.frames_total == 1
    # jumps no sender could make: resets, not 2**64 lost frames
    for seq in (2**64 - 1, 0, 2**64 - 1):
        msg.sequence = seq
        server._on_latent(serialize_message(msg))
    assert server.stats.frames_total == 4 and server.stats.drop_counts["sequence_gap"] == 0
    assert server._seq.resets == 2
    server._report()


def test_negative_stamp_in_a_result_does_not_stop_the_edge(edge):
    from hecsb_ros.msg import ClassificationResult

    msg = ClassificationResult()
    msg.header.stamp.sec = -1
    edge._on_result(msg)
    assert edge.stats.frames_total == 1


# -- the caps are parameters with safe defaults
# ------------------------------------------------------
def test_payload_and_tensor_caps_are_parameters_with_safe_defaults(server):
    from hecsb_ros.params import SERVER

    caps = {p.name: p for p in SERVER}
    assert (
        caps["max_payload_bytes"].default == 1 << 20
        and caps["max_decoded_elements"].default == 1 << 22
    )
    msg = valid_latent(server)
    raw = serialize_message(msg)
    server.set_parameters([Parameter("max_payload_bytes", value=len(msg.data) - 1)])
    server._on_latent(raw)
    assert server.stats.drop_counts["too_large"] == 1
    server.set_parameters(
        [
            Parameter("max_payload_bytes", value=1 << 20),
            Parameter("max_decoded_elements", value=28 * 28 - 1),
        ]
    )
    server._on_latent(raw)
    assert server.stats.drop_counts["bad_shape"] == 1
    server.set_parameters([Parameter("max_decoded_elements", value=1 << 22)])
    server._on_latent(raw)
    assert server.stats.frames_total == 1
    # Messages far above the cap are dropped before they are even deserialized.
    server._on_latent(b"\x00\x01\x00\x00" + bytes((1 << 20) + 70000))
    assert server.stats.drop_counts["too_large"] == 2


def test_edge_refuses_a_consistent_image_above_its_pixel_cap(ros_context, random_classifier):
    from hecsb_ros.nodes.edge import EdgeNode
    from hecsb_ros.reliability.fuzz import image_message

    node = EdgeNode(parameter_overrides=_params(random_classifier, max_image_pixels=10000))
    try:
        node._on_image(image_message(101, 100, "mono8", 100, bytes(10100)))
        assert node.stats.drop_counts["bad_image"] == 1 and node._seq == 0
        node._on_image(image_message(100, 100, "mono8", 100, bytes(10000)))
        assert node._seq == 1
    finally:
        node.destroy_node()


def test_server_memory_stays_flat_when_malformed_input_repeats(server):
    """The fuzzer's own memory grows per example; the callback's must not (replay the same
    cases)."""
    from hecsb_ros.reliability.fuzz import replay_memory

    m = replay_memory(server, cases=150, repeats=6)
    assert m["messages"] == 900
    assert m["growth_after_first_pass_mb"] < 10.0, m
