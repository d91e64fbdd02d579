"""The shipped Fast DDS profile reaches every process the project starts, and a wrong setting is
reported with what to do (Fast DDS itself only logs an XML parser error and runs on its defaults).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from hecsb_ros.graph import (
    FASTDDS_PROFILE_VAR,
    FASTRTPS_PROFILE_VAR,
    dds_environment,
    fastdds_profile,
    fastdds_profile_problem,
)
from hecsb_ros.runner import ros_env

pytestmark = [pytest.mark.ros, pytest.mark.dds]


def test_the_profile_gives_shared_memory_a_32_mib_segment_and_keeps_udp():
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(fastdds_profile()).getroot()
    (transport,) = root.findall(".//d:transport_descriptor", ns)
    assert transport.find("d:type", ns).text == "SHM"
    assert int(transport.find("d:segment_size", ns).text) == 32 * 2**20 >= 5 * 1920 * 1080 * 3
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    assert participant.find(".//d:useBuiltinTransports", ns).text == "true"
    assert participant.find(".//d:builtinTransports", ns).text == "UDPv4"


def test_runner_and_environment_use_it_unless_the_caller_chose():
    assert ros_env(base={})[FASTDDS_PROFILE_VAR] == str(fastdds_profile())
    assert ros_env(base={FASTDDS_PROFILE_VAR: "/mine.xml"})[FASTDDS_PROFILE_VAR] == "/mine.xml"
    # off on purpose: unset
    assert FASTDDS_PROFILE_VAR not in ros_env(base={FASTDDS_PROFILE_VAR: ""})
    assert FASTRTPS_PROFILE_VAR not in ros_env(base={FASTDDS_PROFILE_VAR: ""})
    shipped = str(fastdds_profile())
    assert dds_environment({"A": "1"}) == {
        "A": "1",
        FASTDDS_PROFILE_VAR: shipped,
        FASTRTPS_PROFILE_VAR: shipped,
    }
    # Fast DDS 2.x (Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE: the user's choice reaches
    # both names
    assert dds_environment({FASTDDS_PROFILE_VAR: "/mine.xml"})[FASTRTPS_PROFILE_VAR] == "/mine.xml"
    assert dds_environment({FASTRTPS_PROFILE_VAR: "/mine.xml"})[FASTDDS_PROFILE_VAR] == "/mine.xml"
    assert not set(dds_environment({FASTRTPS_PROFILE_VAR: ""})) & {
        FASTDDS_PROFILE_VAR,
        FASTRTPS_PROFILE_VAR,
    }


def test_runner_gives_the_edge_its_environment(tmp_path, monkeypatch):
    import subprocess

    from hecsb_ros.graph import EDGE_ENV
    from hecsb_ros.runner import Pipeline

    seen = {}

    class _Popen:
        def __init__(self, cmd, env, **kwargs):
            seen[cmd[2]] = env

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", _Popen)
    base = {"PATH": "/usr/bin", "MALLOC_TRIM_THRESHOLD_": "1"}
    # plain nodes: no lifecycle services to call
    Pipeline(None, tmp_path, env=base, lifecycle="false").start()
    edge, server = seen["hecsb_ros.nodes.edge"], seen["hecsb_ros.nodes.server"]
    assert edge["MALLOC_MMAP_THRESHOLD_"] == EDGE_ENV["MALLOC_MMAP_THRESHOLD_"]
    assert edge["MALLOC_TRIM_THRESHOLD_"] == "1"  # the caller's value wins
    assert "MALLOC_MMAP_THRESHOLD_" not in server and server[FASTDDS_PROFILE_VAR] == str(
        fastdds_profile()
    )
    Pipeline(
        None,
        tmp_path,
        env=base,
        node_env={"edge": {"MALLOC_MMAP_THRESHOLD_": None, "X": "2"}},
        lifecycle="false",
    ).start("edge")
    assert (
        "MALLOC_MMAP_THRESHOLD_" not in seen["hecsb_ros.nodes.edge"]
        and seen["hecsb_ros.nodes.edge"]["X"] == "2"
    )


def test_problems_say_what_to_do(tmp_path):
    fix = f"export {FASTDDS_PROFILE_VAR}={fastdds_profile()}"
    missing = fastdds_profile_problem({FASTDDS_PROFILE_VAR: str(tmp_path / "nope.xml")})
    assert "does not exist" in missing and fix in missing
    unset = fastdds_profile_problem({})
    assert "not set" in unset and fix in unset
    assert fastdds_profile_problem({FASTDDS_PROFILE_VAR: str(fastdds_profile())}) is None
    assert fastdds_profile_problem({FASTDDS_PROFILE_VAR: ""}) is None


class _Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def error(self, text: str) -> None:
        self.lines.append(("error", text))

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))


class _Node:
    def __init__(self) -> None:
        self.logger = _Logger()

    def get_logger(self) -> _Logger:
        return self.logger


def test_nodes_log_an_error_for_a_missing_file(monkeypatch, tmp_path):
    from hecsb_ros.nodes.diagnostics import check_fastdds_profile

    node = _Node()
    monkeypatch.setenv(FASTDDS_PROFILE_VAR, str(tmp_path / "gone.xml"))
    check_fastdds_profile(node)
    assert [kind for kind, _ in node.logger.lines] == [
        "error"
    ] and "does not exist" in node.logger.lines[0][1]
    monkeypatch.delenv(FASTDDS_PROFILE_VAR)
    monkeypatch.delenv(FASTRTPS_PROFILE_VAR, raising=False)
    check_fastdds_profile(node)  # a subscriber does not need it
    check_fastdds_profile(node, publishes_frames=True)  # a frame publisher does
    assert [kind for kind, _ in node.logger.lines] == ["error", "warning"]


def test_segments_of_a_killed_process_are_removed_and_live_ones_kept(tmp_path):
    """A SIGKILLed process leaves its 32 MiB segment in /dev/shm; the runner removes it after a
    kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from hecsb_ros.runner import remove_stale_segments, shm_segments

    # The owner signals it is up (a file), then waits for a stop file and shuts down cleanly.
    code = (
        "import os, rclpy, time\nrclpy.init()\nnode = rclpy.create_node('segment_owner')\n"
        "open(%r, 'w').close()\nend = time.monotonic() + 300\n"
        "while not os.path.exists(%r) and time.monotonic() < end:\n    time.sleep(0.05)\n"
        "node.destroy_node()\nrclpy.shutdown()\n"
    )
    env = ros_env(base=dict(os.environ))
    procs, owned = [], []
    stop = tmp_path / "stop"
    try:
        for i in range(2):
            ready = tmp_path / f"ready{i}"
            procs.append(
                subprocess.Popen([sys.executable, "-c", code % (str(ready), str(stop))], env=env)
            )
            while not ready.exists():
                assert procs[-1].poll() is None
                time.sleep(0.05)
            owned.append(shm_segments(procs[-1].pid))
            assert owned[-1], "no Fast DDS segment mapped"
        big = [s for s in owned[0] if s.stat().st_size >= 32 * 2**20]
        assert big, "the profile's 32 MiB segment is missing"
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        assert all(s.exists() for s in big)  # Fast DDS leaves it behind
        # The second process may map the first one's segment too (a reader maps its writers'
        # segments), but only the owner holds the lock: the dead one's segments go, the live one's
        # own stay.
        assert remove_stale_segments(owned[0] | owned[1]) and not any(s.exists() for s in owned[0])
        assert owned[1] - owned[0] and all(s.exists() for s in owned[1] - owned[0])
    finally:
        stop.touch()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            # a loaded machine: kill it and remove what it leaves
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        remove_stale_segments(set().union(*owned))
