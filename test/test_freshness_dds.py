"""Fresh results under overload, over DDS (every node its own process).

The camera publishes faster than both halves can serve: the ``png_slow`` plugin
(``hecsb_ros.reliability.slow_codec``) adds a fixed sleep per frame to the edge and to the server.
With the newest-frame policy every result is about as old as the work done on it (not the queue in
front of it), and every camera frame is accounted for: encoded, skipped for a newer one, or lost in
the middleware, never silently gone. With the edge's in-flight limit (``max_in_flight``, default 1)
the newest frame waits at the edge instead of its latent at the server: the server skips nothing
and its queue stays empty, and a result whose latent was lost on the link stops holding the edge
back after the timeout (counted). A camera process without the Fast DDS profile publishing 640x480
frames is found and warned about, with the fix.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hecsb_ros.monitor import Monitor
from hecsb_ros.runner import Pipeline

pytestmark = [pytest.mark.ros, pytest.mark.dds]

EDGE_MS, SERVER_MS = 30.0, 60.0  # the camera's 40 Hz (25 ms) outpaces both
CAMERA_HZ, FRAMES = 40.0, 200
PERIOD_MS = 1e3 / CAMERA_HZ


def _settled(
    monitor: Monitor, keys: list[tuple[str, str]], quiet_s: float = 2.0, timeout: float = 60.0
) -> bool:
    """Wait until the given diagnostics counters stop changing for ``quiet_s``."""
    last, since = None, time.monotonic()

    def still() -> bool:
        nonlocal last, since
        now = [monitor.diagnostics.get(n, {}).get(k) for n, k in keys]
        if now != last:
            last, since = now, time.monotonic()
        return None not in now and time.monotonic() - since >= quiet_s

    return monitor.spin_until(still, timeout)


# : (test id, edge max_in_flight, link emulator loss): no limit (the server skips), the default
# limit of : one latent out, and the limit over a link that loses a fifth of the latents (their
# results never come).
CASES = [("no_limit", 0, 0.0), ("limit_1", 1, 0.0), ("limit_1_lossy_link", 1, 0.2)]


@pytest.mark.parametrize("limit, loss", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_overloaded_pipeline_answers_fresh_frames_and_every_frame_is_accounted_for(
    random_classifier, tmp_path, limit, loss
):
    import rclpy

    domain = random.Random(f"fresh{os.getpid()}{limit}{loss}").randint(120, 199)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    monitor = Monitor(context=ctx)
    slow = {
        "checkpoint": str(random_classifier),
        "stats_period_s": 0.5,
        "plugins": "hecsb_ros.reliability.slow_codec",
    }
    link = loss > 0
    params = {
        "edge": {**slow, "max_in_flight": limit},
        "server": slow,
        "camera_source": {"frames": FRAMES, "loop": True},
    }
    if link:  # no shaping, only losses (seeded)
        params["link_emulator"] = {
            "profile": "none",
            "loss": loss,
            "seed": 3,
            "stats_period_s": 0.5,
        }
    pipe = Pipeline(
        domain,
        tmp_path / "logs",
        params,
        monitor=monitor,
        codec="png_slow",
        link="true" if link else "false",
        rate_hz=str(CAMERA_HZ),
    )
    pipe.env.update(HECSB_EDGE_EXTRA_MS=str(EDGE_MS), HECSB_SERVER_EXTRA_MS=str(SERVER_MS))
    try:
        pipe.start()
        sent = lambda: monitor.diag_int("hecsb_camera_source", "frames_sent")  # noqa: E731
        assert monitor.spin_until(lambda: sent() >= FRAMES, 120.0), pipe.log_tail("camera_source")
        counters = [
            ("hecsb_camera_source", "frames_sent"),
            ("hecsb_edge", "images_in"),
            ("hecsb_edge", "skipped"),
            ("hecsb_edge", "latents_sent"),
            ("hecsb_edge", "in_flight_expired"),
            ("hecsb_server", "received"),
            ("hecsb_server", "skipped"),
            ("hecsb_server", "results"),
        ]
        if link:
            counters += [("hecsb_link_emulator", "relayed"), ("hecsb_link_emulator", "drops")]
        assert _settled(monitor, counters), monitor.diagnostics
        pipe.check()
        edge, server = monitor.diagnostics["hecsb_edge"], monitor.diagnostics["hecsb_server"]
        n = {
            f"{node.split('_', 1)[1]}_{key}": int(float(monitor.diagnostics[node][key]))
            for node, key in counters
        }
        lost, edge_drops = int(edge["frames_lost"]), int(edge["drops"])
        link_drops = n.get("link_emulator_drops", 0)
        results = list(monitor.results)
        assert int(edge["max_in_flight"]) == limit
        # Every camera frame accounted for: arrived or reported lost by the middleware; each
        # arrived one encoded or skipped (no bad input here); each latent lost on the link, or
        # classified or skipped.
        assert n["camera_source_frames_sent"] == FRAMES
        assert n["edge_images_in"] + lost == FRAMES, (n, lost)
        # the server counts latents lost on the link as sequence gaps (not those lost after its
        # last one)
        assert edge_drops == lost and int(server["drops"]) <= link_drops, (edge, server)
        assert n["edge_images_in"] == n["edge_latents_sent"] + n["edge_skipped"], n
        if link:
            assert n["edge_latents_sent"] == n["link_emulator_relayed"] + link_drops, n
            assert n["server_received"] == n["link_emulator_relayed"], n
        else:
            assert n["server_received"] == n["edge_latents_sent"], n  # reliable, no link emulator
        assert n["server_received"] == n["server_results"] + n["server_skipped"], n
        assert len({r.sequence for r in results}) == n["server_results"] == len(results)
        assert n["camera_source_frames_sent"] == (
            len(results) + n["edge_skipped"] + n["server_skipped"] + lost + link_drops
        ), n
        # Overloaded on purpose: the edge skipped frames.
        assert n["edge_skipped"] > 0, n
        # Measured per result, link time and the wait at the server apart.
        edge_ms = float(np.median([r.edge_ms for r in results]))
        compute_ms = float(np.median([r.server_ms - r.server_wait_ms for r in results]))
        assert edge_ms >= EDGE_MS and compute_ms >= SERVER_MS
        assert all(r.transfer_ms >= 0 and 0 <= r.server_wait_ms <= r.server_ms for r in results)
        # Ages after the first second (the first frames meet cold caches and late discovery).
        warm = [r for r in results if r.capture_ns >= min(r.capture_ns for r in results) + 1e9]
        ages = [r.latency_ms for r in warm]
        waits = [r.server_wait_ms for r in warm]
        if limit == 0:
            # No limit: the edge encodes whenever free (every 30 ms), the 60 ms server keeps the
            # newest latent and skips the rest. Worst case: a frame waits at most one edge frame,
            # its latent at most one server frame: 2 x (edge + server). A FIFO queue in front of
            # the server, fed at 33 frames/s, would add seconds by the end. 100 ms of slack for the
            # DDS hops and scheduling on a shared 2-core machine.
            assert n["server_skipped"] > 0 and n["edge_in_flight_expired"] == 0, n
            bound = 2 * (edge_ms + compute_ms) + 100.0
        else:
            # One latent out at a time: the server never holds two, so skips nothing and its queue
            # is only the hop from its executor to its worker; the frame the edge encodes next
            # arrived at most one camera period before the result that frees the edge: age <=
            # period + edge + server (+ hops, slack).
            assert n["server_skipped"] == 0, n
            # A latent queued behind another would wait a whole server frame (>= compute_ms); the
            # hop from executor to worker is a fraction of it, with scheduling delays of a loaded
            # 2-core machine on top (23 ms of 61 once, under two trainers and a benchmark).
            assert float(np.percentile(waits, 95)) <= 0.5 * compute_ms, (
                np.percentile(waits, 95),
                compute_ms,
            )
            bound = PERIOD_MS + edge_ms + compute_ms + 100.0
            if link:
                # A lost latent's result never comes: the edge stops waiting for it after the
                # timeout, each counted (the last one only once a frame is waiting again: hence the
                # one of slack).
                assert (
                    link_drops > 0 and link_drops - 1 <= n["edge_in_flight_expired"] <= link_drops
                ), n
                # adaptive: follows the round trips
                assert float(edge["in_flight_timeout_ms"]) < 1000.0
                # (while the edge waits for a lost latent, newer frames keep replacing the waiting
                # one: the frame encoded when the place is given up is still at most a camera
                # period old)
            else:
                assert n["edge_in_flight_expired"] == 0, n
        p95 = float(np.percentile(ages, 95))
        assert p95 <= bound and max(ages) <= 2 * bound, (
            p95,
            max(ages),
            bound,
            edge_ms,
            compute_ms,
        )
        print(
            f"\nlimit {limit}, loss {loss}: {len(results)} results of {FRAMES} frames: age p50 "
            f"{np.median(ages):.0f} "
            f"ms, p95 {p95:.0f} ms, max {max(ages):.0f} ms (bound {bound:.0f}); server queue "
            "p95 "
            f"{np.percentile(waits, 95):.1f} ms; edge {edge_ms:.0f} ms, server {compute_ms:.0f} "
            f"ms; {n}"
        )
    finally:
        pipe.stop()
        monitor.destroy()
        rclpy.try_shutdown(context=ctx)


PUBLISHER = textwrap.dedent('''
    import sys, time, rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node("third_party_camera")
    pub = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    end = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(1.0)
    for i in range(int(sys.argv[1])):
        msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3,
                    data=bytes(640 * 480 * 3))
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(0.2)
    time.sleep(6.0)  # stay matched: the edge's silence check needs a publisher
''')


def test_frames_lost_without_the_profile_are_counted_and_warned_about_with_the_fix(
    random_classifier, tmp_path
):
    """A camera driver's process without FASTDDS_DEFAULT_PROFILES_FILE: its 640x480 rgb8 frames
    (921 KB) do not fit Fast DDS's default shared-memory segment. The edge counts what the
    middleware reports lost and warns once, naming the variable and the profile's path."""
    import rclpy

    domain = random.Random(f"lost{os.getpid()}").randint(120, 199)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    monitor = Monitor(context=ctx)
    params = {"checkpoint": str(random_classifier), "stats_period_s": 0.5}
    pipe = Pipeline(
        domain,
        tmp_path / "logs",
        {"edge": {**params, "frame_silence_s": 2.0}, "server": params},
        codec="png",
        link="false",
        monitor=monitor,
    )
    try:
        pipe.start("server", "edge")
        env = {k: v for k, v in pipe.env.items() if "PROFILES_FILE" not in k}
        script = tmp_path / "camera.py"
        script.write_text(PUBLISHER)
        proc = subprocess.run(
            [sys.executable, str(script), "10"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert monitor.spin_until(
            lambda: "frames_lost" in monitor.diagnostics.get("hecsb_edge", {}), 10.0
        )
        monitor.spin(1.5)
        edge = monitor.diagnostics["hecsb_edge"]
        log = pipe.log_tail("edge", 20000)
        warnings = [ln for ln in log.splitlines() if "FASTDDS_DEFAULT_PROFILES_FILE=" in ln]
        print(
            f"\nedge: images_in {edge['images_in']}, frames_lost {edge['frames_lost']}; "
            f"warnings: {warnings}"
        )
        assert int(edge["images_in"]) < 10, (
            "the frames are expected to be lost without the profile"
        )
        assert int(edge["frames_lost"]) > 0 or any("no frame arrived" in w for w in warnings), log[
            -3000:
        ]
        assert warnings and all(
            str(Path("config") / "fastdds_profile.xml") in w for w in warnings
        ), log[-3000:]
        assert len([w for w in warnings if "lost" in w]) <= 1  # once, not per frame
    finally:
        pipe.stop()
        monitor.destroy()
        rclpy.try_shutdown(context=ctx)
