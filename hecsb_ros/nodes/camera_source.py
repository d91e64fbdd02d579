"""hecsb_camera_source: publishes camera frames from a data set, folder, video or camera.

Topics: ``image_raw`` (sensor_msgs/Image, best effort) and/or, with ``output: compressed`` or
``both``, ``image_raw/compressed`` (sensor_msgs/CompressedImage, JPEG or PNG with the format string
of ROS's compressed image transport); for data sets also ``image_raw/ground_truth``
(hecsb_ros/GroundTruth, reliable), sent just before each image. A frame is stamped when it is read
from its source, in the timer tick that publishes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from hecsb_ros.core.sources import Frame, open_source
from hecsb_ros.msg import GroundTruth
from hecsb_ros.nodes.diagnostics import OK, Diagnostics
from hecsb_ros.nodes.entry import run_node
from hecsb_ros.nodes.parameters import declare_parameters, read_config
from hecsb_ros.nodes.qos import image_qos, truth_qos
from hecsb_ros.nodes.conversions import array_to_compressed_msg, array_to_image_msg
from hecsb_ros.params import CAMERA_SOURCE


@dataclass(frozen=True)
class CameraConfig:
    source: str
    dataset: str
    split: str
    path: str
    device_index: int
    rate_hz: float
    frames: int
    loop: bool
    start_index: int
    frame_id: str
    wait_for_subscribers_s: float
    wait_for_topics: str
    qos_depth: int
    output: str
    compressed_format: str
    jpeg_quality: int
    png_level: int


class CameraSource(Node):
    #: run_node warns when the Fast DDS profile is not set: large frames from here would be lost
    publishes_frames = True

    def __init__(self, **node_kwargs) -> None:
        super().__init__("hecsb_camera_source", **node_kwargs)
        declare_parameters(self, CAMERA_SOURCE)
        self.cfg = read_config(self, CAMERA_SOURCE, CameraConfig)
        cfg = self.cfg
        # Fail fast on a missing or empty source: read one frame, then open the source again, so
        # that every published frame is read (and stamped) in the tick that publishes it.
        probe = self._open()
        first = next(probe, None)
        close = getattr(probe, "close", None)
        if close is not None:
            close()
        if first is None:
            raise ValueError(
                f"source {cfg.source!r} produced no frame; check the 'source'/'path' parameters"
            )
        self._frames = self._open()
        qos = image_qos(cfg.qos_depth)
        self._pub = (
            self.create_publisher(Image, "image_raw", qos)
            if cfg.output in ("raw", "both")
            else None
        )
        self._cpub = (
            self.create_publisher(CompressedImage, "image_raw/compressed", qos)
            if cfg.output in ("compressed", "both")
            else None
        )
        self._gt_pub = self.create_publisher(GroundTruth, "image_raw/ground_truth", truth_qos())
        self._diag = Diagnostics(self)
        self.sent = 0
        self._started = time.monotonic()
        self._waiting = True
        self._wait_topics = [
            self.resolve_topic_name(t.strip()) for t in cfg.wait_for_topics.split(",") if t.strip()
        ]
        self._timer = self.create_timer(1.0 / cfg.rate_hz, self._tick)
        self._diag_timer = self.create_timer(1.0, self._report)
        self.add_on_set_parameters_callback(self._on_rate)
        topics = ", ".join(p.topic_name for p in (self._pub, self._cpub) if p is not None)
        self.get_logger().info(f"publishing {cfg.source} frames at {cfg.rate_hz} Hz on {topics}")

    def _open(self) -> Iterator[Frame]:
        cfg = self.cfg
        return open_source(
            cfg.source,
            cfg.dataset,
            cfg.split,
            cfg.path,
            cfg.device_index,
            cfg.start_index,
            cfg.loop,
        )

    def _on_rate(self, changes):
        from rcl_interfaces.msg import SetParametersResult

        for c in changes:
            if c.name == "rate_hz" and isinstance(c.value, float) and c.value > 0:
                self._timer.cancel()
                self._timer = self.create_timer(1.0 / c.value, self._tick)
        return SetParametersResult(successful=True)

    def _subscribed(self) -> bool:
        return any(
            p is not None and p.get_subscription_count() > 0 for p in (self._pub, self._cpub)
        )

    def _tick(self) -> None:
        cfg = self.cfg
        if self._waiting:
            # Discovery takes up to a few seconds: do not publish into the void.
            ready = self._subscribed() and all(
                self.count_subscribers(t) > 0 for t in self._wait_topics
            )
            if not ready and time.monotonic() - self._started < cfg.wait_for_subscribers_s:
                return
            self._waiting = False
        if cfg.frames and self.sent >= cfg.frames:
            self._stop()
            return
        frame = next(self._frames, None)
        stamp = self.get_clock().now()  # capture time: when the frame was read from its source
        if frame is None:
            self._stop()
            return
        header = Header(stamp=stamp.to_msg(), frame_id=cfg.frame_id)
        if frame.label >= 0:
            self._gt_pub.publish(GroundTruth(header=header, class_id=frame.label))
        if self._pub is not None:
            self._pub.publish(array_to_image_msg(frame.image, frame.encoding, header))
        if self._cpub is not None:
            quality = cfg.jpeg_quality if cfg.compressed_format == "jpeg" else cfg.png_level
            self._cpub.publish(
                array_to_compressed_msg(
                    frame.image, frame.encoding, header, cfg.compressed_format, quality
                )
            )
        self.sent += 1

    def _stop(self) -> None:
        self._timer.cancel()
        self.get_logger().info(f"done after {self.sent} frames")

    def _report(self) -> None:
        self._diag.publish(
            OK,
            "publishing" if not self._waiting else "waiting for subscribers",
            {
                "frames_sent": self.sent,
                "source": self.cfg.source,
                "rate_hz": self.cfg.rate_hz,
                "output": self.cfg.output,
            },
        )


def main(args: list[str] | None = None) -> int:
    return run_node(CameraSource, args)


if __name__ == "__main__":
    raise SystemExit(main())
