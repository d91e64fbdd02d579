"""Camera at twice the edge's sustainable rate: the edge drops stale frames (keep-last depth 1),
latency stays bounded and nothing grows. Every node runs in its own process over DDS.

The codec is the ``png_slow`` plugin (``hecsb_ros.reliability.slow_codec``: png plus 25 ms per
frame on the edge, loaded by both nodes through their ``plugins`` parameter: at most 40 frames/s);
the camera publishes 80 frames/s. Figures are printed (pytest -s) and recorded by
``python -m hecsb_ros.cli.load``.
"""

from __future__ import annotations

import json

import pytest

from hecsb_ros.reliability import scenarios
from hecsb_ros.monitor import Monitor
from hecsb_ros.runner import Pipeline

pytestmark = [pytest.mark.ros, pytest.mark.dds]

DOMAIN = 212
EXTRA_MS = 25.0
SUSTAINABLE_HZ = 1000.0 / EXTRA_MS
CAMERA_HZ = 2 * SUSTAINABLE_HZ


@pytest.fixture(scope="module")
def overloaded(random_classifier, tmp_path_factory):
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN)
    slow = {
        "checkpoint": str(random_classifier),
        "stats_period_s": 0.5,
        "plugins": "hecsb_ros.reliability.slow_codec",
    }
    pipe = Pipeline(
        DOMAIN,
        tmp_path_factory.mktemp("load"),
        {"edge": slow, "server": slow},
        codec="png_slow",
        profile="4g",
        rate_hz=str(CAMERA_HZ),
    )
    pipe.env["HECSB_EDGE_EXTRA_MS"] = str(EXTRA_MS)
    monitor = Monitor(context=ctx)
    pipe.start()
    try:
        scenarios.wait_for_flow(monitor, pipe, results=40, timeout=100.0)
        yield pipe, monitor
    finally:
        pipe.stop()
        monitor.destroy()
        rclpy.try_shutdown(context=ctx)


def test_edge_drops_stale_frames_and_latency_stays_bounded(overloaded):
    pipe, monitor = overloaded
    f = scenarios.overload(pipe, monitor, seconds=24.0)
    print("\noverload:", json.dumps(f, indent=1, default=str))
    assert all(f["alive"].values())
    assert f["edge_rate_hz"] <= SUSTAINABLE_HZ * 1.05
    assert f["camera_rate_hz"] >= 1.5 * f["edge_rate_hz"], "the camera must outpace the edge"
    assert f["dropped_stale"] > 0.25 * f["camera_frames_sent"], (
        "stale frames are dropped, not queued"
    )
    # An unbounded queue would add (camera - edge rate) / edge rate x elapsed: ~24 s by the end.
    # The bounds below are 20x to 50x under that and leave room for other work on a shared CPU.
    first, _, last = f["latency_by_third"]
    assert f["latency"]["p95_ms"] < 20 * EXTRA_MS
    assert last["p50_ms"] < first["p50_ms"] + 4 * EXTRA_MS, "latency must not grow"
    for key, start in f["rss_start_mb"].items():
        assert f["rss_end_mb"][key] - start < 25.0, (
            f"{key} grew {start:.0f} -> {f['rss_end_mb'][key]:.0f} MiB"
        )
