"""The camera source node in one process: frames are stamped when read, in the tick that publishes
them; an empty source fails at start-up; frames go out raw, compressed (as ROS's compressed image
transport publishes them) or both."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from hecsb_ros.core.sources import Frame
from hecsb_ros.nodes.qos import image_qos
from hecsb_ros.nodes.conversions import compressed_msg_to_array, image_msg_to_array, time_to_ns

from conftest import spin_until

pytestmark = [pytest.mark.ros]


class _Recorded:
    """Stands in for ``open_source``: each call opens a new source of numbered 4 x 4 mono8 frames
    and records when each frame is read (system clock, the clock the node stamps with)."""

    def __init__(self, frames: int | None = 50) -> None:
        self.frames = frames
        self.opened: list[list[int]] = []  # per opened source: the read times (ns) of its frames

    def __call__(self, *args, **kwargs):
        reads: list[int] = []
        self.opened.append(reads)

        def gen():
            i = 0
            while self.frames is None or i < self.frames:
                reads.append(time.time_ns())
                yield Frame(np.full((4, 4), i % 256, np.uint8), "mono8", -1)
                i += 1

        return gen()


def _params(**values):
    return [Parameter(k, value=v) for k, v in {"wait_for_subscribers_s": 0.0, **values}.items()]


def test_frames_are_stamped_when_read_in_the_tick_that_publishes_them(ros_context, monkeypatch):
    from hecsb_ros.nodes import camera_source

    source = _Recorded()
    monkeypatch.setattr(camera_source, "open_source", source)
    node = camera_source.CameraSource(parameter_overrides=_params(rate_hz=50.0, frames=8))
    peer = ros_context.create_node("test_viewer")
    got: list[tuple[int, int]] = []  # (frame number, stamp ns)

    def on_image(msg: Image) -> None:
        got.append((int(image_msg_to_array(msg)[0, 0]), time_to_ns(msg.header.stamp)))

    peer.create_subscription(Image, "image_raw", on_image, image_qos(50))
    try:
        assert spin_until(ros_context, [node, peer], lambda: len(got) == 8, timeout=20.0)
    finally:
        node.destroy_node()
        peer.destroy_node()
    # a probe at start-up, then the source
    assert len(source.opened) == 2 and len(source.opened[0]) == 1
    reads = source.opened[1]
    assert [n for n, _ in got] == list(range(8))
    for n, stamp in got:
        assert reads[n] <= stamp, n  # stamped after it was read ...
        assert n + 1 == len(reads) or stamp <= reads[n + 1], n  # ... before the next one was read
    assert len(reads) == 8  # never a frame read ahead of its tick


def test_an_empty_source_fails_at_start_up(ros_context, monkeypatch):
    from hecsb_ros.nodes import camera_source

    monkeypatch.setattr(camera_source, "open_source", _Recorded(frames=0))
    with pytest.raises(ValueError, match="produced no frame"):
        camera_source.CameraSource(parameter_overrides=_params())


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_and_raw_output(ros_context, tmp_path, fmt):
    from sklearn.datasets import load_sample_images

    from hecsb_ros.nodes.camera_source import CameraSource

    photo = cv2.cvtColor(cv2.resize(load_sample_images().images[1], (640, 480)), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "flower.png"), photo)
    node = CameraSource(
        parameter_overrides=_params(
            source="folder",
            path=str(tmp_path),
            output="both",
            compressed_format=fmt,
            rate_hz=20.0,
            frames=2,
        )
    )
    peer = ros_context.create_node("test_viewer")
    raw: list[Image] = []
    compressed: list[CompressedImage] = []
    peer.create_subscription(Image, "image_raw", raw.append, image_qos(10))
    peer.create_subscription(
        CompressedImage, "image_raw/compressed", compressed.append, image_qos(10)
    )
    try:
        assert spin_until(
            ros_context, [node, peer], lambda: len(raw) == 2 and len(compressed) == 2, timeout=20.0
        )
    finally:
        node.destroy_node()
        peer.destroy_node()
    assert compressed[0].format == f"bgr8; {fmt} compressed bgr8"
    assert compressed[0].header == raw[0].header  # one frame, one stamp
    image, encoding = compressed_msg_to_array(compressed[0])
    assert encoding == "bgr8" and image.shape == (480, 640, 3)
    err = np.abs(image.astype(int) - image_msg_to_array(raw[0]).astype(int)).mean()
    assert err == 0 if fmt == "png" else err < 3
