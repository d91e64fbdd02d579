"""A frames folder from an evaluation list: evenly spread photos, resized, labelled for the camera
source."""

from __future__ import annotations

import cv2
import numpy as np

from hecsb_ros.cli.frames_folder import main
from hecsb_ros.core.sources import folder_frames


def test_frames_folder_spreads_labelled_photos_and_the_folder_source_reads_them(tmp_path):
    labels = [-1, 3, 5, -1, 7, 9]
    rows = ["file,synset,class_index"]
    for i, label in enumerate(labels):
        cv2.imwrite(str(tmp_path / f"p{i}.jpg"), np.full((80, 100, 3), 40 * i, np.uint8))
        rows.append(f"p{i}.jpg,n0000000{i},{label}")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "frames"
    assert (
        main(
            [
                str(tmp_path / "list.csv"),
                "--out",
                str(out),
                "--count",
                "3",
                "--labelled-only",
                "--frame-size",
                "64",
                "48",
            ]
        )
        == 0
    )
    frames = list(folder_frames(str(out), loop=False))
    # labelled rows 3, 5, 7, 9 (photos 1, 2, 4, 5); three spread evenly: the first, a middle one,
    # the last
    assert [f.label for f in frames] == [3, 7, 9]
    assert all(f.image.shape == (48, 64, 3) and f.encoding == "bgr8" for f in frames)
    assert abs(int(frames[2].image.mean()) - 200) <= 2  # photo 5 (value 200), resized
    assert main([str(tmp_path / "list.csv"), "--out", str(out), "--count", "0"]) == 1
