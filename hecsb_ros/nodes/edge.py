"""hecsb_edge: camera image -> codec edge half -> ``CompressedLatent``; measures the round trip.

Subscribes ``image_raw`` (sensor_msgs/Image, every common encoding) or, with ``input: compressed``,
``image_raw/compressed`` (sensor_msgs/CompressedImage, JPEG/PNG as ROS's compressed image transport
publishes them), best effort and shallow, plus ``image_raw/ground_truth`` and ``classification``;
publishes ``latent`` and ``edge_stats`` (LinkStats: capture -> result back at the edge).
Ground truth (a data set's, a benchmark-only side channel) stays at the edge: a result is scored
for ``edge_stats`` by its header, the latents carry no labels.

Fresh frames first (``queue_policy: newest``, the default): the subscription callback only keeps
the newest frame and a worker thread encodes it when it is free, so a frame never waits behind
older ones; a frame replaced while waiting is counted as ``skipped`` (``edge_stats`` drop_reasons,
``/diagnostics``), apart from bad input (drops) and frames the middleware lost (``image_lost``,
from the message-lost event). With ``max_in_flight`` (default 1) the worker encodes a frame only
while fewer latents than that are out (sent, result not back): under overload the newest frame
waits at the edge, not its latent at the server, and is encoded the moment a result comes back; a
latent whose result does not come back within ``in_flight_timeout_ms`` stops counting
(``in_flight_expired``). A frame that has waited longer than ``max_frame_wait`` of the camera
period by then is skipped for the next one. With ``queue_policy: newest`` the image subscription
holds at least ``NEWEST_IMAGE_DEPTH`` frames, so that every frame the camera sends is taken (and
counted) by the callback. A publisher matched on the image topic whose frames do not arrive (a
camera driver without the Fast DDS profile) is warned about once, with the fix.

``quality`` (the rate level) may be set at run time (``ros2 param set /hecsb_edge quality 3``): the
next frame is encoded at that level; a server with ``all_levels`` (default) decodes every level.

A managed (lifecycle) node (:class:`~hecsb_ros.nodes.lifecycle.ManagedCodecNode`): configure
loads the codec and creates the publishers, activate subscribes, deactivate unsubscribes and keeps
the codec.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from hecsb_ros.core.codecs.bank import CodecBank
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.ratecontrol import BudgetController, InFlightWindow, LevelProfile
from hecsb_ros.core.stats import FrameRecord, GroundTruthBook, LinkStatsAccumulator
from hecsb_ros.graph import fastdds_profile, profile_exports
from hecsb_ros.msg import ClassificationResult, CompressedLatent, GroundTruth, LinkStats
from hecsb_ros.nodes.diagnostics import OK, WARN, DropCounter
from hecsb_ros.nodes.entry import run_node
from hecsb_ros.nodes.lifecycle import CodecNodeConfig, ManagedCodecNode
from hecsb_ros.nodes.qos import image_qos, reliable_qos
from hecsb_ros.nodes.worker import NewestWorker
from hecsb_ros.nodes.conversions import (
    compressed_msg_to_array,
    image_msg_to_array,
    latent_msg,
    link_stats_msg,
    time_to_ns,
)
from hecsb_ros.params import EDGE


@dataclass(frozen=True)
class EdgeConfig(CodecNodeConfig):
    qos_depth: int
    max_image_pixels: int
    input: str
    rate_control: str
    latency_budget_ms: float
    max_kbit_s: float
    worst_link_kbit_s: float
    queue_policy: str
    frame_silence_s: float
    max_in_flight: int
    in_flight_timeout_ms: float
    max_frame_wait: float


#: Weight of the newest measurement in the per-level edge and server time averages.
EWMA = 0.2
# : Image subscription depth with queue_policy newest (at least): the callback only stores the
# frame, so : the frames the middleware holds are all taken and each one replaced is counted as
# skipped; with depth 1 : a frame replaced while the executor thread waits for a core would be gone
# uncounted.
NEWEST_IMAGE_DEPTH = 4
RATE_CONTROL_PARAMS = ("rate_control", "latency_budget_ms", "max_kbit_s", "worst_link_kbit_s")


class EdgeNode(ManagedCodecNode):
    def __init__(self, **node_kwargs) -> None:
        self.controller: BudgetController | None = None
        # the rate controller: the worker encodes, the executor takes results
        self._ctl_lock = threading.RLock()
        self._worker: NewestWorker | None = None
        super().__init__("hecsb_edge", EDGE, EdgeConfig, **node_kwargs)
        self.add_on_set_parameters_callback(self._on_set_quality)

    def _on_set_quality(self, changes) -> SetParametersResult:
        """``quality`` at run time: the level is made (or taken from the bank) before the change is
        accepted, and the next frame is encoded with it; a level that cannot be made is refused.
        ``rate_control``, ``latency_budget_ms``, ``max_kbit_s``, ``worst_link_kbit_s``: budget mode
        is (re)built at once."""
        if self.bank is not None and any(c.name in RATE_CONTROL_PARAMS for c in changes):
            values = {name: self.get_parameter(name).value for name in RATE_CONTROL_PARAMS}
            values.update({c.name: c.value for c in changes if c.name in RATE_CONTROL_PARAMS})
            try:
                with self._ctl_lock:
                    self._configure_rate_control(**values)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        for change in changes:
            if change.name != "quality" or self.bank is None:
                continue
            bank = self.bank
            level = (
                change.value if change.value >= 0 else bank.cls.quality_bounds(bank.settings)[0]
            )
            try:
                codec = bank.codec(int(level))
            # refused with the reason, the current level stays
            except Exception as exc:
                return SetParametersResult(
                    successful=False, reason=f"quality {change.value}: {exc}"
                )
            if codec is not self.codec:
                self.get_logger().info(
                    f"quality {self.codec.quality} -> {codec.quality} (model {codec.model_id})"
                )
                self.codec = codec
        return SetParametersResult(successful=True)

    def _setup(self) -> None:
        # The shipped rate levels of a learned codec are loaded now, so a switch at run time is
        # instant; an image codec's other qualities are made when first asked for.
        self.bank = CodecBank(self.cfg.codec, self.cfg.codec_settings(), default=self.codec)
        # serialized message bytes beyond the payload (measured on the first frame)
        self._overhead = 100.0
        self._sent_levels: OrderedDict[int, int] = OrderedDict()  # sequence -> rate level
        self._times: dict[int, tuple[float, float]] = {}  # level -> (edge ms, server ms), averaged
        self._rate_hz, self._last_frame = 0.0, math.nan
        cfg = self.cfg
        self._configure_rate_control(
            cfg.rate_control, cfg.latency_budget_ms, cfg.max_kbit_s, cfg.worst_link_kbit_s
        )
        self.stats = LinkStatsAccumulator()
        self.drop = DropCounter(self, self.stats)
        self._labels = GroundTruthBook()  # the frames' classes, to score their results
        self._seq = 0
        self.images_in = 0  # frames the image subscription delivered
        self.frames_lost = 0  # frames the middleware reported lost on the image topic
        self._last_image_s = math.nan
        self._period_s = 0.0  # camera frame period, averaged over capture stamps
        self._last_stamp_ns = 0
        self.stale_skipped = 0  # of the skipped frames: those found stale when a place came free
        self._matched_since: float | None = None
        self._warned: set[str] = set()
        self.window = InFlightWindow(
            cfg.max_in_flight if cfg.queue_policy == "newest" else 0, cfg.in_flight_timeout_ms
        )
        self._expired_seen = 0
        self._pub = self._publisher(CompressedLatent, "latent", reliable_qos(10))
        self._stats_pub = self._publisher(LinkStats, "edge_stats", reliable_qos(10))

    def _configure_rate_control(
        self,
        rate_control: str,
        latency_budget_ms: float,
        max_kbit_s: float,
        worst_link_kbit_s: float,
    ) -> None:
        """fixed: no controller; budget: a controller over the bank's levels (ValueError says why
        not)."""
        if rate_control != "budget":
            self.controller = None
            return
        profiles = self.bank.level_profiles(self._overhead)
        old = self.controller
        self.controller = BudgetController(
            profiles,
            latency_budget_ms,
            max_kbit_s,
            worst_link_kbit_s=worst_link_kbit_s,
            estimator=old.estimator if old is not None else None,
        )
        current = self.codec.quality
        self.controller.current = next(
            (lv for lv in self.controller.levels if lv.level == current), self.controller.levels[0]
        )
        self.get_logger().info(
            f"rate control: budget {latency_budget_ms} ms"
            f"{f' down to {worst_link_kbit_s:g} kbit/s' if worst_link_kbit_s > 0 else ''}, "
            f"cap {max_kbit_s or 'none'} kbit/s, "
            f"levels {[lv.level for lv in self.controller.levels]}"
        )

    def _measured(self, profile: LevelProfile) -> LevelProfile:
        edge_ms, server_ms = self._times.get(profile.level, (profile.edge_ms, profile.server_ms))
        return replace(profile, edge_ms=edge_ms, server_ms=server_ms)

    def _choose_level(self) -> None:
        """Budget mode: the level of the next frame, from the link estimate and the frame rate."""
        now = time.monotonic()
        if math.isfinite(self._last_frame) and now > self._last_frame:
            hz = 1.0 / (now - self._last_frame)
            self._rate_hz = hz if self._rate_hz == 0 else (1 - EWMA) * self._rate_hz + EWMA * hz
        self._last_frame = now
        ctl = self.controller
        ctl.levels = [self._measured(lv) for lv in ctl.levels]
        ctl.current = next(lv for lv in ctl.levels if lv.level == ctl.current.level)
        level = ctl.choose(self._rate_hz, now * 1e3).level
        if level != self.codec.quality:
            self.codec = self.bank.codec(level)

    def _start(self) -> None:
        cfg = self.cfg
        self._subscribe(GroundTruth, "image_raw/ground_truth", self._on_truth, reliable_qos(50))
        newest = cfg.queue_policy == "newest"
        if newest:
            gate = self._gate if cfg.max_in_flight > 0 else None
            stale = self._stale if cfg.max_in_flight > 0 and cfg.max_frame_wait > 0 else None
            self._worker = NewestWorker(
                "edge_worker",
                lambda items: self._encode(*items[0][:2]),
                lambda _key, _old: self.stats.skip(),
                self._worker_error,
                gate=gate,
                stale=stale,
            )
        elif cfg.max_in_flight > 0:
            self.get_logger().info(
                "max_in_flight applies to queue_policy newest only: with fifo "
                "every frame is "
                "encoded as it arrives"
            )
        msg_type, topic, handle = (
            (CompressedImage, "image_raw/compressed", self._on_compressed)
            if cfg.input == "compressed"
            else (Image, "image_raw", self._on_image)
        )
        callback = self._arrive if newest else handle
        depth = max(cfg.qos_depth, NEWEST_IMAGE_DEPTH) if newest else cfg.qos_depth
        events = SubscriptionEventCallbacks(message_lost=self._on_lost)
        try:
            self._image_sub = self._subscribe(
                msg_type, topic, callback, image_qos(depth), event_callbacks=events
            )
        # a middleware without the message-lost event: the silence check stays
        except Exception as exc:
            self.get_logger().info(
                f"no message-lost event on {topic} ({type(exc).__name__}); "
                "frames that never "
                "arrive are found by the silence check only"
            )
            self._image_sub = self._subscribe(msg_type, topic, callback, image_qos(depth))
        self._subscribe(ClassificationResult, "classification", self._on_result, reliable_qos(50))
        self._timer(cfg.stats_period_s, self._report)
        self._timer(min(1.0, cfg.frame_silence_s / 2), self._watch_frames)

    def _stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:  # the frame it holds is encoded first
            worker.stop()
        super()._stop()

    def _ready_line(self) -> str:
        cfg = self.cfg
        return (
            f"codec {cfg.codec} (quality {self.codec.quality}, model {self.codec.model_id}) "
            f"on {cfg.device}, frames from {self._image_sub.topic_name} ({cfg.input})"
        )

    def _on_truth(self, msg: GroundTruth) -> None:
        self._labels.add(time_to_ns(msg.header.stamp), msg.header.frame_id, msg.class_id)

    def _frame(self, msg: Image | CompressedImage) -> Callable[[], tuple[np.ndarray, str]]:
        if isinstance(msg, CompressedImage):
            return lambda: compressed_msg_to_array(msg, self.cfg.max_image_pixels)
        return lambda: (image_msg_to_array(msg, self.cfg.max_image_pixels), msg.encoding)

    def _on_image(self, msg: Image) -> None:
        """Encode one frame now (``queue_policy: fifo``; also what the worker does with the
        newest)."""
        self.images_in += 1
        self._last_image_s = time.monotonic()
        self._encode(msg.header, self._frame(msg))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._on_image(msg)

    def _arrive(self, msg: Image | CompressedImage, info) -> None:
        """``queue_policy: newest``: keep the frame as the newest; the worker encodes it."""
        self.images_in += 1
        now = time.monotonic()
        self._last_image_s = now
        stamp = time_to_ns(msg.header.stamp)
        # the camera's frame period by its capture stamps (not by
        gap = (stamp - self._last_stamp_ns) / 1e9
        # arrival: frames held up together arrive in a burst)
        self._last_stamp_ns = stamp
        if 0 < gap < 5.0:
            self._period_s = (
                gap if self._period_s == 0 else (1 - EWMA) * self._period_s + EWMA * gap
            )
        worker = self._worker
        if worker is not None:
            worker.put("frame", (msg.header, self._frame(msg), now))

    def _gate(self) -> float:
        """The worker's gate: 0 = encode the newest frame now; else seconds until a latent out
        expires."""
        wait_ms = self.window.wait_ms(time.monotonic() * 1e3)
        expired = self.window.expired
        if expired > self._expired_seen:
            self._expired_seen = expired
            self.get_logger().warning(
                f"no result within {self.window.timeout_ms:.0f} ms for {expired} latent(s) so "
                "far: no longer "
                "waited for (lost on the way or a stalled server)",
                throttle_duration_sec=5.0,
            )
        return wait_ms / 1e3

    def _stale(self, item: tuple, idle_since: float) -> bool:
        """A waiting frame is stale when, since it arrived and the worker was free, it has waited
        more than ``max_frame_wait`` of the camera period for a place (the next frame is due within
        the rest of it)."""
        period = self._period_s
        waited = time.monotonic() - max(item[2], idle_since)
        stale = period > 0 and waited > self.cfg.max_frame_wait * period
        self.stale_skipped += int(stale)
        return stale

    def _worker_error(self, exc: BaseException) -> None:
        self.get_logger().error(
            f"frame worker: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0
        )

    def _fix(self) -> str:
        return (
            "start the camera driver's process with the Fast DDS profile: "
            f"{profile_exports(fastdds_profile())} "
            "(frames of 640x480 and more need its 32 MiB shared-memory segment in the "
            "publishing process)"
        )

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def _on_lost(self, event) -> None:
        """Message-lost event of the image subscription: frames published to us that never
        arrived."""
        lost = int(event.total_count_change)
        if lost <= 0:
            return
        self.frames_lost += lost
        self.stats.drop("image_lost", lost)
        self._warn_once(
            "lost",
            f"the middleware lost {lost} frame(s) on "
            f"{self._image_sub.topic_name} "
            f"({self.frames_lost} so far); {self._fix()}",
        )

    def _watch_frames(self) -> None:
        """Warn once when a publisher is matched on the image topic but no frame arrives."""
        now = time.monotonic()
        if self.count_publishers(self._image_sub.topic_name) == 0:
            self._matched_since = None
            return
        if self._matched_since is None:
            self._matched_since = now
        last = (
            self._matched_since
            if math.isnan(self._last_image_s)
            else max(self._last_image_s, self._matched_since)
        )
        if now - last >= self.cfg.frame_silence_s:
            self._warn_once(
                "silent",
                f"a publisher is matched on {self._image_sub.topic_name} "
                "but no frame arrived "
                f"for {now - last:.1f} s ({self.images_in} so far); "
                f"{self._fix()}",
            )

    def _encode(self, header: Header, frame: Callable[[], tuple[np.ndarray, str]]) -> None:
        """Convert (``frame()``), encode and publish one camera frame; bad frames are counted,
        not raised."""
        t0 = time.perf_counter_ns()
        if self.controller is not None:
            with self._ctl_lock:
                self._choose_level()
        codec = self.codec  # the level in force for this frame (quality may change between frames)
        try:
            image, encoding = frame()
            encoded = codec.encode(image, encoding)
        except PayloadError as exc:
            self.drop(exc.reason, exc.detail)
            return
        # an image the checks let through must not stop the node
        except Exception as exc:
            self.drop("bad_image", f"{type(exc).__name__}: {exc}")
            return
        total_ms = (time.perf_counter_ns() - t0) / 1e6
        out = latent_msg(
            encoded,
            header,
            self._seq,
            codec.name,
            codec.model_id,
            codec.quality,
            self.get_clock().now().nanoseconds,
            total_ms,
        )
        if self._seq == 0:
            self._overhead = float(len(serialize_message(out)) - len(encoded.data))
        self._sent_levels[self._seq] = codec.quality
        while len(self._sent_levels) > 1000:
            self._sent_levels.popitem(last=False)
        # before publishing: its result may be quick
        self.window.sent(self._seq, time.monotonic() * 1e3)
        self._pub.publish(out)
        with self._ctl_lock:
            ctl = self.controller
            profile = (
                None
                if ctl is None
                else next((lv for lv in ctl.levels if lv.level == codec.quality), None)
            )
            if profile is not None:
                ctl.sent(
                    self._seq,
                    replace(profile, message_bytes=len(encoded.data) + self._overhead),
                    time.monotonic() * 1e3,
                )
        self._seq += 1

    def _on_result(self, msg: ClassificationResult) -> None:
        self.window.answered(int(msg.sequence), time.monotonic() * 1e3)
        worker = self._worker
        if worker is not None and self.window.limit > 0:
            worker.wake()  # a place may be free: the newest frame is encoded now
        with self._ctl_lock:
            self._result(msg)

    def _result(self, msg: ClassificationResult) -> None:
        # Plain integer arithmetic: Time.from_msg raises on a negative (hostile) stamp.
        latency_ms = (self.get_clock().now().nanoseconds - time_to_ns(msg.header.stamp)) / 1e6
        correct = self._labels.correct(
            time_to_ns(msg.header.stamp), msg.header.frame_id, msg.class_id
        )
        self.stats.add(
            FrameRecord(
                msg.payload_bytes,
                0,
                latency_ms,
                msg.edge_total_ms,
                msg.transfer_ms,
                msg.server_total_ms,
                correct,
            )
        )
        level = self._sent_levels.get(int(msg.sequence))
        if self.controller is not None:
            self.controller.answered(int(msg.sequence), time.monotonic() * 1e3, msg.transfer_ms)
        if level is not None and all(
            math.isfinite(v) and v >= 0
            for v in (msg.edge_total_ms, msg.server_total_ms, msg.transfer_ms)
        ):
            old = self._times.get(level)
            new = (msg.edge_total_ms, msg.server_total_ms)
            self._times[level] = (
                new if old is None else tuple((1 - EWMA) * o + EWMA * n for o, n in zip(old, new))
            )
            if self.controller is not None:
                self.controller.observe(msg.payload_bytes + self._overhead, msg.transfer_ms)

    def _report(self) -> None:
        with self._ctl_lock:
            self._report_locked()

    def _report_locked(self) -> None:
        snap = self.stats.snapshot(time.monotonic())
        stats = link_stats_msg(snap, self.get_clock().now().to_msg(), self.get_name())
        stats.rate_level = int(self.codec.quality)
        stats.rate_control = "budget" if self.controller is not None else "fixed"
        est = self.controller.estimator if self.controller is not None else None
        stats.link_mbps_estimate = est.throughput_mbps if est is not None else math.nan
        stats.link_delay_ms_estimate = est.delay_ms if est is not None else math.nan
        self._stats_pub.publish(stats)
        level = WARN if snap["drops"] else OK
        self._diag.publish(
            level,
            f"{snap['frames']} results in window, {snap['drops']} drops",
            {
                "lifecycle": "active",
                "images_in": self.images_in,
                "latents_sent": self._seq,
                "skipped": self.stats.skipped,
                "frames_lost": self.frames_lost,
                "queue_policy": self.cfg.queue_policy,
                "frames_waiting": self._worker.waiting + int(self._worker.busy)
                if self._worker is not None
                else 0,
                "max_in_flight": self.window.limit,
                "in_flight": self.window.out,
                "in_flight_expired": self.window.expired,
                "in_flight_timeout_ms": self.window.timeout_ms,
                "stale_skipped": self.stale_skipped,
                "frame_period_ms": self._period_s * 1e3,
                "codec": self.codec.name,
                "quality": self.codec.quality,
                "rate_control": stats.rate_control,
                "link_mbps_estimate": stats.link_mbps_estimate,
                "link_delay_ms_estimate": stats.link_delay_ms_estimate,
                **(
                    {
                        "frames_pending": self.controller.pending,
                        "frames_late": self.controller.late,
                    }
                    if self.controller is not None
                    else {}
                ),
                "input": self.cfg.input,
                "round_trip_p50_ms": snap["latency_p50_ms"],
                "drops": snap["drops"],
            },
        )


def main(args: list[str] | None = None) -> int:
    return run_node(EdgeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
