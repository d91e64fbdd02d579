"""hecsb_server: ``CompressedLatent`` -> validate -> codec server half -> ``classification``.

Subscribes ``latent`` (reliable) as raw bytes, so the serialized size is exact and bytes that do
not deserialize are counted instead of crashing; publishes ``classification`` and ``link_stats``.
For the accuracy in ``link_stats`` it also subscribes ``image_raw/ground_truth`` (a data set's true
classes, a benchmark-only side channel: each result is scored by its header, latents carry no
labels). Where ``vision_msgs`` is installed it also publishes ``classification/vision``
(vision_msgs/Classification, header = the camera frame's) and, latched,
``classification/vision_info`` (vision_msgs/VisionInfo) and ``classification/label_info``
(vision_msgs/LabelInfo: the class names).

Fresh results first (``queue_policy: newest``, the default): the subscription callback checks each
latent as it arrives (bad input is counted there, sequence gaps too) and keeps only the newest of
each robot; a worker thread classifies it when free, so a result never waits behind older frames. A
latent replaced while waiting is counted as ``skipped`` (LinkStats drop_reasons, ``/diagnostics``),
not as a drop. Times: ``transfer_ms`` = edge send -> the middleware's receive timestamp (the link),
``server_wait_ms`` = that receive -> the network call (the executor's queue, the newest slot, a
micro-batch), ``server_total_ms`` = that receive -> publish (the wait and the compute).

A managed (lifecycle) node (:class:`~hecsb_ros.nodes.lifecycle.ManagedCodecNode`): configure
loads the codec and creates the publishers (the latched class database is sent then), activate
subscribes ``latent``, deactivate unsubscribes and keeps the codec.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from rclpy.serialization import deserialize_message
from std_msgs.msg import Header

from hecsb_ros.core.codecs import validate_payload
from hecsb_ros.core.codecs.base import decode_or_error
from hecsb_ros.core.codecs.bank import CodecBank
from hecsb_ros.core.payload import PayloadError, check_timings
from hecsb_ros.core.results import classify
from hecsb_ros.core.stats import (
    FrameRecord,
    GroundTruthBook,
    LinkStatsAccumulator,
    SequenceTracker,
)
from hecsb_ros.graph import robot_namespaces
from hecsb_ros.msg import ClassificationResult, CompressedLatent, GroundTruth, LinkStats
from hecsb_ros.nodes.diagnostics import OK, WARN, DropCounter
from hecsb_ros.nodes.entry import run_node
from hecsb_ros.nodes.lifecycle import CodecNodeConfig, ManagedCodecNode
from hecsb_ros.nodes.qos import latched_qos, reliable_qos
from hecsb_ros.nodes.worker import NewestWorker
from hecsb_ros.nodes.conversions import (
    label_info_msg,
    latent_payload,
    link_stats_msg,
    result_msg,
    time_to_ns,
    vision_classification_msg,
    vision_info_msg,
    vision_msgs_module,
)
from hecsb_ros.params import SERVER


@dataclass(frozen=True)
class ServerConfig(CodecNodeConfig):
    top_k: int
    max_payload_bytes: int
    max_decoded_elements: int
    qos_depth: int
    all_levels: bool
    robots: str
    queue_policy: str
    max_batch: int
    max_wait_ms: float


@dataclass
class Robot:
    """One robot the server serves: its namespace ('' = the node's own topics), its result and
    statistics publishers, its own LinkStats, sequence tracking and ground truth."""

    name: str
    pub: Any
    stats_pub: Any
    vision_pub: Any
    stats: LinkStatsAccumulator
    seq: SequenceTracker
    received: int = 0
    labels: GroundTruthBook = field(default_factory=GroundTruthBook)

    def topic(self, name: str) -> str:
        return f"{self.name}/{name}" if self.name else name


@dataclass
class Pending:
    """A validated latent waiting to be classified (alone or in its micro-batch)."""

    robot: Robot
    msg: Any
    data: bytes
    raw_bytes: int
    codec: Any
    # the middleware's receive timestamp (system clock, ns): link time ends, waiting starts
    recv_ns: int


def robot_names(text: str) -> list[str]:
    """``"robot1, /robot2/"`` -> ``["robot1", "robot2"]``; empty -> ``[""]`` (the node's own
    topics)."""
    return robot_namespaces(text) or [""]


class ServerNode(ManagedCodecNode):
    def __init__(self, **node_kwargs) -> None:
        self._worker: NewestWorker | None = None
        super().__init__("hecsb_server", SERVER, ServerConfig, **node_kwargs)

    def _setup(self) -> None:
        # Every rate level (all_levels): each latent is decoded by the level its model id names.
        self.bank = CodecBank(
            self.cfg.codec,
            self.cfg.codec_settings(),
            default=self.codec,
            all_levels=self.cfg.all_levels,
        )
        self.stats = LinkStatsAccumulator()  # every robot's frames and drops together
        self.drop = DropCounter(self, self.stats)
        self._seq = SequenceTracker()
        self.received = 0
        self._vision = vision_msgs_module()
        if self._vision is None:
            self.get_logger().info(
                "vision_msgs is not installed: classification/vision, "
                "classification/vision_info "
                "and classification/label_info are not published"
            )
        self.robots = [self._robot(name) for name in robot_names(self.cfg.robots)]
        self._pub, self._stats_pub = self.robots[0].pub, self.robots[0].stats_pub
        self._vision_pub = self.robots[0].vision_pub
        self._pending: list[Pending] = []
        self._batch_timer = None
        self.batches = 0  # network calls of micro-batches (max_batch > 1)

    def _robot(self, name: str) -> Robot:
        """Publishers and statistics of one robot ('' = the node's own topics, statistics
        shared)."""
        own = name == ""
        robot = Robot(
            name,
            None,
            None,
            None,
            self.stats if own else LinkStatsAccumulator(),
            self._seq if own else SequenceTracker(),
        )
        robot.pub = self._publisher(
            ClassificationResult, robot.topic("classification"), reliable_qos(50)
        )
        robot.stats_pub = self._publisher(LinkStats, robot.topic("link_stats"), reliable_qos(10))
        robot.vision_pub = self._vision_outputs(robot) if self._vision is not None else None
        return robot

    def _start(self) -> None:
        cfg = self.cfg
        if cfg.queue_policy == "newest":
            self._worker = NewestWorker(
                "server_worker",
                self._classify,
                self._skipped,
                self._worker_error,
                max_items=cfg.max_batch,
                max_wait_s=cfg.max_wait_ms / 1e3,
                keys=lambda: len(self.robots),
            )
        for robot in self.robots:
            self._subscribe(
                GroundTruth,
                robot.topic("image_raw/ground_truth"),
                lambda msg, r=robot: r.labels.add(
                    time_to_ns(msg.header.stamp), msg.header.frame_id, msg.class_id
                ),
                reliable_qos(50),
            )
            # (raw bytes, MessageInfo): the middleware's receive timestamp separates link time from
            # waiting here
            self._subscribe(
                CompressedLatent,
                robot.topic("latent"),
                lambda raw, info, r=robot: self._arrive(raw, info, r),
                reliable_qos(cfg.qos_depth),
                raw=True,
            )
        self._timer(cfg.stats_period_s, self._report)
        # fifo batches: one-shot, started by a batch's first latent, cancelled by its flush
        if cfg.max_batch > 1:
            self._batch_timer = self._timer(max(cfg.max_wait_ms, 0.01) / 1e3, self._flush)
            self._batch_timer.cancel()

    def _stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:  # deactivate: what already arrived is answered, not lost
            worker.stop()
        if getattr(self, "_pending", None):
            self._flush()
        super()._stop()
        self._batch_timer = None

    def _ready_line(self) -> str:
        batching = (
            f"; micro-batches of up to {self.cfg.max_batch} within {self.cfg.max_wait_ms:g} ms"
            if self.cfg.max_batch > 1
            else ""
        )
        fleet = (
            f" to robots {', '.join(r.name for r in self.robots)}" if self.robots[0].name else ""
        )
        return (
            f"serving codec {self.codec.name} (quality {self.codec.quality}, "
            f"model {self.codec.model_id}; {self.bank.describe()}{batching}) on "
            f"{self.cfg.device}{fleet}"
        )

    def _vision_outputs(self, robot: Robot):
        """Publish the latched class database (LabelInfo + VisionInfo); return the Classification
        publisher."""
        vision = self._vision
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        classes = self.codec.classes
        label_pub = self._publisher(
            vision.LabelInfo, robot.topic("classification/label_info"), latched_qos()
        )
        info_pub = self._publisher(
            vision.VisionInfo, robot.topic("classification/vision_info"), latched_qos()
        )
        label_pub.publish(label_info_msg(vision, header, classes))
        method = (
            f"hecsb_ros split inference: codec {self.codec.name}, quality "
            f"{self.codec.quality}, "
            f"model {self.codec.model_id}"
        )
        info_pub.publish(vision_info_msg(vision, header, method, label_pub.topic_name, classes))
        return self._publisher(
            vision.Classification, robot.topic("classification/vision"), reliable_qos(50)
        )

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _drop(self, robot: Robot, reason: str, detail: str) -> None:
        self.drop(reason, f"{robot.name}: {detail}" if robot.name else detail)
        if robot.stats is not self.stats:
            robot.stats.drop(reason)

    def _arrive(self, raw: bytes, info: Any, robot: Robot) -> None:
        """Subscription callback: check the latent now; newest policy: keep it as its robot's
        newest."""
        recv_ns = int(info.get("received_timestamp", 0) or 0) if isinstance(info, dict) else 0
        if self._worker is None:
            self._on_latent(raw, robot, recv_ns)
            return
        pending = self._accept(raw, robot, recv_ns)
        worker = self._worker
        if pending is not None and worker is not None:
            worker.put(robot.name, pending)

    def _skipped(self, _key: str, old: Pending) -> None:
        self.stats.skip()
        if old.robot.stats is not self.stats:
            old.robot.stats.skip()

    def _worker_error(self, exc: BaseException) -> None:
        self.get_logger().error(
            f"latent worker: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0
        )

    def _accept(self, raw: bytes, robot: Robot, recv_ns: int = 0) -> Pending | None:
        """Check one latent as it arrives: bad input is dropped and counted, lost frames (sequence
        gaps) are counted; returns what is to be classified, or None."""
        recv_ns = recv_ns or time.time_ns()
        self.received += 1
        robot.received += 1
        if len(raw) > self._param("max_payload_bytes") + 65536:
            self._drop(robot, "too_large", f"message of {len(raw)} B above the cap")
            return None
        try:
            msg = deserialize_message(raw, CompressedLatent)
        except Exception as exc:  # noqa: BLE001 - any malformed CDR must be survivable
            self._drop(robot, "bad_message", f"cannot deserialize {len(raw)} B: {exc}")
            return None
        data = latent_payload(msg)
        try:
            check_timings(
                (
                    msg.edge_preprocess_ms,
                    msg.edge_encode_ms,
                    msg.edge_entropy_ms,
                    msg.edge_total_ms,
                )
            )
            codec = self.bank.for_payload(msg.codec, msg.model_id, msg.rate_level)
            validate_payload(
                codec,
                msg.codec,
                msg.model_id,
                codec.quality,
                tuple(msg.shape),
                len(data),
                self._param("max_payload_bytes"),
                self._param("max_decoded_elements"),
            )
        except PayloadError as exc:
            self._drop(robot, exc.reason, f"seq {msg.sequence}: {exc.detail}")
            return None
        # Gaps are counted on arrival, in order: a latent skipped later for a newer one is no gap.
        # Each robot numbers its own frames; an implausible jump is a reset (SequenceTracker), not
        # lost frames.
        gap = robot.seq.update(int(msg.sequence), time.monotonic())
        if gap:
            self.stats.drop("sequence_gap", gap)
            if robot.stats is not self.stats:
                robot.stats.drop("sequence_gap", gap)
        return Pending(robot, msg, data, len(raw), codec, recv_ns)

    def _on_latent(self, raw: bytes, robot: Robot | None = None, recv_ns: int = 0) -> None:
        """Check and classify one latent now, in arrival order (``queue_policy: fifo``;
        micro-batches through the batch timer)."""
        pending = self._accept(raw, robot or self.robots[0], recv_ns)
        if pending is None:
            return
        if self.cfg.max_batch <= 1:
            self._classify([pending])
            return
        self._pending.append(pending)
        if len(self._pending) >= self.cfg.max_batch:
            self._flush()
        elif len(self._pending) == 1:
            self._batch_timer.reset()

    def _flush(self) -> None:
        """Classify the latents waiting for the batch timer (``queue_policy: fifo``)."""
        if self._batch_timer is not None:
            self._batch_timer.cancel()
        pending, self._pending = self._pending, []
        self._classify(pending)

    def _classify(self, pending: list[Pending]) -> None:
        """Classify latents: one alone, or one :meth:`Codec.decode_batch` per codec (rate
        level)."""
        if len(pending) == 1 and self.cfg.max_batch <= 1:
            item = pending[0]
            start_ns = time.time_ns()
            decoded = decode_or_error(item.codec, item.data, tuple(int(d) for d in item.msg.shape))
            self._finish(item, decoded, wait_ms=(start_ns - item.recv_ns) / 1e6)
            return
        by_codec: dict[int, list[Pending]] = {}
        for item in pending:
            by_codec.setdefault(id(item.codec), []).append(item)
        for group in by_codec.values():
            self.batches += 1
            start_ns = time.time_ns()
            try:
                results = group[0].codec.decode_batch(
                    [(p.data, tuple(int(d) for d in p.msg.shape)) for p in group]
                )
            except Exception as exc:  # noqa: BLE001 - a codec bug must not stop the node
                results = [PayloadError("decode_error", f"{type(exc).__name__}: {exc}")] * len(
                    group
                )
            for item, result in zip(group, results):
                self._finish(item, result, wait_ms=(start_ns - item.recv_ns) / 1e6)

    def _finish(self, pending: Pending, decoded: Any, wait_ms: float = 0.0) -> None:
        """Publish the result of one latent (or count its decode error). ``wait_ms``: middleware
        receive -> its network call."""
        robot, msg, data, codec = pending.robot, pending.msg, pending.data, pending.codec
        if isinstance(decoded, PayloadError):
            self._drop(robot, decoded.reason, f"seq {msg.sequence}: {decoded.detail}")
            return
        cls = classify(decoded.logits, codec.classes, self._param("top_k"))
        transfer_ms = (pending.recv_ns - time_to_ns(msg.edge_sent)) / 1e6
        total_ms = (time.time_ns() - pending.recv_ns) / 1e6
        out = result_msg(
            msg,
            cls,
            len(data),
            transfer_ms,
            decoded.timings_ms.get("decode", math.nan),
            decoded.timings_ms.get("infer", math.nan),
            total_ms,
            decoded.batch,
            wait_ms,
        )
        robot.pub.publish(out)
        if robot.vision_pub is not None:
            robot.vision_pub.publish(vision_classification_msg(self._vision, msg.header, cls))
        # Plain integer arithmetic: Time.from_msg raises on a negative (hostile) stamp.
        latency_ms = (self.get_clock().now().nanoseconds - time_to_ns(msg.header.stamp)) / 1e6
        correct = robot.labels.correct(
            time_to_ns(msg.header.stamp), msg.header.frame_id, cls.class_id
        )
        record = FrameRecord(
            len(data),
            pending.raw_bytes,
            latency_ms,
            msg.edge_total_ms,
            transfer_ms,
            total_ms,
            correct,
        )
        self.stats.add(record)
        if robot.stats is not self.stats:
            robot.stats.add(record)

    def _report(self) -> None:
        now, stamp = time.monotonic(), self.get_clock().now().to_msg()
        per_robot = {}
        for robot in self.robots:
            robot_snap = robot.stats.snapshot(now)
            name = f"{self.get_name()}/{robot.name}" if robot.name else self.get_name()
            robot.stats_pub.publish(link_stats_msg(robot_snap, stamp, name))
            per_robot[robot.name] = robot_snap
        snap = per_robot[""] if list(per_robot) == [""] else self.stats.snapshot(now)
        level = WARN if snap["drops"] else OK
        self._diag.publish(
            level,
            f"{snap['frames']} frames in window, {snap['drops']} drops since start",
            {
                "lifecycle": "active",
                "received": self.received,
                "skipped": self.stats.skipped,
                "results": self.stats.frames_total,
                "sequence_resets": sum(r.seq.resets for r in self.robots),
                "queue_policy": self.cfg.queue_policy,
                "latents_waiting": self._worker.waiting + int(self._worker.busy)
                if self._worker is not None
                else 0,
                "codec": self.codec.name,
                "levels": self.bank.describe(),
                **({"micro_batches": self.batches} if self.cfg.max_batch > 1 else {}),
                **(
                    {f"{r.name}/results": r.stats.frames_total for r in self.robots}
                    if self.robots[0].name
                    else {}
                ),
                "kbit_per_s": snap["kbit_per_s"],
                "latency_p50_ms": snap["latency_p50_ms"],
                "accuracy": snap["accuracy"],
                "drops": snap["drops"],
            },
        )


def main(args: list[str] | None = None) -> int:
    return run_node(ServerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
