"""colcon: the package builds in a workspace, and 'colcon test' runs its pytest suite
(ament_cmake_pytest) against the installed package, as a ROS 2 user's workspace does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
#: What a workspace copy of the checkout leaves out (virtual environments, build outputs, results).
IGNORE = shutil.ignore_patterns(
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
)


def workspace_copy(ws: Path) -> Path:
    """``ws/src/hecsb_ros``: the checkout as a workspace's source package, as a clone has it (the
    files git tracks; without git, everything but IGNORE)."""
    src = ws / "src" / "hecsb_ros"
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True
    )
    if listed.returncode != 0 or not listed.stdout:
        shutil.copytree(ROOT, src, ignore=IGNORE)
        return src
    for rel in listed.stdout.split("\0"):
        if rel and (ROOT / rel).is_file() and not rel.startswith("benchmarks/"):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    return src


def failed_cases(junit: Path) -> str:
    """The failed or erroring test cases of a JUnit report with the end of their messages (what the
    assertion shows when 'colcon test' fails, so a CI log says which test and why)."""
    import xml.etree.ElementTree as ET

    if not junit.exists():
        return f"(no JUnit report at {junit})"
    lines = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            text = (bad.get("message") or "") + "\n" + (bad.text or "")
            lines.append(f"{case.get('classname')}::{case.get('name')}: {text.strip()[-1500:]}")
    return "\n".join(lines) or "(the JUnit report lists no failed case)"


@pytest.mark.build
def test_colcon_build_and_test_in_a_workspace(tmp_path):
    """colcon build, then colcon test on the 'quick' subset (-DHECSB_PYTEST_ADDOPTS); colcon
    test-result counts the tests pytest reported and finds no failure."""
    ws = tmp_path / "ws"
    workspace_copy(ws)
    venv = Path(sys.prefix)
    colcon = str(Path(sys.executable).parent / "colcon")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "COLCON_HOME")}
    env.update(
        AMENT_PREFIX_PATH=str(venv),
        PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
        COLCON_LOG_PATH=str(ws / "log"),
    )
    steps = [
        [
            colcon,
            "build",
            "--packages-select",
            "hecsb_ros",
            "--cmake-args",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DHECSB_PYTEST_ADDOPTS=-m 'quick and not dds'",
        ],
        [colcon, "test", "--packages-select", "hecsb_ros", "--return-code-on-test-failure"],
        [
            colcon,
            "test-result",
            "--verbose",
            "--test-result-base",
            str(ws / "build" / "hecsb_ros"),
        ],
    ]
    junit_path = (
        ws / "build" / "hecsb_ros" / "test_results" / "hecsb_ros" / "hecsb_ros_pytest.xunit.xml"
    )
    outputs = []
    for cmd in steps:
        out = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=1200)
        outputs.append(out.stdout + out.stderr)
        assert out.returncode == 0, (
            f"{' '.join(cmd[:2])}:\n{outputs[-1][-3000:]}\n{failed_cases(junit_path)}"
        )
    install = ws / "install" / "hecsb_ros"
    assert os.access(install / "lib" / "hecsb_ros" / "hecsb_edge", os.X_OK)
    assert (install / "share" / "hecsb_ros" / "launch" / "split_inference.launch.py").exists()
    summary = re.search(
        r"Summary: (\d+) tests, (\d+) errors, (\d+) failures, (\d+) skipped", outputs[-1]
    )
    assert summary, outputs[-1][-2000:]
    tests, errors, failures, skipped = map(int, summary.groups())
    assert tests >= 40 and errors == failures == skipped == 0, summary.group(0)
    # pytest ran the subset the build asked for, against this workspace's install
    junit = junit_path.read_text()
    assert (
        "test_the_tested_package_is_the_installed_one" in junit
        and "test_colcon_build" not in junit
    )


@pytest.mark.quick
def test_the_tested_package_is_the_installed_one():
    """Under 'colcon test' (HECSB_TESTED_PREFIX, set by CMakeLists.txt) the modules and messages
    come from the workspace's install; in a checkout, from the checkout."""
    import hecsb_ros.msg
    import hecsb_ros.nodes.edge

    prefix = os.environ.get("HECSB_TESTED_PREFIX")
    where = Path(prefix).resolve() if prefix else ROOT
    assert Path(hecsb_ros.nodes.edge.__file__).resolve().is_relative_to(where), (
        hecsb_ros.nodes.edge.__file__
    )
    if prefix:
        assert Path(hecsb_ros.msg.__file__).resolve().is_relative_to(where), hecsb_ros.msg.__file__
