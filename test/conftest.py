"""Shared fixtures: a tiny random classifier checkpoint, rclpy in-process, isolated DDS domains."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

# Keep every test's DDS traffic on this machine and away from other runs.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(100, 200)))
# The shipped Fast DDS profile, in this process (before rclpy starts) and in every node it starts,
# as the launch file and the runner give it to the nodes: camera frames of 640x480 and more need
# it. Fast DDS 3 (Kilted) reads the first name, Fast DDS 2.x (Jazzy) the second.
for _var in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"):
    os.environ.setdefault(
        _var, str(Path(__file__).resolve().parents[1] / "config" / "fastdds_profile.xml")
    )


# Markers (pytest.ini says what each is for) are declared in each test file (``pytestmark =
# [...]``) or on single tests. Files whose owners have not declared theirs yet get them here, until
# they do.
UNDECLARED_FILES: dict[str, tuple[str, ...]] = {}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker in UNDECLARED_FILES.get(item.path.name, ()):
            if not item.get_closest_marker(marker):
                item.add_marker(getattr(pytest.mark, marker))
        # unit: everything that is neither multi-process, slow nor a build (scripts/test.sh -m
        # unit)
        if not any(item.get_closest_marker(m) for m in ("dds", "slow", "build")):
            item.add_marker(pytest.mark.unit)


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture()
def missing_data():
    """``missing_data(reason)``: skip a test whose data set is not installed; under ``CI=true``
    (set by ``.ci/run``), where the set-up installs every data set, fail instead, so nothing is
    skipped silently."""

    def handle(reason: object) -> None:
        if _ci():
            pytest.fail(f"{reason} (CI=true: the set-up must install this data)", pytrace=False)
        pytest.skip(str(reason))

    return handle


@pytest.fixture(scope="session")
def random_classifier(tmp_path_factory):
    """Path of an untrained Fashion-MNIST classifier checkpoint (fast, deterministic)."""
    import torch

    from hecsb_ros.core.teachers import build_model, fmnist_spec, save_checkpoint

    torch.manual_seed(0)
    spec = fmnist_spec()
    path = tmp_path_factory.mktemp("ckpt") / "random_fmnist.safetensors"
    save_checkpoint(path, build_model(spec).state_dict(), spec)
    return path


@pytest.fixture(scope="session")
def _torch_defaults():
    import torch

    return torch.get_num_threads(), torch.backends.mkldnn.enabled


@pytest.fixture(autouse=True)
def _restore_torch_settings(_torch_defaults):
    """Codecs set process-wide torch options (threads, CPU convolution backend): back to torch's
    defaults after each test, so that later tests (training ones among them) do not inherit them.
    """
    import torch

    yield
    torch.set_num_threads(_torch_defaults[0])
    torch.backends.mkldnn.enabled = _torch_defaults[1]


@pytest.fixture()
def ros_context():
    """rclpy initialised for one test, shut down afterwards."""
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


def spin_until(rclpy, nodes, predicate, timeout: float = 10.0) -> bool:
    """Spin ``nodes`` until ``predicate()`` holds or ``timeout`` seconds pass."""
    import time

    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor()
    for n in nodes:
        ex.add_node(n)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if predicate():
                return True
            ex.spin_once(timeout_sec=0.05)
        return predicate()
    finally:
        for n in nodes:
            ex.remove_node(n)
