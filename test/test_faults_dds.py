"""Faults over DDS with every node in its own process: link blackout, server and edge killed and
restarted, payloads from an unknown encoder. The survivors keep running and results resume.

Figures are printed (pytest -s) and recorded by ``python -m hecsb_ros.cli.faults``.
"""

from __future__ import annotations

import json
import math

import pytest

from hecsb_ros.reliability import scenarios
from hecsb_ros.monitor import Monitor
from hecsb_ros.runner import Pipeline

pytestmark = [pytest.mark.ros, pytest.mark.dds]

DOMAIN = 211
RATE_HZ = 20.0


@pytest.fixture(scope="module")
def running(random_classifier, tmp_path_factory):
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN)
    params = {
        "edge": {"checkpoint": str(random_classifier), "stats_period_s": 0.5},
        "server": {"checkpoint": str(random_classifier), "stats_period_s": 0.5},
    }
    pipe = Pipeline(
        DOMAIN,
        tmp_path_factory.mktemp("faults"),
        params,
        codec="png",
        profile="4g",
        rate_hz=str(RATE_HZ),
    )
    monitor = Monitor(context=ctx)
    pipe.start()
    try:
        scenarios.wait_for_flow(monitor, pipe, results=20, timeout=100.0)
        yield pipe, monitor
    finally:
        pipe.stop()
        monitor.destroy()
        rclpy.try_shutdown(context=ctx)


def _show(name, figures):
    print(f"\n{name}: {json.dumps(figures, indent=1, default=str)}")


def test_the_runner_brought_the_pipeline_up_in_order(running):
    """The runner's start (lifecycle, the default): server, then edge configured and activated
    through their services before the camera started; results flow (the fixture waited for them).
    First in this module, before the faults restart nodes (their logs keep the first start's lines
    first)."""
    import re

    pipe, monitor = running
    assert (
        monitor.lifecycle_state("hecsb_server")
        == monitor.lifecycle_state("hecsb_edge")
        == "active"
    )

    def first(key: str, text: str) -> float:
        for line in pipe.log_tail(key, 100000).splitlines():
            m = re.match(r"\[INFO\] \[(\d+\.\d+)\]", line)
            if m and text in line:
                return float(m.group(1))
        raise AssertionError(f"{text!r} not in {key}'s log")

    server_active = first("server", "serving codec")
    edge_configured, edge_active = (
        first("edge", "configured: loaded codec"),
        first("edge", "]: codec png"),
    )
    camera_started = first("camera_source", "publishing")
    assert server_active < edge_configured < edge_active < camera_started


def test_link_blackout_recovers_without_restarts_or_backlog(running):
    pipe, monitor = running
    f = scenarios.blackout(pipe, monitor, duration_s=5.0, rate_hz=RATE_HZ)
    _show("blackout", f)
    assert all(f["alive"].values()) and not any(f["restarts"].values())
    assert f["resume_s"] < 1.0, "issue bound: resume within 1 s of the link coming back"
    assert f["results_during_blackout"] == 0
    assert f["stale_results_after"] == 0, "frames from the outage must not be delivered late"
    assert f["results_first_second_after"] <= 1.5 * RATE_HZ, "no backlog burst after the outage"
    # LinkStats must show the gap: the latents the edge sent into the outage. With the edge's
    # frames-in- flight limit (max_in_flight 1) it sends one each time the unanswered one expires
    # (at least 100 ms) and skips the camera frames in between, so the gap is at most the frames of
    # the outage and at least a quarter of them at this rate (20 Hz).
    assert (
        0.25 * f["expected_gap_frames"]
        <= f["sequence_gap_counted"]
        <= f["expected_gap_frames"] + 2
    ), "LinkStats must show the gap"
    assert f["empty_linkstats_windows"] >= 3


def test_server_killed_and_restarted(running):
    pipe, monitor = running
    f = scenarios.kill_and_restart(pipe, monitor, "server", down_s=3.0)
    _show("server restart", f)
    assert f["survivors_alive_while_down"] and f["results_while_down"] == 0
    assert f["upstream_progress_while_down"]["edge_latents_sent"] > 0, "the edge keeps working"
    assert not math.isnan(f["resume_s"]), "results must resume after the restart"
    assert all(f["alive"].values())
    assert f["results_2s_after_resume"] <= 2 * 1.5 * RATE_HZ + 10, (
        "no backlog flood into the new server"
    )


def test_edge_killed_and_restarted(running):
    pipe, monitor = running
    f = scenarios.kill_and_restart(pipe, monitor, "edge", down_s=3.0)
    _show("edge restart", f)
    assert f["survivors_alive_while_down"] and f["results_while_down"] == 0
    assert f["upstream_progress_while_down"]["camera_frames_sent"] > 0, (
        "the camera keeps publishing"
    )
    assert not math.isnan(f["resume_s"]) and all(f["alive"].values())


def test_unknown_encoder_is_refused_while_known_one_is_served(running, random_classifier):
    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.reliability.fuzz import valid_latent

    pipe, monitor = running

    class _Holder:  # valid_latent needs only the .codec of a server-like object
        codec = create_codec("png", CodecSettings(checkpoint=str(random_classifier)))

    f = scenarios.foreign_encoder(pipe, monitor, valid_latent(_Holder()), frames=30, rate_hz=10.0)
    _show("foreign encoder", f)
    assert f["refused_model_mismatch"] == f["foreign_sent"] and f["foreign_served"] == 0
    assert f["known_results_meanwhile"] >= 0.5 * RATE_HZ * f["window_s"], (
        "known encoder keeps being served"
    )
    log = pipe.log_tail("server", 20000)
    assert "payload made by encoder 'f00dfeedf00dfeed', this server runs 'img-png'" in log


def test_blackout_parameter_starts_an_outage_and_rejects_bad_values(ros_context):
    import time

    from rclpy.parameter import Parameter

    from hecsb_ros.nodes.link_emulator import LinkEmulator

    node = LinkEmulator()
    try:
        for bad in (1e9, -1.0, float("nan")):
            assert not node.set_parameters([Parameter("blackout_s", value=bad)])[0].successful
        assert node.shaper.blackout_left(time.monotonic()) == 0.0
        assert node.set_parameters([Parameter("blackout_s", value=2.0)])[0].successful
        assert 1.5 < node.shaper.blackout_left(time.monotonic()) <= 2.0
        assert node.shaper.schedule(500, time.monotonic()) == (None, "link_loss")
    finally:
        node.on_shutdown()
        node.destroy_node()
