"""Hypothesis fuzzing of the nodes' message handlers with malformed and hostile input.

The handlers are the nodes' own subscription callbacks, called in-process with generated messages
(:func:`fuzz_server`, :func:`fuzz_edge`, :func:`fuzz_edge_results`); :func:`publish_over_dds` sends
a sample of the same cases through DDS. For every message the outcome is classified as ``served``
(the node produced output) or the drop reason the node counted; a message that was neither served
nor counted is ``uncounted``, and an exception escaping the callback is a crash. Resident memory is
sampled through the run.
"""

from __future__ import annotations

import math
import os
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from hecsb_ros.core.preprocess import ENCODINGS
from hecsb_ros.runner import rss_mb  # noqa: F401  (re-exported for callers)

#: Strings that would do harm if a node passed a field to a shell, a path or eval.
HOSTILE_STRINGS = (
    "../../../../etc/passwd",
    "/tmp/hecsb_fuzz_pwned",
    "$(touch /tmp/hecsb_fuzz_pwned)",
    "`touch /tmp/hecsb_fuzz_pwned`",
    "__import__('os').system('touch /tmp/hecsb_fuzz_pwned')",
    "; rm -rf / #",
    "%s%s%s%n",
    "\u202e\ufeff",
    "A" * 4096,
)
BAD_FLOATS = (math.nan, math.inf, -math.inf, -1.0, -1e-30, 3.0e38, 1e7)
LATENT_KINDS = (
    "random_bytes",
    "cdr_random",
    "mutated_cdr",
    "truncated_cdr",
    "truncated_payload",
    "random_payload",
    "png_size_bomb",
    "corrupt_png_body",
    "png_zlib_bomb",
    "empty",
    "shape_mismatch",
    "absurd_shape",
    "unknown_codec",
    "unknown_model",
    "bad_timing",
    "bad_rate",
    "oversize",
    "hostile_header",
    "multi",
    "valid",
)
IMAGE_KINDS = (
    "wrong_encoding",
    "bad_step",
    "data_mismatch",
    "zero_size",
    "huge_declared",
    "odd_aspect",
    "padded_step",
    "big_valid",
    "hostile_header",
    "multi",
    "valid",
)


@dataclass
class FuzzReport:
    """Outcome counts of one fuzz run."""

    target: str
    messages: int = 0
    by_kind: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    kind_outcomes: Counter = field(default_factory=Counter)  # (kind, outcome) -> count
    crashes: list[str] = field(default_factory=list)
    rss_start_mb: float = math.nan
    rss_peak_mb: float = math.nan
    rss_end_mb: float = math.nan
    seconds: float = 0.0

    @property
    def uncounted(self) -> int:
        return self.outcomes["uncounted"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "messages": self.messages,
            "crashes": len(self.crashes),
            "crash_examples": self.crashes[:10],
            "uncounted": self.uncounted,
            "by_kind": dict(sorted(self.by_kind.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "kind_outcomes": {f"{k}->{o}": n for (k, o), n in sorted(self.kind_outcomes.items())},
            "rss_start_mb": round(self.rss_start_mb, 1),
            "rss_peak_mb": round(self.rss_peak_mb, 1),
            "rss_end_mb": round(self.rss_end_mb, 1),
            "seconds": round(self.seconds, 2),
        }


# -- building messages ----------------------------------------------------------------------------
def _copy(msg: Any) -> Any:
    """A deep copy of a ROS message (through its serialized form)."""
    from rclpy.serialization import deserialize_message, serialize_message

    return deserialize_message(serialize_message(msg), type(msg))


def _clean(text: str) -> str:
    return text.replace("\x00", "")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_bytes(width: int, height: int, idat: bytes) -> bytes:
    """A PNG stream whose IHDR declares ``width`` x ``height`` grey 8-bit, with ``idat`` as image
    data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@st.composite
def latent_cases(
    draw: st.DrawFn, valid: Any, served: dict[str, Any], kind: str | None = None
) -> tuple[str, Any]:
    """One ``(kind, message or raw bytes)`` case derived from the valid ``CompressedLatent``.

    ``served`` holds what the server accepts: codec, model_id, rate_level, shape,
    max_payload_bytes.
    """
    from rclpy.serialization import serialize_message

    kind = kind or draw(st.sampled_from(LATENT_KINDS))
    msg = _copy(valid)
    data = bytes(valid.data)
    if kind == "random_bytes":
        return kind, draw(st.binary(max_size=2048))
    if kind == "cdr_random":  # a valid CDR encapsulation header, garbage after it
        return kind, b"\x00\x01\x00\x00" + draw(st.binary(max_size=2048))
    if kind in ("mutated_cdr", "truncated_cdr"):
        raw = bytearray(serialize_message(valid))
        if kind == "truncated_cdr":
            return kind, bytes(raw[: draw(st.integers(0, len(raw) - 1))])
        for pos, val in draw(
            st.lists(
                st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)),
                min_size=1,
                max_size=12,
            )
        ):
            raw[pos] = val
        return kind, bytes(raw) + draw(st.binary(max_size=16))
    if kind == "multi":
        fields = draw(
            st.lists(
                st.sampled_from(
                    (
                        "truncated_payload",
                        "random_payload",
                        "empty",
                        "shape_mismatch",
                        "absurd_shape",
                        "unknown_codec",
                        "unknown_model",
                        "bad_timing",
                        "bad_rate",
                        "hostile_header",
                    )
                ),
                min_size=2,
                max_size=4,
                unique=True,
            )
        )
        for f in fields:
            _, msg = draw(latent_cases(msg, served, f))
        return kind, msg
    if kind == "truncated_payload":
        msg.data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif kind == "random_payload":
        prefix = draw(st.sampled_from((b"", b"\x89PNG\r\n\x1a\n", data[:33])))
        msg.data = prefix + draw(st.binary(min_size=1, max_size=3000))
    elif kind == "png_size_bomb":  # header claims a huge image
        w, h = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
        msg.data = png_bytes(w, h, zlib.compress(bytes(draw(st.integers(0, 4096)))))
        if draw(st.booleans()):
            msg.shape = [min(h, 2**32 - 1), min(w, 2**32 - 1), 1]
    elif kind == "corrupt_png_body":  # correct header, garbage image data
        msg.data = data[:33] + draw(st.binary(min_size=1, max_size=2000))
    elif kind == "png_zlib_bomb":  # correct header, IDAT that inflates far beyond 28x28
        n = draw(st.sampled_from((10**5, 10**6, 10**7)))
        h, w = tuple(served["shape"][:2]) if len(served["shape"]) >= 2 else (28, 28)
        msg.data = png_bytes(w, h, zlib.compress(bytes(n), 9))
    elif kind == "empty":
        msg.data = b""
    elif kind == "shape_mismatch":
        msg.shape = draw(
            st.lists(st.integers(0, 64), max_size=6).filter(lambda s: s != list(served["shape"]))
        )
    elif kind == "absurd_shape":
        msg.shape = draw(st.lists(st.integers(2**15, 2**32 - 1), min_size=1, max_size=8))
    elif kind == "unknown_codec":
        msg.codec = _clean(
            draw(
                st.one_of(
                    st.sampled_from(("hecsb", "jpeg", "webp", "raw", "svb", "")),
                    st.sampled_from(HOSTILE_STRINGS),
                    st.text(max_size=64),
                )
            )
        )
        if msg.codec == served["codec"]:
            msg.codec += "x"
    elif kind == "unknown_model":
        msg.model_id = _clean(
            draw(
                st.one_of(
                    st.text("0123456789abcdef", min_size=16, max_size=16),
                    st.sampled_from(HOSTILE_STRINGS),
                    st.text(max_size=64),
                )
            )
        )
        if msg.model_id == served["model_id"]:
            msg.model_id += "0"
    elif kind == "bad_timing":
        name = draw(
            st.sampled_from(
                ("edge_preprocess_ms", "edge_encode_ms", "edge_entropy_ms", "edge_total_ms")
            )
        )
        setattr(msg, name, draw(st.sampled_from(BAD_FLOATS)))
    elif kind == "bad_rate":
        msg.rate_level = draw(st.integers(0, 255).filter(lambda r: not served["accepts"](r)))
    elif kind == "oversize":
        size = draw(
            st.sampled_from(
                (
                    served["max_payload_bytes"] + 1,
                    served["max_payload_bytes"] * 2,
                    served["max_payload_bytes"] + 70000,
                )
            )
        )
        msg.data = data[:33] + bytes(size - 33)
    elif kind == "hostile_header":
        msg.header.stamp.sec = draw(st.integers(-(2**31), 2**31 - 1))
        msg.header.stamp.nanosec = draw(st.integers(0, 2**32 - 1))
        msg.edge_sent.sec = draw(st.integers(-(2**31), 2**31 - 1))
        msg.header.frame_id = _clean(
            draw(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=64)))
        )
        msg.sequence = draw(st.sampled_from((0, 1, 2**63, 2**64 - 1)) | st.integers(0, 2**64 - 1))
    elif kind != "valid":
        raise ValueError(f"unknown latent case {kind!r}")
    return kind, msg


def image_message(
    height: int, width: int, encoding: str, step: int, data: bytes, bigendian: int = 0
) -> Any:
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.frame_id = "camera"
    msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian = (
        height,
        width,
        encoding,
        step,
        bigendian,
    )
    msg.data = data
    return msg


@st.composite
def image_cases(
    draw: st.DrawFn, kind: str | None = None, max_valid_pixels: int = 1 << 20
) -> tuple[str, Any]:
    """One ``(kind, sensor_msgs/Image)`` case; valid kinds carry data that matches the header."""
    kind = kind or draw(st.sampled_from(IMAGE_KINDS))
    enc = draw(st.sampled_from(("mono8", "rgb8", "bgr8")))
    ch = 3 if enc != "mono8" else 1
    h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))

    def filled(height: int, step: int) -> bytes:
        return bytes([draw(st.integers(0, 255))]) * (height * step)

    if kind == "wrong_encoding":
        # Names cameras do use that the edge does not take (float and signed depth, 16-bit colour,
        # case variants), hostile strings and random text; never one of the supported encodings.
        bad = draw(
            st.one_of(
                st.sampled_from(
                    (
                        "32FC1",
                        "16UC1",
                        "16SC1",
                        "rgb16",
                        "bgra16",
                        "bayer_rggb16",
                        "MONO8",
                        "Bgr8",
                        "yuv420",
                        "",
                    )
                ),
                st.sampled_from(HOSTILE_STRINGS),
                st.text(max_size=32),
            ).filter(lambda e: _clean(e) not in ENCODINGS)
        )
        return kind, image_message(h, w, _clean(bad), w * 4, filled(h, w * 4))
    if kind == "bad_step":
        step = draw(st.integers(0, max(0, w * ch - 1)))
        return kind, image_message(h, w, enc, step, filled(h, step))
    if kind == "data_mismatch":
        n = draw(st.integers(0, 3 * h * w * ch).filter(lambda n: n != h * w * ch))
        return kind, image_message(h, w, enc, w * ch, bytes(n))
    if kind == "zero_size":
        h0, w0 = draw(st.sampled_from(((0, 0), (0, w), (h, 0))))
        return kind, image_message(h0, w0, enc, w0 * ch, b"")
    if kind == "huge_declared":
        hh, ww = draw(st.integers(2**16, 2**32 - 1)), draw(st.integers(2**16, 2**32 - 1))
        step = min(ww * ch, 2**32 - 1)
        return kind, image_message(hh, ww, enc, step, bytes(draw(st.integers(0, 4096))))
    if kind == "odd_aspect":  # thin strips and single pixels, data consistent
        long_side = draw(st.integers(1, 4096))
        hh, ww = draw(st.sampled_from(((1, long_side), (long_side, 1), (1, 1), (2, long_side))))
        return kind, image_message(hh, ww, enc, ww * ch, filled(hh, ww * ch))
    if kind == "padded_step":
        step = w * ch + draw(st.integers(1, 64))
        return kind, image_message(h, w, enc, step, filled(h, step))
    if kind == "big_valid":
        side = draw(st.sampled_from((256, 480, 640, 1024)))
        hh, ww = side, min(side * 4 // 3, max_valid_pixels // side)
        return kind, image_message(hh, ww, enc, ww * ch, filled(hh, ww * ch))
    if kind == "hostile_header":
        msg = image_message(h, w, enc, w * ch, filled(h, w * ch), draw(st.integers(0, 255)))
        msg.header.stamp.sec = draw(st.integers(-(2**31), 2**31 - 1))
        msg.header.frame_id = _clean(
            draw(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=64)))
        )
        return kind, msg
    if kind == "multi":
        # Several header fields wrong at once; always malformed (a combination that happens to
        # describe a well-formed padded image of another height is drawn again).
        msg = image_message(h, w, enc, w * ch, filled(h, w * ch))

        def well_formed(fields: tuple[str, int, int]) -> bool:
            encoding, step, height = fields
            return (
                encoding == enc and height >= 1 and step >= w * ch and height * step == h * w * ch
            )

        msg.encoding, msg.step, msg.height = draw(
            st.tuples(
                st.sampled_from((enc, "32FC1", "16SC1")),
                st.integers(0, 4 * w * ch),
                st.integers(0, 2 * h),
            ).filter(lambda f: not well_formed(f))
        )
        msg.is_bigendian = draw(st.integers(0, 1))
        return kind, msg
    if kind == "valid":
        return kind, image_message(h, w, enc, w * ch, filled(h, w * ch))
    raise ValueError(f"unknown image case {kind!r}")


@st.composite
def result_cases(draw: st.DrawFn) -> tuple[str, Any]:
    """``(ground truth, result)``: a hostile ``ClassificationResult`` (as the edge receives on
    ``classification``) after a ``GroundTruth`` of its header with a hostile class."""
    from hecsb_ros.msg import ClassificationResult, GroundTruth

    msg = ClassificationResult()
    msg.header.stamp.sec = draw(st.integers(-(2**31), 2**31 - 1))
    msg.header.stamp.nanosec = draw(st.integers(0, 2**32 - 1))
    msg.class_id = draw(st.integers(-(2**31), 2**31 - 1))
    truth = GroundTruth(header=msg.header, class_id=draw(st.integers(-(2**15), 2**15 - 1)))
    msg.payload_bytes = draw(st.integers(0, 2**32 - 1))
    msg.label = _clean(draw(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=32))))
    for name in ("score", "edge_total_ms", "transfer_ms", "server_total_ms", "server_decode_ms"):
        setattr(msg, name, draw(st.sampled_from(BAD_FLOATS + (0.0, 1.0))))
    msg.topk_ids = draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8))
    return "hostile_result", (truth, msg)


# -- running --------------------------------------------------------------------------------------
def _outcome(before: Counter, after: Counter, served_before: int, served_after: int) -> str:
    diff = {
        k: after[k] - before[k] for k in after if after[k] != before[k] and k != "sequence_gap"
    }
    if served_after > served_before and not diff:
        return "served"
    if len(diff) == 1 and served_after == served_before:
        return next(iter(diff))
    return (
        "uncounted"
        if not diff and served_after == served_before
        else "multiple:" + ",".join(sorted(diff))
    )


def run_cases(
    target: str,
    strategy: st.SearchStrategy,
    n: int,
    handle: Callable[[Any], None],
    drops: Callable[[], Counter],
    served: Callable[[], int],
    rng_seed: int = 0,
    prepare: Callable[[Any], Any] = lambda m: m,
) -> FuzzReport:
    """Feed ``n`` generated cases to ``handle`` and classify each outcome.

    ``drops()`` returns the node's drop counter, ``served()`` its count of produced outputs;
    ``prepare`` turns a generated message into what ``handle`` takes (e.g. serialized bytes).
    """
    report = FuzzReport(target)
    report.rss_start_mb = report.rss_peak_mb = rss_mb()
    t0 = time.monotonic()
    round_seed = rng_seed

    while report.messages < n:

        @seed(round_seed)
        @settings(
            max_examples=n - report.messages,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def one(case: tuple[str, Any]) -> None:
            if report.messages >= n:
                return
            kind, msg = case
            payload = prepare(msg)
            before, s0 = Counter(drops()), served()
            try:
                handle(payload)
            except BaseException as exc:  # noqa: BLE001 - a crash is what we are looking for
                report.crashes.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
                outcome = "crash"
            else:
                outcome = _outcome(before, drops(), s0, served())
            report.messages += 1
            report.by_kind[kind] += 1
            report.outcomes[outcome] += 1
            report.kind_outcomes[(kind, outcome)] += 1
            if report.messages % 250 == 0:
                report.rss_peak_mb = max(report.rss_peak_mb, rss_mb())

        one()
        round_seed += 1
    report.rss_end_mb = rss_mb()
    report.rss_peak_mb = max(report.rss_peak_mb, report.rss_end_mb)
    report.seconds = time.monotonic() - t0
    return report


def valid_latent(server_node: Any) -> Any:
    """A valid ``CompressedLatent`` for ``server_node``'s codec, from a synthetic image."""
    from std_msgs.msg import Header

    from hecsb_ros.nodes.conversions import latent_msg

    codec = server_node.codec
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    frame = codec.encode(image, "mono8")
    return latent_msg(
        frame,
        Header(frame_id="camera"),
        0,
        codec.name,
        codec.model_id,
        codec.quality,
        time.time_ns(),
        1.0,
    )


def served_info(server_node: Any) -> dict[str, Any]:
    codec = server_node.codec
    return {
        "codec": codec.name,
        "model_id": codec.model_id,
        "rate_level": codec.quality,
        "accepts": server_node.bank.accepts,
        "shape": tuple(valid_latent(server_node).shape),
        "max_payload_bytes": server_node.get_parameter("max_payload_bytes").value,
    }


def fuzz_server(node: Any, n: int, rng_seed: int = 0) -> FuzzReport:
    """Fuzz ``ServerNode._on_latent`` (the raw-bytes subscription callback) with ``n`` cases."""
    from rclpy.serialization import serialize_message

    strategy = latent_cases(valid_latent(node), served_info(node))

    def prepare(msg: Any) -> bytes:
        return msg if isinstance(msg, bytes) else serialize_message(msg)

    return run_cases(
        "server latent",
        strategy,
        n,
        node._on_latent,
        lambda: node.stats.drop_counts,
        lambda: node.stats.frames_total,
        rng_seed,
        prepare,
    )


def fuzz_edge(node: Any, n: int, rng_seed: int = 0) -> FuzzReport:
    """Fuzz ``EdgeNode._on_image`` with ``n`` malformed or unusual images."""
    return run_cases(
        "edge image",
        image_cases(max_valid_pixels=min(1 << 20, node.cfg.max_image_pixels)),
        n,
        node._on_image,
        lambda: node.stats.drop_counts,
        lambda: node._seq,
        rng_seed,
    )


def fuzz_edge_results(node: Any, n: int, rng_seed: int = 0) -> FuzzReport:
    """Fuzz ``EdgeNode._on_result`` with hostile results, each after its frame's hostile ground
    truth (``_on_truth``): every one must be recorded, none crash."""

    def handle(case: tuple[Any, Any]) -> None:
        node._on_truth(case[0])
        node._on_result(case[1])

    return run_cases(
        "edge result",
        result_cases(),
        n,
        handle,
        lambda: node.stats.drop_counts,
        lambda: node.stats.frames_total,
        rng_seed,
    )


def fuzz_server_over_dds(
    node: Any, n: int, rng_seed: int = 0, timeout_s: float = 5.0
) -> FuzzReport:
    """Publish ``n`` cases over DDS from a peer node to ``node`` (a ServerNode), one at a time.

    Each case is published as serialized bytes on ``latent``; the run waits until the server's
    subscription callback has taken it, so every message is accounted for. A message the server
    never received within ``timeout_s`` counts as ``not_received``.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.serialization import serialize_message

    from hecsb_ros.nodes.qos import reliable_qos

    peer = rclpy.create_node(f"hecsb_fuzz_peer_{os.getpid()}", context=node.context)
    pub = peer.create_publisher(type(valid_latent(node)), "latent", reliable_qos(10))
    ex = SingleThreadedExecutor(context=node.context)
    ex.add_node(node)
    ex.add_node(peer)
    end = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        ex.spin_once(timeout_sec=0.05)
    # Take whatever other publishers left in the server's queue, so each outcome below belongs to
    # the case just published.
    quiet = time.monotonic()
    while time.monotonic() - quiet < 0.5:
        before = node.received
        ex.spin_once(timeout_sec=0.05)
        if node.received != before:
            quiet = time.monotonic()
    lost = Counter()

    # outcomes so far (a newest-policy server classifies on its worker thread)
    def counted() -> int:
        return sum(node.stats.drop_counts.values()) + node.stats.frames_total + node.stats.skipped

    def handle(raw: bytes) -> None:
        before, outcomes = node.received, counted()
        pub.publish(raw)
        deadline = time.monotonic() + timeout_s
        while (node.received == before or counted() == outcomes) and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.01)
        if node.received == before:
            lost["not_received"] += 1  # also shows up as "uncounted"

    try:
        report = run_cases(
            "server latent over DDS",
            latent_cases(valid_latent(node), served_info(node)),
            n,
            handle,
            lambda: node.stats.drop_counts,
            lambda: node.stats.frames_total,
            rng_seed,
            lambda m: m if isinstance(m, bytes) else serialize_message(m),
        )
    finally:
        ex.remove_node(node)
        ex.remove_node(peer)
        peer.destroy_node()
    report.outcomes.update(lost)
    return report


def replay_memory(
    node: Any, cases: int = 500, repeats: int = 20, rng_seed: int = 5
) -> dict[str, Any]:
    """Memory of the server callback alone: generate ``cases`` latents once, feed them ``repeats``
    times.

    Separates the node's memory from the fuzzer's own (hypothesis keeps state per example). Returns
    RSS after the first pass (allocator and library warm-up) and after the last, in MiB.
    """
    from rclpy.serialization import serialize_message

    raws: list[bytes] = []
    run_cases(
        "collect",
        latent_cases(valid_latent(node), served_info(node)),
        cases,
        raws.append,
        lambda: node.stats.drop_counts,
        lambda: node.stats.frames_total,
        rng_seed,
        lambda m: m if isinstance(m, bytes) else serialize_message(m),
    )
    start = rss_mb()
    per_pass = []
    t0 = time.monotonic()
    for _ in range(repeats):
        for raw in raws:
            node._on_latent(raw)
        per_pass.append(rss_mb())
    return {
        "cases": len(raws),
        "repeats": repeats,
        "messages": len(raws) * repeats,
        "rss_before_mb": start,
        "rss_after_first_pass_mb": per_pass[0],
        "rss_end_mb": per_pass[-1],
        "growth_after_first_pass_mb": per_pass[-1] - per_pass[0],
        "seconds": time.monotonic() - t0,
    }
