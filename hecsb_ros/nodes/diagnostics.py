"""What a node reports: its status on ``/diagnostics``, rejected input counted per reason, and a
Fast DDS profile setting that would lose camera frames."""

from __future__ import annotations

import math
import os
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from hecsb_ros.core.stats import LinkStatsAccumulator
from hecsb_ros.graph import fastdds_profile_problem, profile_setting
from hecsb_ros.nodes.qos import reliable_qos

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Diagnostics:
    """Publishes one DiagnosticStatus for the node on ``/diagnostics``."""

    def __init__(self, node: Node, hardware_id: str = "") -> None:
        self._node = node
        self._hw = hardware_id
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos(10))

    def publish(self, level: bytes, message: str, values: dict[str, Any]) -> None:
        status = DiagnosticStatus(
            level=level,
            message=message,
            hardware_id=self._hw,
            name=f"hecsb_ros: {self._node.get_fully_qualified_name()}",
        )
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        arr.status = [status]
        self._pub.publish(arr)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


class DropCounter:
    """Counts rejected input per reason in ``stats`` and logs it, throttled per reason."""

    def __init__(self, node: Node, stats: LinkStatsAccumulator, throttle_s: float = 5.0) -> None:
        self._node = node
        self._stats = stats
        self._throttle_s = throttle_s

    def __call__(self, reason: str, detail: str) -> None:
        self._stats.drop(reason)
        self._node.get_logger().warning(
            f"dropped input ({reason}): {detail} [{self._stats.drop_counts[reason]} so far]",
            throttle_duration_sec=self._throttle_s,
        )


def check_fastdds_profile(node: Node, publishes_frames: bool = False) -> None:
    """Log an error when the Fast DDS profile variable names a missing file (Fast DDS then runs on
    its defaults and large frames are lost); with ``publishes_frames`` also warn when it is
    unset."""
    problem = fastdds_profile_problem(os.environ)
    if problem is None:
        return
    if profile_setting(os.environ):
        node.get_logger().error(problem)
    elif publishes_frames:
        node.get_logger().warning(problem)
