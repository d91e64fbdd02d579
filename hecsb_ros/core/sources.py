"""Frame sources for the camera node (ROS-free): data set, image folder, video file, camera.

Each yields ``Frame(image, encoding, label)``; ``label`` is -1 when the source does not know it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from hecsb_ros.core.datasets import load_dataset

#: Photos a camera-scale demo plays when no folder is named: the sample images of Debian's
#: ``opencv-doc`` package (91 photos; ``apt-get install opencv-doc``).
SAMPLE_PHOTOS = Path("/usr/share/doc/opencv-doc/examples/data")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (H, W) or (H, W, C) uint8
    encoding: str  # mono8 / bgr8
    label: int = -1


def dataset_frames(name: str, split: str, start: int = 0, loop: bool = True) -> Iterator[Frame]:
    """Images of a data set in order from ``start``, with their labels (mono8)."""
    data = load_dataset(name, split)
    if start >= len(data):
        raise ValueError(f"start_index {start} beyond the {len(data)} images of {name}/{split}")
    while True:
        for i in range(start, len(data)):
            yield Frame(data.images[i], "mono8", int(data.labels[i]))
        if not loop:
            return
        start = 0


# : A file of this name in an image folder gives its images' true classes (``file,class_index``
# columns, : ``file`` relative to the folder or ending in the image's name; ``-1`` = unknown); the
# camera : source then sends them on ``image_raw/ground_truth`` and whoever scores the results (the
# nodes' : statistics, the demo, the benchmarks) counts accuracy.
LABELS_FILE = "labels.csv"


def folder_labels(folder: Path) -> dict[str, int]:
    """Image file name -> class id from ``folder/labels.csv`` (empty when there is none).

    Raises ValueError, naming the file and line, on a file without ``file`` and ``class_index``
    columns or with a class that is not an integer.
    """
    import csv

    path = folder / LABELS_FILE
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file", "class_index"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path}: needs the columns 'file' and 'class_index', found {reader.fieldnames}"
            )
        labels = {}
        for line, row in enumerate(reader, start=2):
            try:
                labels[Path(row["file"]).name] = int(row["class_index"])
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path}, line {line}: class_index {row.get('class_index')!r} is "
                    "not an integer"
                )
    return labels


def photo_frame(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A photo as a ``size`` = (W, H) bgr8 camera frame (area-resized), as the camera-scale
    benchmarks make their frames; ValueError naming the file when it cannot be read."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read the photo {path}")
    return cv2.resize(img, tuple(int(v) for v in size), interpolation=cv2.INTER_AREA)


def write_frames_folder(folder: Path, frames: Iterable[np.ndarray], labels: Iterable[int]) -> int:
    """``frames`` as ``frame_0000.png``, ... in ``folder`` with their classes (-1 = unknown) in its
    ``labels.csv``: a folder the folder source (:func:`folder_frames`) plays with labels. Returns
    the count."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,class_index"]
    for i, (frame, label) in enumerate(zip(frames, labels)):
        name = f"frame_{i:04d}.png"
        if not cv2.imwrite(str(folder / name), frame):
            raise OSError(f"cannot write {folder / name}")
        rows.append(f"{name},{int(label)}")
    (folder / LABELS_FILE).write_text("\n".join(rows) + "\n")
    return len(rows) - 1


def folder_frames(path: str, loop: bool = True) -> Iterator[Frame]:
    """Images of a folder in name order (bgr8), labelled from its ``labels.csv`` when it has one;
    unreadable files are skipped."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {path!r} does not exist; set the 'path' parameter")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path!r}")
    labels = folder_labels(folder)
    while True:
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                yield Frame(img, "bgr8", labels.get(f.name, -1))
        if not loop:
            return


def capture_frames(target: str | int, loop: bool = True) -> Iterator[Frame]:
    """Frames of a video file (path) or camera (index) through OpenCV (bgr8)."""
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        what = f"camera {target}" if isinstance(target, int) else f"video {target!r}"
        raise FileNotFoundError(
            f"OpenCV cannot open {what}; check the 'path'/'device_index' parameter"
        )
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                if loop and isinstance(target, str):
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, img = cap.read()
                if not ok:
                    return
            yield Frame(img, "bgr8")
    finally:
        cap.release()


def open_source(
    source: str,
    dataset: str = "fashion-mnist",
    split: str = "test",
    path: str = "",
    device_index: int = 0,
    start_index: int = 0,
    loop: bool = True,
) -> Iterator[Frame]:
    """Frame iterator for the camera node's parameters."""
    if source == "dataset":
        return dataset_frames(dataset, split, start_index, loop)
    if source == "folder":
        return folder_frames(path, loop)
    if source == "video":
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"video file {path!r} does not exist; set the 'path' parameter"
            )
        return capture_frames(path, loop)
    if source == "camera":
        return capture_frames(device_index, loop)
    raise ValueError(f"unknown source {source!r}; use dataset, folder, video or camera")
