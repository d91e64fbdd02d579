"""The core never imports rclpy (nor anything ROS)."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hecsb_ros.core

# once: whether the core imports ROS does not depend on which ROS distribution is installed
pytestmark = [pytest.mark.ros, pytest.mark.dds, pytest.mark.once]

CORE = Path(hecsb_ros.core.__file__).parent


def test_core_sources_do_not_import_ros():
    offenders = []
    for path in CORE.rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                mod in stripped.split()[1]
                for mod in (
                    "rclpy",
                    "sensor_msgs",
                    "std_msgs",
                    "hecsb_ros.msg",
                    "hecsb_ros.nodes",
                    "cv_bridge",
                )
            ):
                offenders.append(f"{path}: {stripped}")
    assert not offenders, offenders


def test_importing_every_core_module_loads_no_rclpy():
    modules = [m.name for m in pkgutil.walk_packages([str(CORE)], prefix="hecsb_ros.core.")]
    assert "hecsb_ros.core.codecs.image" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n    importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', "
        "'std_msgs', 'cv_bridge')]\n"
        "assert not bad, bad\nprint('ok', len(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
