"""A photo pool served as fresh augmented views, for long label-free distillation runs.

"Function matching" (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and
consistent"): teacher and student see the same augmented view, a new one every time a photo is
drawn, and the teacher's outputs are computed on that very view (no cache), so a long schedule
never repeats an input. :class:`PhotoPool` is such a source: ``batch(idx, gen)`` decodes the photos
at ``idx`` and returns one fresh random resized crop of each (area ``scale``, aspect 3:4-4:3,
horizontal flip at random), drawn from ``gen``; its labels are ``-1`` (the distiller then takes the
teacher's top-1 on the view, :class:`~hecsb_ros.core.training.distill.Distiller`). Video files
contribute every k-th frame, written once as JPEG files under ``frames_dir``.

Unlike :class:`~hecsb_ros.core.training.photos.PhotoCrops` nothing is precomputed: the pool holds
file names only, so it scales to any number of photos. :attr:`PhotoPool.version` names the pool's
content (its files, relative to their folders, and the view settings) for the training ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from hecsb_ros.core.teachers.spec import ClassifierSpec, images_to_tensor
from hecsb_ros.core.training.photos import (
    MIN_SIDE,
    _Lazy,
    list_media,
    random_resized_crop,
    video_frames,
)


def _extract_frames(video: Path, every: int, frames_dir: Path) -> list[Path]:
    """Every ``every``-th frame of ``video`` as JPEG files (written once, then reused)."""
    key = hashlib.sha256(f"{video.resolve()}|{video.stat().st_size}|{every}".encode()).hexdigest()[
        :12
    ]
    folder = frames_dir / f"{video.stem}-{key}"
    done = folder / "done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for index, frame in video_frames(video, every):
            cv2.imwrite(
                str(folder / f"frame_{index:06d}.jpg"),
                cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
        done.write_text("")
    return sorted(folder.glob("frame_*.jpg"))


class PhotoPool:
    """Photos (and video frames) of ``paths``, served as a fresh random view per draw.

    Args:
        paths: image folders and video files; each is one *source* (named by its folder or file
            name) in :meth:`composition`.
        spec: the teacher's input spec (view size, channels, normalisation). frames_dir: where
        video frames are written as JPEG files (required when ``paths`` holds videos). video_every:
        use every k-th frame of a video. scale: area range of the random resized crop.
    """

    def __init__(
        self,
        paths: Sequence[Path | str],
        spec: ClassifierSpec,
        frames_dir: Path | str | None = None,
        video_every: int = 10,
        scale: tuple[float, float] = (0.25, 1.0),
    ) -> None:
        self.spec = spec
        self.scale = tuple(scale)
        files: list[Path] = []
        sources: list[str] = []
        names: list[str] = []
        for root in map(Path, paths):
            images, videos = list_media([root])
            if videos:
                if frames_dir is None:
                    raise ValueError(f"{root} holds videos: give frames_dir for their frames")
                for v in videos:
                    images += _extract_frames(v, video_every, Path(frames_dir))
            base = root if root.is_dir() else root.parent
            files += images
            sources += [root.name] * len(images)
            names += [
                f"{root.name}/{p.relative_to(base) if p.is_relative_to(base) else p.name}"
                for p in images
            ]
        if not files:
            raise FileNotFoundError(f"no images or videos under {', '.join(map(str, paths))}")
        self.files = files
        self.source_names = sources
        digest = hashlib.sha256(
            json.dumps(
                {
                    "files": sorted(names),
                    "every": video_every,
                    "scale": list(self.scale),
                    "size": list(spec.input_size),
                }
            ).encode()
        ).hexdigest()
        #: content key of the pool (files and view settings), recorded in manifests and the ledger
        self.version = f"{len(files)}-{digest[:10]}"
        self.rows = np.arange(len(files))

    # -- the training-source protocol
    # ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def sources(self) -> list[str]:
        """The file of each row."""
        return [str(self.files[int(r)]) for r in self.rows]

    def composition(self) -> dict[str, int]:
        """Photos per source, largest first."""
        return dict(Counter(self.source_names[int(r)] for r in self.rows).most_common())

    def split(self, holdout: int, seed: int = 20240601) -> tuple["PhotoPool", list[Path]]:
        """(rest, held-out files): ``holdout`` photos set aside, chosen with ``seed``."""
        if holdout <= 0:
            return self, []
        if holdout >= len(self):
            raise ValueError(f"cannot hold out {holdout} of {len(self)} photos")
        rng = np.random.default_rng(seed)
        held = np.sort(rng.choice(len(self), holdout, replace=False))
        mask = np.zeros(len(self), bool)
        mask[held] = True
        return self._subset(self.rows[~mask]), [self.files[int(r)] for r in self.rows[mask]]

    def first(self, n: int) -> "PhotoPool":
        return self._subset(self.rows[:n])

    def _subset(self, rows: np.ndarray) -> "PhotoPool":
        other = object.__new__(PhotoPool)
        other.__dict__.update(self.__dict__)
        other.rows = rows
        return other

    def view(self, row: int, rng: np.random.Generator) -> np.ndarray:
        """One random view (uint8 ``(H, W, C)``) of the photo of ``row``; a photo that cannot be
        read or is smaller than :data:`~hecsb_ros.core.training.photos.MIN_SIDE` gives a view of
        the next one."""
        for k in range(len(self.rows)):
            path = self.files[int(self.rows[(row + k) % len(self.rows)])]
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is not None and min(img.shape[:2]) >= MIN_SIDE:
                rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                out = random_resized_crop(rgb, tuple(self.spec.input_size), rng, self.scale)
                return (
                    out
                    if self.spec.in_channels == 3
                    else cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None]
                )
        raise FileNotFoundError("no readable photo in the pool")

    def batch(
        self, idx: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh views ``(N, C, H, W)`` of the photos at ``idx`` (random state from ``gen``) and
        labels ``-1`` (none: the teacher's top-1 on the view stands in for them)."""
        idx = torch.as_tensor(idx).reshape(-1)
        seed = int(torch.randint(0, 2**62, (1,), generator=gen)) if gen is not None else 0
        rng = np.random.default_rng(seed)
        views = np.stack([self.view(int(i), rng) for i in idx.tolist()])
        return images_to_tensor(views, self.spec), torch.full((len(idx),), -1, dtype=torch.int64)

    @property
    def x(self) -> _Lazy:
        return _Lazy(self)

    @property
    def y(self) -> torch.Tensor:
        return torch.full((len(self),), -1, dtype=torch.int64)
