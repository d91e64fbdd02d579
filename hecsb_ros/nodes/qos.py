"""QoS profiles of the node set's topics (camera frames, latents and results, latched metadata)."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)


def image_qos(depth: int) -> QoSProfile:
    """Camera frames: best effort, keep last ``depth`` (stale frames are dropped, never queued)."""
    sensor = {k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability")}
    return QoSProfile(**sensor, history=HistoryPolicy.KEEP_LAST, depth=depth)


def reliable_qos(depth: int) -> QoSProfile:
    """Latents, results and statistics: reliable, keep last ``depth``."""
    return QoSProfile(
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
    )


def truth_qos() -> QoSProfile:
    """Ground truth (``image_raw/ground_truth``): reliable, transient local, keep last 100. A
    transient-local reader matched after the first frames (discovery between processes can take a
    second) is sent the classes of the last 100 frames when it matches, instead of missing them;
    volatile readers (the nodes, which match any publisher) are served as before."""
    return QoSProfile(
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
        history=HistoryPolicy.KEEP_LAST,
        depth=100,
    )


def latched_qos() -> QoSProfile:
    """Static metadata (vision_msgs/VisionInfo, LabelInfo): reliable, transient local, keep last
    1, so that a subscriber that joins later still gets the last message."""
    return QoSProfile(
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
    )
