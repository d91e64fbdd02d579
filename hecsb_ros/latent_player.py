"""Recorded latents played back as a fleet of robots: load for sizing one server.

A real fleet's edges run on the robots' own computers; on a benchmark machine the N edge processes
would take the CPU the server is being measured with. :func:`record_latents` runs a codec's edge
half once on real frames (what the robots' camera sources play) and keeps the ``CompressedLatent``
messages; :class:`LatentPlayer` publishes them on ``/<robot>/latent`` at each robot's frame rate,
restamped at publish time (so capture -> result latency starts when the latent leaves the robot:
the robot's own edge time is not in it), each robot with its own sequence counter and its own timer
started at a random phase, as unsynchronised cameras are. A frame's label, when its source knows
it, goes first on ``/<robot>/image_raw/ground_truth`` (as a camera source sends it), so the server
and the bench's monitor score the results.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from itertools import islice
from typing import Any, Sequence


@dataclass(frozen=True)
class Recording:
    """The edge half's output for consecutive frames (with their labels) and the encoder that made
    them."""

    codec: str
    model_id: str
    rate_level: int
    frames: tuple[Any, ...]  # EncodedFrame
    labels: tuple[int, ...]


def record_latents(
    codec_name: str, teacher: str, source: str, path: str, frames: int, quality: int = -1
) -> Recording:
    """The edge half of ``codec_name`` (for ``teacher``) run on the first ``frames`` frames of the
    camera source a robot of the fleet would play (``source``/``path`` as the launch arguments give
    them)."""
    from hecsb_ros.core.codecs.base import CodecSettings, create_codec
    from hecsb_ros.core.sources import open_source
    from hecsb_ros.graph import split_inference_nodes

    camera = next(
        s
        for s in split_inference_nodes(
            codec=codec_name, source=source, path=path, teacher=teacher, link="false"
        )
        if s.role == "camera_source"
    ).parameters
    codec = create_codec(
        codec_name or "hecsb", CodecSettings(quality=quality, teacher=teacher, threads=1)
    )
    played = list(
        islice(open_source(camera["source"], path=camera.get("path", ""), loop=True), frames)
    )
    if not played:
        raise RuntimeError(f"source {camera['source']} {camera.get('path', '')} gave no frames")
    return Recording(
        codec.name,
        codec.model_id,
        int(codec.quality),
        tuple(codec.encode(f.image, f.encoding) for f in played),
        tuple(f.label for f in played),
    )


class LatentPlayer:
    """Publishes a :class:`Recording` on ``/<robot>/latent`` for each robot at ``rate_hz`` (own
    thread)."""

    def __init__(
        self,
        recording: Recording,
        robots: Sequence[str],
        rate_hz: float,
        context: Any = None,
        seed: int = 0,
    ) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from hecsb_ros.msg import CompressedLatent, GroundTruth
        from hecsb_ros.nodes.qos import reliable_qos, truth_qos

        self.recording, self.robots, self.rate_hz = recording, tuple(robots), rate_hz
        self.node = rclpy.create_node("fleet_bench_player", context=context)
        self.pubs = {
            r: self.node.create_publisher(CompressedLatent, f"/{r}/latent", reliable_qos(10))
            for r in self.robots
        }
        self.truth_pubs = {
            r: self.node.create_publisher(GroundTruth, f"/{r}/image_raw/ground_truth", truth_qos())
            for r in self.robots
        }
        self.sent = {r: 0 for r in self.robots}
        self._rng = random.Random(seed)
        self._timers: list[Any] = []
        self._executor = SingleThreadedExecutor(context=self.node.context)
        self._executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, name="latent_player", daemon=True)
        self._thread.start()

    def subscribed(self) -> bool:
        """Whether every robot's latent topic has a subscriber (the server)."""
        return all(pub.get_subscription_count() > 0 for pub in self.pubs.values())

    def start(self) -> None:
        """Start every robot's timer, each at a random phase of the frame period."""
        period = 1.0 / self.rate_hz
        for robot in self.robots:
            time.sleep(self._rng.uniform(0.0, period / len(self.robots)))
            self._timers.append(self.node.create_timer(period, lambda r=robot: self._publish(r)))

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _publish(self, robot: str) -> None:
        from std_msgs.msg import Header

        from hecsb_ros.msg import GroundTruth
        from hecsb_ros.nodes.conversions import latent_msg, ns_to_time

        rec, seq, now = self.recording, self.sent[robot], time.time_ns()
        frame = rec.frames[seq % len(rec.frames)]
        header = Header(stamp=ns_to_time(now), frame_id=robot)
        label = rec.labels[seq % len(rec.labels)]
        if label >= 0:
            self.truth_pubs[robot].publish(GroundTruth(header=header, class_id=label))
        self.pubs[robot].publish(
            latent_msg(
                frame,
                header,
                seq,
                rec.codec,
                rec.model_id,
                rec.rate_level,
                now,
                sum(frame.timings_ms.values()),
            )
        )
        self.sent[robot] = seq + 1

    def _spin(self) -> None:
        from hecsb_ros.monitor import spin_while

        spin_while(self._executor, lambda: self._running)

    def destroy(self) -> None:
        self.stop()
        self._running = False
        self._thread.join(timeout=2.0)
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
