"""Frame sources of the camera node: data set (with labels), image folder, video file, errors."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from hecsb_ros.core.sources import open_source


def test_dataset_frames_carry_labels_and_loop():
    frames = list(
        itertools.islice(open_source("dataset", "fashion-mnist", "test", start_index=9998), 4)
    )
    assert [f.label for f in frames[:2]] != [-1, -1]
    assert frames[0].image.shape == (28, 28) and frames[0].encoding == "mono8"
    from hecsb_ros.core.datasets import load_fashion_mnist

    labels = load_fashion_mnist("test").labels
    assert [f.label for f in frames] == [labels[9998], labels[9999], labels[0], labels[1]]


def test_dataset_without_loop_stops():
    assert len(list(open_source("dataset", "mnist", "test", start_index=9995, loop=False))) == 5


def test_folder_frames_in_name_order(tmp_path):
    for i, v in enumerate((10, 20, 30)):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((6, 8, 3), v, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(open_source("folder", path=str(tmp_path), loop=False))
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert all(f.encoding == "bgr8" and f.label == -1 for f in frames)


def test_folder_labels_file_labels_its_images(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((6, 8, 3), np.uint8))
    (tmp_path / "labels.csv").write_text(
        "file,synset,class_index\nphotos/a.png,n1,7\nb.png,n2,-1\n"
    )
    frames = list(open_source("folder", path=str(tmp_path), loop=False))
    assert [f.label for f in frames] == [7, -1, -1]  # c.png is not listed: unknown


def test_folder_labels_file_errors_name_the_line(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((6, 8, 3), np.uint8))
    (tmp_path / "labels.csv").write_text("file,class_index\na.png,seven\n")
    with pytest.raises(ValueError, match="line 2.*not an integer"):
        next(iter(open_source("folder", path=str(tmp_path))))
    (tmp_path / "labels.csv").write_text("name,label\na.png,7\n")
    with pytest.raises(ValueError, match="'file' and 'class_index'"):
        next(iter(open_source("folder", path=str(tmp_path))))


def test_video_frames(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    assert writer.isOpened()
    for v in range(5):
        writer.write(np.full((24, 32, 3), v * 40, np.uint8))
    writer.release()
    frames = list(open_source("video", path=str(path), loop=False))
    assert len(frames) == 5 and frames[0].image.shape == (24, 32, 3)
    looped = list(itertools.islice(open_source("video", path=str(path), loop=True), 8))
    assert len(looped) == 8


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"source": "folder", "path": "/nonexistent"}, "does not exist"),
        ({"source": "video", "path": "/nonexistent.mp4"}, "does not exist"),
        ({"source": "camera", "device_index": 63}, "cannot open camera"),
        ({"source": "radar"}, "unknown source"),
    ],
)
def test_missing_sources_say_what_to_set(kwargs, message):
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        next(iter(open_source(**kwargs)))
