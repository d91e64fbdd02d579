"""hecsb_link_emulator: relays ``latent_in`` -> ``latent_out`` shaped to a network profile.

Transfer time follows ``bytes * 8 / rate + delay (+ jitter)`` with a FIFO link (see
:mod:`hecsb_ros.core.link`). Messages are relayed as serialized bytes, unchanged.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time

from rclpy.node import Node
from rclpy.serialization import deserialize_message

from hecsb_ros.core.link import LinkShaper, RateSchedule, make_profile
from hecsb_ros.core.stats import LinkStatsAccumulator
from hecsb_ros.msg import CompressedLatent
from hecsb_ros.nodes.diagnostics import OK, WARN, Diagnostics, DropCounter
from hecsb_ros.nodes.entry import run_node
from hecsb_ros.nodes.parameters import declare_parameters
from hecsb_ros.nodes.qos import reliable_qos
from hecsb_ros.params import LINK_EMULATOR


class LinkEmulator(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("hecsb_link_emulator", **node_kwargs)
        self._values = declare_parameters(self, LINK_EMULATOR)
        self.shaper = LinkShaper(
            self._profile(self._values),
            seed=self._values["seed"],
            rate_schedule=self._schedule(self._values),
            start=time.monotonic(),
        )
        self.stats = LinkStatsAccumulator()
        self.drop = DropCounter(self, self.stats)
        self.relayed = 0
        self._heap: list[tuple[float, int, bytes]] = []
        self._counter = itertools.count()
        self._cv = threading.Condition()
        self._running = True
        self._pub = self.create_publisher(CompressedLatent, "latent_out", reliable_qos(50))
        self.create_subscription(
            CompressedLatent, "latent_in", self._on_latent, reliable_qos(50), raw=True
        )
        self.add_on_set_parameters_callback(self._on_change)
        self._diag = Diagnostics(self)
        self.create_timer(self._values["stats_period_s"], self._report)
        self._thread = threading.Thread(target=self._deliver, name="link_delivery", daemon=True)
        self._thread.start()
        if self._values["blackout_s"] > 0:
            self.blackout(self._values["blackout_s"])
        p = self.shaper.profile
        rate = (
            f"rate schedule {self._values['rate_schedule']} (Mbit/s:s)"
            if self.shaper.rate_schedule
            else f"{p.rate_mbps} Mbit/s"
        )
        self.get_logger().info(
            f"link profile {p.name}: {rate}, delay {p.delay_ms} ms, "
            f"jitter {p.jitter_ms} ms, loss {p.loss}"
        )

    @staticmethod
    def _schedule(v: dict) -> RateSchedule | None:
        return RateSchedule.parse(v["rate_schedule"]) if v["rate_schedule"].strip() else None

    @staticmethod
    def _profile(v: dict):
        return make_profile(
            v["profile"],
            v["rate_mbps"],
            v["delay_ms"],
            v["jitter_ms"],
            v["loss"],
            v["max_queue_ms"],
        )

    def _on_change(self, changes):
        from rcl_interfaces.msg import SetParametersResult

        values = dict(self._values)
        values.update({c.name: c.value for c in changes if c.name in values})
        try:
            profile = self._profile(values)
            schedule = self._schedule(values)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._values = values
        self.shaper.profile = profile
        if any(c.name == "rate_schedule" for c in changes):
            with self._cv:
                self.shaper.set_schedule(schedule, time.monotonic())
        for c in changes:
            if c.name == "blackout_s" and values["blackout_s"] > 0:
                self.blackout(values["blackout_s"])
        return SetParametersResult(successful=True)

    def _on_latent(self, raw: bytes) -> None:
        size = len(raw)
        if self._values["size_basis"] == "payload":
            try:
                size = len(deserialize_message(raw, CompressedLatent).data)
            except Exception as exc:  # noqa: BLE001
                self.drop("bad_message", f"cannot deserialize {len(raw)} B: {exc}")
                return
        with self._cv:
            if len(self._heap) >= self._values["max_pending"]:
                self.drop("queue_full", f"{len(self._heap)} frames already in the link")
                return
            deliver, reason = self.shaper.schedule(size, time.monotonic())
            if deliver is None:
                self.drop(reason, f"frame of {size} B")
                return
            heapq.heappush(self._heap, (deliver, next(self._counter), raw))
            self._cv.notify()

    def _deliver(self) -> None:
        while True:
            with self._cv:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = (
                        None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic())
                    )
                    self._cv.wait(timeout)
                if not self._running:
                    return
                _, _, raw = heapq.heappop(self._heap)
            self._pub.publish(raw)
            self.relayed += 1

    def blackout(self, duration_s: float) -> None:
        """Drop everything for ``duration_s`` seconds (a link outage); frames already in the link
        are kept."""
        with self._cv:
            self.shaper.blackout(time.monotonic(), duration_s)
        self.get_logger().warning(f"link blackout for {duration_s:.3f} s")

    def on_shutdown(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify()
        self._thread.join(timeout=1.0)

    def _report(self) -> None:
        level = WARN if self.stats.drops else OK
        self._diag.publish(
            level,
            f"relayed {self.relayed}, dropped {self.stats.drops}",
            {
                "profile": self.shaper.profile.name,
                "rate_mbps": self.shaper.rate_mbps(time.monotonic()),
                "pending": len(self._heap),
                "relayed": self.relayed,
                "drops": self.stats.drops,
                "link_loss": self.stats.drop_counts["link_loss"],
                "blackout_left_s": self.shaper.blackout_left(time.monotonic()),
            },
        )


def main(args: list[str] | None = None) -> int:
    return run_node(LinkEmulator, args)


if __name__ == "__main__":
    raise SystemExit(main())
