"""hecsb_camera_source: publishes sensor_msgs/Image from a data set, folder, video or camera.

Topics: ``image_raw`` (sensor_msgs/Image, best effort) and, for data sets, ``image_raw/ground_truth``
(hecsb_ros/GroundTruth, reliable), sent just before each image.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from hecsb_ros.core.sources import open_source
from hecsb_ros.msg import GroundTruth
from hecsb_ros.nodes.common import OK, Diagnostics, declare_parameters, image_qos, read_config, reliable_qos, run_node
from hecsb_ros.nodes.conversions import array_to_image_msg
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


class CameraSource(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("hecsb_camera_source", **node_kwargs)
        declare_parameters(self, CAMERA_SOURCE)
        self.cfg = read_config(self, CAMERA_SOURCE, CameraConfig)
        cfg = self.cfg
        self._frames = open_source(cfg.source, cfg.dataset, cfg.split, cfg.path, cfg.device_index,
                                   cfg.start_index, cfg.loop)
        self._next = next(self._frames, None)  # fail fast on a missing source
        if self._next is None:
            raise ValueError(f"source {cfg.source!r} produced no frame")
        self._pub = self.create_publisher(Image, "image_raw", image_qos(cfg.qos_depth))
        self._gt_pub = self.create_publisher(GroundTruth, "image_raw/ground_truth", reliable_qos(50))
        self._diag = Diagnostics(self)
        self.sent = 0
        self._started = time.monotonic()
        self._waiting = True
        self._wait_topics = [self.resolve_topic_name(t.strip()) for t in cfg.wait_for_topics.split(",") if t.strip()]
        self._timer = self.create_timer(1.0 / cfg.rate_hz, self._tick)
        self._diag_timer = self.create_timer(1.0, self._report)
        self.add_on_set_parameters_callback(self._on_rate)
        self.get_logger().info(f"publishing {cfg.source} frames at {cfg.rate_hz} Hz on {self._pub.topic_name}")

    def _on_rate(self, changes):
        from rcl_interfaces.msg import SetParametersResult

        for c in changes:
            if c.name == "rate_hz" and isinstance(c.value, float) and c.value > 0:
                self._timer.cancel()
                self._timer = self.create_timer(1.0 / c.value, self._tick)
        return SetParametersResult(successful=True)

    def _tick(self) -> None:
        cfg = self.cfg
        if self._waiting:
            # Discovery takes up to a few seconds: do not publish into the void.
            ready = self._pub.get_subscription_count() > 0 and \
                all(self.count_subscribers(t) > 0 for t in self._wait_topics)
            if not ready and time.monotonic() - self._started < cfg.wait_for_subscribers_s:
                return
            self._waiting = False
        frame = self._next
        if frame is None or (cfg.frames and self.sent >= cfg.frames):
            self._timer.cancel()
            self.get_logger().info(f"done after {self.sent} frames")
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=cfg.frame_id)
        if frame.label >= 0:
            self._gt_pub.publish(GroundTruth(header=header, class_id=frame.label))
        self._pub.publish(array_to_image_msg(frame.image, frame.encoding, header))
        self.sent += 1
        self._next = next(self._frames, None)

    def _report(self) -> None:
        self._diag.publish(OK, "publishing" if not self._waiting else "waiting for subscribers",
                           {"frames_sent": self.sent, "source": self.cfg.source, "rate_hz": self.cfg.rate_hz})


def main(args: list[str] | None = None) -> int:
    return run_node(CameraSource, args)


if __name__ == "__main__":
    raise SystemExit(main())
