"""vision_msgs outputs of the server. vision_msgs is not installable here (no PyPI wheel), so a
stand-in module with the same message fields (vision_msgs 4.x) takes its place, as the launch
modules are replaced in test_launch_description.py."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from hecsb_ros.core.results import classify
from hecsb_ros.nodes import conversions
from hecsb_ros.nodes.conversions import (
    class_database_version,
    label_info_msg,
    ns_to_time,
    vision_classification_msg,
    vision_info_msg,
    vision_msgs_module,
)

pytestmark = [pytest.mark.ros]


def _message(name: str, **fields):
    """A stand-in message class: the fields of vision_msgs/<name> with their defaults, keyword
    init."""

    def init(self, **kwargs):
        for key, default in fields.items():
            setattr(self, key, kwargs.pop(key, default() if callable(default) else default))
        assert not kwargs, f"{name} has no fields {sorted(kwargs)}"

    return type(name, (), {"__init__": init, "__module__": "vision_msgs.msg"})


@pytest.fixture()
def vision(monkeypatch):
    msg = types.ModuleType("vision_msgs.msg")
    msg.ObjectHypothesis = _message("ObjectHypothesis", class_id="", score=0.0)
    msg.Classification = _message("Classification", header=Header, results=list)
    msg.VisionInfo = _message(
        "VisionInfo", header=Header, method="", database_location="", database_version=0
    )
    msg.VisionClass = _message("VisionClass", class_id=0, class_name="")
    msg.LabelInfo = _message("LabelInfo", header=Header, class_map=list, threshold=0.0)
    package = types.ModuleType("vision_msgs")
    package.msg = msg
    monkeypatch.setitem(sys.modules, "vision_msgs", package)
    monkeypatch.setitem(sys.modules, "vision_msgs.msg", msg)
    return msg


def test_module_found_only_when_installed_with_every_type(vision, monkeypatch):
    assert vision_msgs_module() is vision
    monkeypatch.delattr(vision, "LabelInfo")  # vision_msgs 3.x (Foxy) has no LabelInfo
    assert vision_msgs_module() is None
    monkeypatch.setitem(sys.modules, "vision_msgs", None)  # not installed: import fails
    monkeypatch.setitem(sys.modules, "vision_msgs.msg", None)
    assert vision_msgs_module() is None


def test_classification_carries_the_frames_header_and_the_top_k(vision):
    header = Header(stamp=ns_to_time(1_700_000_000_000_000_123), frame_id="camera")
    cls = classify(torch.tensor([0.1, 3.0, 0.2, 2.0]), ("a", "b", "c", "d"), k=3)
    msg = vision_classification_msg(vision, header, cls)
    assert msg.header == header
    assert [h.class_id for h in msg.results] == ["1", "3", "2"]
    assert [h.score for h in msg.results] == list(cls.topk_scores) and 0 < sum(
        h.score for h in msg.results
    ) <= 1


def test_class_database(vision):
    classes = ("T-shirt/top", "Trouser", "Pullover")
    header = Header(frame_id="")
    labels = label_info_msg(vision, header, classes)
    assert [(c.class_id, c.class_name) for c in labels.class_map] == [
        (0, "T-shirt/top"),
        (1, "Trouser"),
        (2, "Pullover"),
    ]
    info = vision_info_msg(
        vision, header, "hecsb_ros split inference", "/classification/label_info", classes
    )
    assert (
        info.method == "hecsb_ros split inference"
        and info.database_location == "/classification/label_info"
    )
    assert (
        info.database_version == class_database_version(classes)
        and 0 <= info.database_version < 2**31
    )
    assert class_database_version(classes[:2]) != info.database_version


class _Recorder:
    def __init__(self, topic: str, qos) -> None:
        self.topic_name, self.qos, self.sent = "/" + topic, qos, []

    def publish(self, msg) -> None:
        self.sent.append(msg)


def test_server_publishes_them_where_vision_msgs_exists(
    vision, ros_context, random_classifier, monkeypatch
):
    """The server's wiring, with recording publishers for the stand-in types (rclpy cannot publish
    them)."""
    from rclpy.qos import DurabilityPolicy

    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.nodes import server as server_module
    from hecsb_ros.nodes.conversions import latent_msg

    monkeypatch.setattr(server_module, "vision_msgs_module", conversions.vision_msgs_module)
    recorders: dict[str, _Recorder] = {}
    real = server_module.ServerNode.create_publisher

    def create_publisher(self, msg_type, topic, qos, **kwargs):
        if getattr(msg_type, "__module__", "") == "vision_msgs.msg":
            recorders[topic] = _Recorder(topic, qos)
            return recorders[topic]
        return real(self, msg_type, topic, qos, **kwargs)

    monkeypatch.setattr(server_module.ServerNode, "create_publisher", create_publisher)
    params = [
        Parameter("codec", value="png"),
        Parameter("checkpoint", value=str(random_classifier)),
    ]
    node = server_module.ServerNode(parameter_overrides=params)
    try:
        assert set(recorders) == {
            "classification/vision",
            "classification/vision_info",
            "classification/label_info",
        }
        for topic in ("classification/vision_info", "classification/label_info"):
            assert (
                recorders[topic].qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
                and len(recorders[topic].sent) == 1
            )
        info = recorders["classification/vision_info"].sent[0]
        assert info.database_location == "/classification/label_info" and "png" in info.method
        assert (
            len(recorders["classification/label_info"].sent[0].class_map)
            == len(node.codec.classes)
            == 10
        )
        codec = create_codec("png", CodecSettings(checkpoint=str(random_classifier)))
        header = Header(stamp=ns_to_time(1_700_000_000_000_000_321), frame_id="camera")
        frame = codec.encode(torch.zeros(28, 28, dtype=torch.uint8).numpy(), "mono8")
        latent = latent_msg(frame, header, 0, "png", codec.model_id, codec.quality, 0, 1.0)
        node._on_latent(serialize_message(latent))
        (vis,) = recorders["classification/vision"].sent
        assert vis.header == header and len(vis.results) == 5 and vis.results[0].class_id.isdigit()
    finally:
        node.destroy_node()


def test_server_runs_without_vision_msgs(ros_context, random_classifier, monkeypatch):
    from hecsb_ros.nodes import server as server_module

    monkeypatch.setattr(server_module, "vision_msgs_module", lambda: None)
    params = [
        Parameter("codec", value="png"),
        Parameter("checkpoint", value=str(random_classifier)),
    ]
    node = server_module.ServerNode(parameter_overrides=params)
    try:
        assert node._vision_pub is None
    finally:
        node.destroy_node()
