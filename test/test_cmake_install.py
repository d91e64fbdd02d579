"""The ament_cmake build a ROS 2 workspace runs (colcon) installs messages, modules, executables,
launch and config files, and the installed package imports on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.build
def test_full_install_into_a_fresh_prefix(tmp_path):
    src, build, prefix = tmp_path / "src", tmp_path / "build", tmp_path / "install"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "build",
            "install",
            "log",
            "__pycache__",
            "benchmarks",
            "runs",
            "*.egg-info",
            ".hypothesis",
            ".pytest_cache",
            ".ruff_cache",
        ),
    )
    venv = Path(sys.prefix)
    env = dict(
        os.environ, AMENT_PREFIX_PATH=str(venv), PATH=f"{venv / 'bin'}:{os.environ['PATH']}"
    )
    for cmd in (
        [
            "cmake",
            "-S",
            str(src),
            "-B",
            str(build),
            f"-DCMAKE_INSTALL_PREFIX={prefix}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DBUILD_TESTING=OFF",
        ],
        ["cmake", "--build", str(build), "-j", "2"],
        ["cmake", "--install", str(build)],
    ):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    for exe in ("hecsb_camera_source", "hecsb_edge", "hecsb_server", "hecsb_link_emulator"):
        assert os.access(prefix / "lib" / "hecsb_ros" / exe, os.X_OK), exe
    share = prefix / "share" / "hecsb_ros"
    assert (share / "launch" / "split_inference.launch.py").exists()
    assert (share / "config" / "split_inference.yaml").exists()
    assert (share / "config" / "fastdds_profile.xml").exists()
    site = prefix / Path(sysconfig.get_paths()["purelib"]).relative_to(sys.prefix)
    code = (
        "import hecsb_ros, hecsb_ros.nodes.server, hecsb_ros.graph\n"
        "from hecsb_ros.msg import CompressedLatent, ClassificationResult, LinkStats, "
        "GroundTruth\n"
        f"assert hecsb_ros.__path__[0].startswith({str(prefix)!r}), hecsb_ros.__path__\n"
        "from hecsb_ros.graph import fastdds_profile\n"
        f"assert str(fastdds_profile()) == {str(share / 'config' / 'fastdds_profile.xml')!r}, "
        "fastdds_profile()\n"
        "print('ok')"
    )
    # Outside the checkout, with the install first on the path, as 'source install/setup.bash'
    # does.
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(env, PYTHONPATH=str(site)),
        timeout=120,
    )
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
