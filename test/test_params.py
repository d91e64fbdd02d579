"""Parameter table: validation, YAML defaults in agreement, rejection at start-up and at
runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from hecsb_ros.params import NODE_PARAMS, Param, check_value

from conftest import spin_until  # noqa: F401

pytestmark = [pytest.mark.ros, pytest.mark.quick]

CONFIG = Path(__file__).resolve().parents[1] / "config" / "split_inference.yaml"
NODE_NAMES = {
    "camera_source": "hecsb_camera_source",
    "edge": "hecsb_edge",
    "server": "hecsb_server",
    "link_emulator": "hecsb_link_emulator",
}


def test_check_value_reasons():
    p = Param("rate_hz", 10.0, "x", min=0.01, max=100.0)
    assert check_value(p, 5) is None  # ints are accepted for floats
    assert "below the minimum" in check_value(p, 0.0)
    assert "must be float" in check_value(p, "fast")
    assert "finite" in check_value(p, float("nan"))
    c = Param("profile", "4g", "x", choices=("4g", "5g"))
    assert "not one of" in check_value(c, "3g")
    assert "must be bool" in check_value(Param("loop", True, "x"), 1)


def test_every_parameter_has_a_description_and_a_valid_default():
    for params in NODE_PARAMS.values():
        for p in params:
            assert p.description, p.name
            assert check_value(p, p.default) is None, p.name


def test_config_yaml_holds_exactly_the_declared_defaults():
    data = yaml.safe_load(CONFIG.read_text())
    for key, params in NODE_PARAMS.items():
        assert data[NODE_NAMES[key]]["ros__parameters"] == {p.name: p.default for p in params}


def test_invalid_start_up_value_fails_fast_with_the_reason(ros_context):
    from hecsb_ros.nodes.link_emulator import LinkEmulator

    with pytest.raises(ValueError, match="profile='3g' is not one of"):
        LinkEmulator(parameter_overrides=[Parameter("profile", value="3g")])


def test_invalid_runtime_change_is_rejected_and_valid_one_applied(ros_context):
    from hecsb_ros.nodes.link_emulator import LinkEmulator

    node = LinkEmulator()
    try:
        bad = node.set_parameters([Parameter("loss", value=1.5)])[0]
        assert not bad.successful and (
            "out of range" in bad.reason or "above the maximum" in bad.reason
        )
        bad_type = node.set_parameters([Parameter("profile", value="lte")])[0]
        assert not bad_type.successful
        ro = node.set_parameters([Parameter("seed", value=3)])[0]
        assert not ro.successful  # read-only
        ok = node.set_parameters([Parameter("profile", value="wifi")])[0]
        assert ok.successful and node.shaper.profile.rate_mbps == 54.0
    finally:
        node.on_shutdown()
        node.destroy_node()


def test_descriptors_carry_ranges(ros_context):
    from hecsb_ros.nodes.link_emulator import LinkEmulator

    node = LinkEmulator()
    try:
        d = node.describe_parameter("loss")
        assert d.description and d.floating_point_range[0].to_value == 1.0
        assert node.describe_parameter("seed").read_only
    finally:
        node.on_shutdown()
        node.destroy_node()


def test_resize_choices_are_the_teachers_policies():
    from hecsb_ros.core.teachers.spec import RESIZE_POLICIES
    from hecsb_ros.params import EDGE, RESIZE_CHOICES, SERVER

    assert RESIZE_CHOICES == ("",) + RESIZE_POLICIES
    for params in (EDGE, SERVER):
        assert {p.name: p for p in params}["resize"].choices == RESIZE_CHOICES


@pytest.mark.parametrize("node_name", ["edge", "server"])
def test_resize_reaches_the_codec_and_a_wrong_one_fails_fast(
    ros_context, random_classifier, node_name
):
    from hecsb_ros.nodes.edge import EdgeNode
    from hecsb_ros.nodes.server import ServerNode

    cls = EdgeNode if node_name == "edge" else ServerNode
    base = [
        Parameter("codec", value="png_frame"),
        Parameter("checkpoint", value=str(random_classifier)),
    ]
    node = cls(parameter_overrides=base + [Parameter("resize", value="letterbox")])
    try:
        assert node.codec.settings.resize == "letterbox"
        assert node.describe_parameter("resize").read_only
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="resize='crop' is not one of"):
        cls(parameter_overrides=base + [Parameter("resize", value="crop")])
