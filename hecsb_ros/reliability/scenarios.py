"""Fault and load scenarios on a running :class:`~hecsb_ros.runner.Pipeline`.

Each scenario returns a dict of measured figures; tests assert on them, the ``hecsb_ros.cli``
reliability commands write them into reports. Times are ``time.monotonic()`` seconds unless a key
says otherwise.
"""

from __future__ import annotations

import math
import time
from typing import Any

from hecsb_ros.monitor import Monitor, latency_stats
from hecsb_ros.runner import Pipeline


def wait_for_flow(
    monitor: Monitor, pipeline: Pipeline, results: int = 20, timeout: float = 90.0
) -> float:
    """Wait until ``results`` results arrived; returns the seconds it took. Raises on a dead
    node."""
    t0 = time.monotonic()

    def ready() -> bool:
        dead = [k for k, ok in pipeline.alive().items() if not ok]
        if dead:
            raise RuntimeError(f"node {dead[0]} exited:\n{pipeline.log_tail(dead[0])}")
        return len(monitor.results) >= results

    if not monitor.spin_until(ready, timeout):
        raise TimeoutError(f"only {len(monitor.results)} results after {timeout:.0f} s")
    return time.monotonic() - t0


def _drop_count(stats_msg: Any, reason: str) -> int:
    if stats_msg is None:
        return 0
    counts = dict(zip(stats_msg.drop_reasons, stats_msg.drop_counts))
    return int(counts.get(reason, 0))


def _latest(history: list[tuple[float, Any]], after: float = -math.inf) -> Any:
    fresh = [m for t, m in history if t >= after]
    return fresh[-1] if fresh else None


def blackout(
    pipeline: Pipeline, monitor: Monitor, duration_s: float = 5.0, rate_hz: float = 20.0
) -> dict[str, Any]:
    """Drop everything on the emulated link for ``duration_s``; measure the gap and the recovery.

    Returns the resume time (blackout end -> first result that crossed the link after it), the
    gap the server's LinkStats counted, results of frames captured during the blackout, stale
    results after it (captured during the blackout yet delivered after it) and the result rate
    just after recovery.
    """
    link = pipeline.specs["link_emulator"].name
    gap0 = _drop_count(_latest(monitor.link_stats), "sequence_gap")
    t_asked = time.monotonic()
    t_set = monitor.set_parameter(link, "blackout_s", float(duration_s))
    # The node applied the change between the request and its answer: the outage ends at most this
    # late (t_end) and at least this early (t_open, the request's time plus the duration).
    t_end = t_set + duration_s
    t_open = t_asked + duration_s
    t_end_ns = time.time_ns() + int(duration_s * 1e9)
    monitor.spin(duration_s + 3.0)
    after = monitor.results_since(t_end)
    first = after[0] if after else None
    # results of frames captured during the outage (a frame captured before it may still be on its
    # way through a loaded server and arrive late: that is not a frame that crossed the dead link)
    t_set_ns = t_end_ns - int(duration_s * 1e9)
    during = [
        r
        for r in monitor.results
        if t_set + 0.5 <= r.arrival_mono < t_open and r.capture_ns >= t_set_ns
    ]
    stale = [r for r in after if r.capture_ns < t_end_ns - int(0.5e9)]
    first_second = [r for r in after if first and r.arrival_mono < first.arrival_mono + 1.0]
    # LinkStats published after the recovery carries the gap.
    monitor.spin_until(lambda: _latest(monitor.link_stats, t_end + 1.5) is not None, 5.0)
    gap1 = _drop_count(_latest(monitor.link_stats), "sequence_gap")
    empty_windows = sum(
        1 for t, m in monitor.link_stats if t_set + 1.0 < t < t_end and m.frames == 0
    )
    link_diag = monitor.diagnostics.get(link, {})
    return {
        "blackout_s": duration_s,
        "resume_s": (first.arrival_mono - t_end) if first else math.nan,
        "results_during_blackout": len(during),
        "stale_results_after": len(stale),
        "results_first_second_after": len(first_second),
        "camera_rate_hz": rate_hz,
        "sequence_gap_counted": gap1 - gap0,
        "expected_gap_frames": duration_s * rate_hz,
        "empty_linkstats_windows": empty_windows,
        "link_loss_total": link_diag.get("link_loss", "n/a"),
        "latency_after": latency_stats(monitor.results_since(t_end + 1.0)),
        "restarts": dict(pipeline.restarts),
        "alive": pipeline.alive(),
    }


def kill_and_restart(
    pipeline: Pipeline, monitor: Monitor, key: str, down_s: float = 3.0, timeout: float = 120.0
) -> dict[str, Any]:
    """SIGKILL node ``key``, keep it down ``down_s``, start it again; measure the time to resume.

    While it is down, the survivors must keep running (and the upstream ones keep publishing).
    """
    others = [k for k in pipeline.procs if k != key]
    t_kill = time.monotonic()
    pipeline.kill(key)
    before = {
        "camera_frames_sent": monitor.diag_int(
            pipeline.specs["camera_source"].name, "frames_sent"
        ),
        "edge_latents_sent": monitor.diag_int(pipeline.specs["edge"].name, "latents_sent"),
    }
    monitor.spin(down_s)
    down_results = len([r for r in monitor.results_since(t_kill + 0.5)])
    survivors_alive = all(pipeline.alive()[k] for k in others)
    during = {
        "camera_frames_sent": monitor.diag_int(
            pipeline.specs["camera_source"].name, "frames_sent"
        ),
        "edge_latents_sent": monitor.diag_int(pipeline.specs["edge"].name, "latents_sent"),
    }
    pipeline.restarts[key] += 1
    t_start, t_start_wall = time.monotonic(), time.time()
    pipeline.start(key)
    ok = monitor.spin_until(
        lambda: bool(monitor.results_since(t_start)) or not pipeline.alive()[key], timeout
    )
    after = monitor.results_since(t_start)
    first = after[0] if after else None
    monitor.spin(2.0)
    steady = monitor.results_since(first.arrival_mono) if first else []
    ready = ready_time(pipeline.log_tail(key, 200000), t_start_wall)
    return {
        "node": key,
        "down_s": down_s,
        "ready_s": ready,
        "ready_to_first_result_s": (first.arrival_mono - t_start - ready) if first else math.nan,
        "results_while_down": down_results,
        "survivors_alive_while_down": survivors_alive,
        "upstream_progress_while_down": {k: during[k] - before[k] for k in before},
        "resume_s": (first.arrival_mono - t_start) if (ok and first) else math.nan,
        "results_2s_after_resume": len(steady),
        "latency_after": latency_stats(steady),
        "alive": pipeline.alive(),
        "restarts": dict(pipeline.restarts),
    }


#: Log lines a node writes once it is ready to work (see the nodes' __init__).
READY_MARKERS = ("serving codec", "]: codec ", "publishing ", "link profile ")


def ready_time(log: str, since_wall: float) -> float:
    """Seconds from ``since_wall`` to the first ready line logged after it (ROS log stamps), else
    NaN."""
    import re

    for line in log.splitlines():
        m = re.match(r"\[INFO\] \[(\d+\.\d+)\]", line)
        if m and float(m.group(1)) >= since_wall and any(k in line for k in READY_MARKERS):
            return float(m.group(1)) - since_wall
    return math.nan


def foreign_encoder(
    pipeline: Pipeline,
    monitor: Monitor,
    valid_msg: Any,
    frames: int = 30,
    rate_hz: float = 10.0,
    topic: str = "latent_shaped",
) -> dict[str, Any]:
    """Publish ``frames`` latents made by an unknown encoder (foreign model id) beside the real
    stream.

    ``valid_msg`` is a well-formed CompressedLatent; only its model id (and codec) are changed.
    """
    from hecsb_ros.msg import CompressedLatent
    from hecsb_ros.nodes.qos import reliable_qos

    pub = monitor.node.create_publisher(CompressedLatent, topic, reliable_qos(50))
    monitor.spin_until(lambda: pub.get_subscription_count() > 0, 10.0)
    server = pipeline.specs["server"].name
    mismatch0 = _drop_count(_latest(monitor.link_stats), "model_mismatch")
    t0 = time.monotonic()
    valid_msg.model_id = "f00dfeedf00dfeed"
    for i in range(frames):
        valid_msg.sequence = 10**9 + i
        pub.publish(valid_msg)
        monitor.spin(1.0 / rate_hz)
    t1 = time.monotonic()
    monitor.spin_until(lambda: _latest(monitor.link_stats, t1 + 0.5) is not None, 5.0)
    mismatch = _drop_count(_latest(monitor.link_stats), "model_mismatch") - mismatch0
    own = [r for r in monitor.results_since(t0) if r.arrival_mono < t1]
    monitor.node.destroy_publisher(pub)
    return {
        "foreign_sent": frames,
        "refused_model_mismatch": mismatch,
        "foreign_served": sum(1 for r in own if r.sequence >= 10**9),
        "known_results_meanwhile": sum(1 for r in own if r.sequence < 10**9),
        "window_s": t1 - t0,
        "server": server,
        "alive": pipeline.alive(),
    }


def overload(pipeline: Pipeline, monitor: Monitor, seconds: float) -> dict[str, Any]:
    """Run for ``seconds`` and count frames in, processed and dropped at the edge; RSS at both
    ends."""
    cam, edge = pipeline.specs["camera_source"].name, pipeline.specs["edge"].name
    monitor.spin(2.5)  # fresh diagnostics
    rss0 = pipeline.rss()
    t0 = time.monotonic()
    c0, e0, s0 = (
        monitor.diag_int(cam, "frames_sent"),
        monitor.diag_int(edge, "images_in"),
        monitor.diag_int(edge, "latents_sent"),
    )
    n0 = len(monitor.results)
    thirds = []
    for _ in range(3):
        t = time.monotonic()
        monitor.spin(seconds / 3)
        thirds.append(latency_stats(monitor.results_since(t)))
    monitor.spin(2.5)  # diagnostics that cover the whole run
    elapsed = time.monotonic() - t0
    c1, e1, s1 = (
        monitor.diag_int(cam, "frames_sent"),
        monitor.diag_int(edge, "images_in"),
        monitor.diag_int(edge, "latents_sent"),
    )
    rss1 = pipeline.rss()
    frames_in = c1 - c0
    processed = s1 - s0
    return {
        "seconds": elapsed,
        "camera_frames_sent": frames_in,
        "edge_callbacks": e1 - e0,
        # frames the edge never encoded: replaced by newer ones in its newest-frame slot (counted
        # as skipped) or, with a fifo edge, by the image subscription's small queue
        "edge_processed": processed,
        "dropped_stale": frames_in - processed,
        "drop_fraction": (frames_in - processed) / frames_in if frames_in > 0 else math.nan,
        "camera_rate_hz": frames_in / elapsed,
        "edge_rate_hz": processed / elapsed,
        "results": len(monitor.results) - n0,
        "latency": latency_stats(monitor.results[n0:]),
        "latency_by_third": thirds,
        "rss_start_mb": rss0,
        "rss_end_mb": rss1,
        "alive": pipeline.alive(),
    }
