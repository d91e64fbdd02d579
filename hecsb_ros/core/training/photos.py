"""Unlabelled photos and video frames for label-free distillation, and labelled image lists for
evaluation.

Camera-scale training needs no labels: stage 1 matches the teacher's split features, stage 2 its
soft outputs (seed paper eq. 10-12 with ``alpha = 1``). :class:`PhotoCrops` turns image folders and
video files (every k-th frame) into a fixed set of augmented crops (random resized crops and flips,
made once with a fixed seed) at the teacher's input size, and caches them with the teacher's
outputs on them (split features and logits) in a folder: the teacher's 30-40 ms per image at 224 x
224 on a CPU is then paid once, not every epoch. A robot's own footage is distilled the same way
(README, "Camera scale").

:class:`ImageList` is an evaluation set of files with labels (``-1``: unlabelled), read batch by
batch and preprocessed exactly as the edge node preprocesses a camera frame
(:func:`hecsb_ros.core.preprocess.prepare_image`: the teacher's resize policy).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hecsb_ros.core.preprocess import fit, prepare_image
from hecsb_ros.core.teachers.classifier import Classifier
from hecsb_ros.core.teachers.spec import ClassifierSpec, images_to_tensor

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
#: smallest side a photo must have to be used (icons and thumbnails are skipped)
MIN_SIDE = 128


def list_media(paths: Sequence[Path | str]) -> tuple[list[Path], list[Path]]:
    """(images, videos) under ``paths`` (folders are searched recursively), each sorted."""
    images, videos = [], []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist: give image folders or video files")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        images += [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        videos += [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    return sorted(set(images)), sorted(set(videos))


def read_rgb(path: Path) -> np.ndarray | None:
    """An image file as uint8 RGB ``(H, W, 3)``; None when OpenCV cannot read it."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def video_frames(path: Path, every: int) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, uint8 RGB frame) of every ``every``-th frame of a video file."""
    cap = cv2.VideoCapture(str(path))
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            if index % every == 0:
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


def random_resized_crop(
    image: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.25, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    interpolation: str = "bicubic",
) -> np.ndarray:
    """A random crop of ``scale`` of the area and ``ratio`` aspect, resized to ``size``, flipped at
    random."""
    ih, iw = image.shape[:2]
    for _ in range(10):
        area = ih * iw * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= iw and 0 < h <= ih:
            top, left = int(rng.integers(0, ih - h + 1)), int(rng.integers(0, iw - w + 1))
            crop = image[top : top + h, left : left + w]
            break
    else:  # fall back to the centre crop of the whole short side
        crop = fit(image, (min(ih, iw), min(ih, iw)), "center_crop")
    out = fit(crop, size, "squash", interpolation=interpolation)
    return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)


def average_hash(path: Path, size: int = 16) -> np.ndarray | None:
    """A ``size * size``-bit average hash of an image file (grey, area-resized, thresholded at its
    mean): photos that differ only by re-encoding or resizing get (nearly) the same bits. None when
    OpenCV cannot read the file."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (small > small.mean()).reshape(-1)


def near_duplicates(
    candidates: Sequence[Path], references: Sequence[Path], max_distance: int = 4
) -> list[tuple[Path, Path, int]]:
    """``(candidate, reference, distance)`` for every candidate whose average hash is within
    ``max_distance`` bits (of 256) of a reference's: used to keep evaluation photos out of a
    training pool. Different photos of the same kind of thing are 10 or more bits apart; the same
    photo re-encoded or resized, 0 to 2."""
    refs = [(r, h) for r in references if (h := average_hash(r)) is not None]
    if not refs:
        return []
    table = np.stack([h for _, h in refs])
    found = []
    for path in candidates:
        h = average_hash(path)
        if h is None:
            continue
        distance = (table != h).sum(1)
        i = int(distance.argmin())
        if distance[i] <= max_distance:
            found.append((path, refs[i][0], int(distance[i])))
    return found


class PhotoCrops:
    """Fixed augmented crops of photos and video frames, with the teacher's outputs, cached on
    disk.

    ``batch(idx)`` gives the normalised crops ``(N, C, H, W)`` and the teacher's top-1 class as the
    label (so that stage 2's accuracy is agreement with the teacher); ``targets(idx)`` gives the
    cached ``features`` (split features) and ``logits`` as float32, which the distiller uses
    instead of running the teacher.

    Args:
        paths: image folders and video files. teacher: the teacher whose outputs are cached (its
        spec sets the crop size). cache_dir: where the cache lives (a subfolder per content key:
        sources, crops, seed, teacher). crops_per_image: crops made from each photo; a video frame
        gets one. video_every: use every k-th frame of a video. holdout: photos (whole photos, all
        their crops) kept out for comparing runs (:meth:`split`).
    """

    def __init__(
        self,
        paths: Sequence[Path | str],
        teacher: Classifier,
        cache_dir: Path | str,
        crops_per_image: int = 2,
        video_every: int = 10,
        seed: int = 0,
        scale: tuple[float, float] = (0.25, 1.0),
        batch_size: int = 32,
        progress: bool = True,
    ) -> None:
        self.spec = teacher.spec
        images, videos = list_media(paths)
        if not images and not videos:
            raise FileNotFoundError(f"no images or videos under {', '.join(map(str, paths))}")
        key = json.dumps(
            {
                "images": [str(p) for p in images],
                "videos": [str(p) for p in videos],
                "crops": crops_per_image,
                "every": video_every,
                "seed": seed,
                "scale": list(scale),
                "teacher": teacher.model_id,
                "spec": self.spec.to_json(),
            },
            sort_keys=True,
        )
        self.folder = Path(cache_dir) / hashlib.sha256(key.encode()).hexdigest()[:16]
        if not (self.folder / "index.json").exists():
            self._build(
                images,
                videos,
                teacher,
                crops_per_image,
                video_every,
                seed,
                scale,
                batch_size,
                progress,
            )
        index = json.loads((self.folder / "index.json").read_text())
        self.items: list[dict[str, Any]] = index["items"]
        n = len(self.items)
        h, w = self.spec.input_size
        c_h, hw = index["feature_shape"][0], tuple(index["feature_shape"][1:])
        self.images = np.lib.format.open_memmap(self.folder / "images.npy", mode="r")
        self.features = np.lib.format.open_memmap(self.folder / "features.npy", mode="r")
        self.logits = np.lib.format.open_memmap(self.folder / "logits.npy", mode="r")
        assert self.images.shape == (n, h, w, self.spec.in_channels) and self.features.shape == (
            n,
            c_h,
            *hw,
        )
        self.labels = torch.from_numpy(np.asarray(self.logits).argmax(1).astype(np.int64))
        self.rows = np.arange(n)

    # -- building the cache ---------------------------------------------------------------------
    def _crops(
        self,
        images: list[Path],
        videos: list[Path],
        k: int,
        every: int,
        seed: int,
        scale: tuple[float, float],
    ) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        size = tuple(self.spec.input_size)
        for i, path in enumerate(images):
            img = read_rgb(path)
            if img is None or min(img.shape[:2]) < MIN_SIDE:
                continue
            rng = np.random.default_rng([seed, i])
            for j in range(k):
                yield {"source": str(path), "crop": j}, random_resized_crop(img, size, rng, scale)
        for v, path in enumerate(videos):
            for index, frame in video_frames(path, every):
                rng = np.random.default_rng([seed, len(images) + v, index])
                yield (
                    {"source": str(path), "frame": index},
                    random_resized_crop(frame, size, rng, scale),
                )

    def _build(
        self,
        images: list[Path],
        videos: list[Path],
        teacher: Classifier,
        k: int,
        every: int,
        seed: int,
        scale: tuple[float, float],
        batch_size: int,
        progress: bool,
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        h, w = self.spec.input_size
        total = len(images) * k + sum(_frame_count(v) // every + 1 for v in videos)
        part = self.folder / "images.part.npy"
        buf = np.lib.format.open_memmap(
            part, mode="w+", dtype=np.uint8, shape=(total, h, w, self.spec.in_channels)
        )
        items = []
        for item, crop in tqdm(
            self._crops(images, videos, k, every, seed, scale),
            total=total,
            unit="crop",
            desc="crops",
            file=sys.stderr,
            disable=not progress,
        ):
            if len(items) == total:
                break
            buf[len(items)] = (
                crop
                if self.spec.in_channels == 3
                else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None]
            )
            items.append(item)
        stack = buf[: len(items)]
        c_h, hw = teacher.split_features()
        tmp = {name: self.folder / f"{name}.tmp.npy" for name in ("images", "features", "logits")}
        np.save(tmp["images"], stack)
        del stack, buf
        part.unlink()
        stack = np.lib.format.open_memmap(tmp["images"], mode="r")
        feats = np.lib.format.open_memmap(
            tmp["features"], mode="w+", dtype=np.float16, shape=(len(items), c_h, *hw)
        )
        logits = np.lib.format.open_memmap(
            tmp["logits"], mode="w+", dtype=np.float16, shape=(len(items), self.spec.num_classes)
        )
        model = teacher.model.eval()
        with torch.inference_mode():
            for start in tqdm(
                range(0, len(items), batch_size),
                unit="batch",
                desc="teacher outputs",
                file=sys.stderr,
                disable=not progress,
            ):
                x = images_to_tensor(stack[start : start + batch_size], self.spec)
                h = model.head(x)
                feats[start : start + len(x)] = h.numpy().astype(np.float16)
                logits[start : start + len(x)] = model.tail(h).numpy().astype(np.float16)
        feats.flush()
        logits.flush()
        del feats, logits
        for name, path in tmp.items():
            path.replace(self.folder / f"{name}.npy")
        (self.folder / "index.json").write_text(
            json.dumps(
                {
                    "items": items,
                    "feature_shape": [c_h, *hw],
                    "teacher_model_id": teacher.model_id,
                    "images": len(images),
                    "videos": len(videos),
                }
            )
            + "\n"
        )

    # -- the training-source protocol
    # ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def sources(self) -> list[str]:
        """The photo or video each crop comes from (in the order of the rows)."""
        return [self.items[int(r)]["source"] for r in self.rows]

    def split(
        self, holdout: int, seed: int = 20240601
    ) -> tuple["PhotoCrops", "PhotoCrops | None"]:
        """(rest, held out): ``holdout`` whole photos (all their crops) set aside, chosen with
        ``seed``."""
        if holdout <= 0:
            return self, None
        names = sorted(set(self.sources()))
        if holdout >= len(names):
            raise ValueError(f"cannot hold out {holdout} of {len(names)} photos")
        rng = np.random.default_rng(seed)
        held = set(rng.choice(names, holdout, replace=False).tolist())
        mask = np.array([s in held for s in self.sources()])
        return self._subset(self.rows[~mask]), self._subset(self.rows[mask])

    def first(self, n: int) -> "PhotoCrops":
        """The first ``n`` crops (for short runs)."""
        return self._subset(self.rows[:n])

    def _subset(self, rows: np.ndarray) -> "PhotoCrops":
        other = object.__new__(PhotoCrops)
        other.__dict__.update(self.__dict__)
        other.rows = rows
        return other

    def batch(
        self, idx: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.rows[np.asarray(idx, dtype=np.int64)]
        return images_to_tensor(np.asarray(self.images[rows]), self.spec), self.labels[rows]

    def targets(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The cached teacher outputs of the crops at ``idx``: ``features`` and ``logits``
        (float32)."""
        rows = self.rows[np.asarray(idx, dtype=np.int64)]
        return {
            "features": torch.from_numpy(np.asarray(self.features[rows], dtype=np.float32)),
            "logits": torch.from_numpy(np.asarray(self.logits[rows], dtype=np.float32)),
        }

    @property
    def x(self) -> "_Lazy":
        return _Lazy(self)

    @property
    def y(self) -> torch.Tensor:
        return self.labels[self.rows]


def _frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        cap.release()


class _Lazy:
    """A source's images as a lazy ``(N, C, H, W)`` sequence (decoded when indexed)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: slice | torch.Tensor) -> torch.Tensor:
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        return self.source.batch(torch.as_tensor(idx))[0]


class ImageList:
    """Labelled evaluation images: ``file,class_index`` rows of a CSV (paths relative to it; ``-1``
    = no label), preprocessed as the edge preprocesses a camera frame. ``x`` is lazy, ``y`` the
    labels."""

    def __init__(
        self,
        csv_path: Path | str,
        spec: ClassifierSpec,
        labelled_only: bool = False,
        limit: int | None = None,
    ) -> None:
        csv_path = Path(csv_path)
        with open(csv_path, newline="") as fh:
            rows = [
                (csv_path.parent / r["file"], int(r["class_index"])) for r in csv.DictReader(fh)
            ]
        if labelled_only:
            rows = [r for r in rows if r[1] >= 0]
        rows = rows[:limit]
        if not rows:
            raise FileNotFoundError(f"no images listed in {csv_path}")
        self.spec = spec
        self.files = [f for f, _ in rows]
        self.labels = torch.tensor([c for _, c in rows], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.files)

    def batch(
        self, idx: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(idx).reshape(-1)
        frames = []
        for i in idx.tolist():
            img = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read {self.files[i]}")
            frames.append(prepare_image(img, "bgr8", self.spec))
        return images_to_tensor(np.stack(frames), self.spec), self.labels[idx]

    @property
    def x(self) -> _Lazy:
        return _Lazy(self)

    @property
    def y(self) -> torch.Tensor:
        return self.labels
