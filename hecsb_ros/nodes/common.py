"""Shared node plumbing: QoS profiles, parameter declaration, drop counting, diagnostics, main()."""
from __future__ import annotations

import dataclasses
import math
import os
import sys
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from hecsb_ros.core.codecs import Codec, CodecSettings, create_codec, load_codec_modules
from hecsb_ros.core.stats import LinkStatsAccumulator
from hecsb_ros.graph import FASTDDS_PROFILE_VAR, fastdds_profile_problem
from hecsb_ros.params import Param, check_value


# -- QoS ----------------------------------------------------------------------------------------
def image_qos(depth: int) -> QoSProfile:
    """Camera frames: best effort, keep last ``depth`` (stale frames are dropped, never queued)."""
    qos = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability")},
                     history=HistoryPolicy.KEEP_LAST, depth=depth)
    return qos


def reliable_qos(depth: int) -> QoSProfile:
    """Latents, results and statistics: reliable, keep last ``depth``."""
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                      history=HistoryPolicy.KEEP_LAST, depth=depth)


def latched_qos() -> QoSProfile:
    """Static metadata (vision_msgs/VisionInfo, LabelInfo): reliable, transient local, keep last 1, so
    that a subscriber that joins later still gets the last message."""
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                      history=HistoryPolicy.KEEP_LAST, depth=1)


# -- parameters ---------------------------------------------------------------------------------
def _descriptor(p: Param) -> ParameterDescriptor:
    d = ParameterDescriptor(description=p.description, read_only=p.read_only)
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if isinstance(p.default, bool):
        return d
    if isinstance(p.default, int) and p.min is not None and p.max is not None:
        d.integer_range = [IntegerRange(from_value=int(p.min), to_value=int(p.max), step=1)]
    elif isinstance(p.default, float) and p.min is not None and p.max is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.min), to_value=float(p.max), step=0.0)]
    return d


def declare_parameters(node: Node, params: tuple[Param, ...]) -> dict[str, Any]:
    """Declare ``params`` with descriptors, validate the start-up values, return them by name.

    Raises ValueError (fail fast) with every invalid value and the fix; installs a callback that
    rejects invalid runtime changes with a reason.
    """
    by_name = {p.name: p for p in params}
    values: dict[str, Any] = {}
    problems = []
    for p in params:
        value = node.declare_parameter(p.name, p.default, _descriptor(p)).value
        if isinstance(p.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        reason = check_value(p, value)
        if reason:
            problems.append(reason)
        values[p.name] = value
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))

    def on_set(changes: list[rclpy.parameter.Parameter]) -> SetParametersResult:
        for change in changes:
            p = by_name.get(change.name)
            if p is None:
                continue
            reason = check_value(p, change.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


@dataclasses.dataclass(frozen=True)
class CodecNodeConfig:
    """Parameters every codec-running node (edge, server) reads; see ``hecsb_ros.params``."""

    codec: str
    quality: int
    checkpoint: str
    teacher: str
    plugins: str
    device: str
    threads: int
    onednn: bool
    resize: str
    stats_period_s: float

    def codec_settings(self) -> CodecSettings:
        """The codec's settings from these parameters."""
        return CodecSettings(quality=self.quality, checkpoint=self.checkpoint, device=self.device,
                             threads=self.threads, onednn=self.onednn, teacher=self.teacher, resize=self.resize)

    def create_codec(self) -> Codec:
        """Import the ``plugins`` modules, then build the configured codec (ValueError says why not)."""
        load_codec_modules([m.strip() for m in self.plugins.split(",") if m.strip()])
        return create_codec(self.codec, self.codec_settings())


def read_config(node: Node, params: tuple[Param, ...], cls: type) -> Any:
    """Current values of ``params`` as an instance of the frozen dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{p.name: node.get_parameter(p.name).value for p in params if p.name in names})


# -- bad input ----------------------------------------------------------------------------------
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
            throttle_duration_sec=self._throttle_s)


# -- diagnostics --------------------------------------------------------------------------------
class Diagnostics:
    """Publishes one DiagnosticStatus for the node on ``/diagnostics``."""

    def __init__(self, node: Node, hardware_id: str = "") -> None:
        self._node = node
        self._hw = hardware_id
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos(10))

    def publish(self, level: bytes, message: str, values: dict[str, Any]) -> None:
        status = DiagnosticStatus(level=level, name=f"hecsb_ros: {self._node.get_fully_qualified_name()}",
                                  message=message, hardware_id=self._hw)
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        arr.status = [status]
        self._pub.publish(arr)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def check_fastdds_profile(node: Node, publishes_frames: bool = False) -> None:
    """Log an error when ``FASTDDS_DEFAULT_PROFILES_FILE`` names a missing file (Fast DDS then runs on
    its defaults and large frames are lost); with ``publishes_frames`` also warn when it is unset."""
    problem = fastdds_profile_problem(os.environ)
    if problem is None:
        return
    if os.environ.get(FASTDDS_PROFILE_VAR):
        node.get_logger().error(problem)
    elif publishes_frames:
        node.get_logger().warning(problem)


# -- entry point --------------------------------------------------------------------------------
def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C/SIGTERM; a start-up error exits with code 2."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        check_fastdds_profile(node, bool(getattr(node, "publishes_frames", False)))
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, FileNotFoundError) as exc:
        print(f"[hecsb_ros] cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        if node is not None:
            shutdown = getattr(node, "on_shutdown", None)
            if shutdown is not None:
                shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0
