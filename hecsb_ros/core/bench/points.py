"""Rate points of the benchmark: every codec at every setting, discovered from the registry and the
shipped checkpoints' manifests (so that new or retrained rate levels are picked up on a re-run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hecsb_ros.core.learned.base import model_class
from hecsb_ros.core.store import level_path, list_levels, read_manifest

# : Quality settings of the classic image codecs (JPEG/WebP quality, WebP 101 = lossless, PNG
# level).
IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {
    "jpeg": (5, 10, 20, 30, 50, 75, 90),
    "webp": (1, 5, 10, 25, 50, 75, 90, 101),
    "png": (1, 9),
}
QUICK_IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {
    "jpeg": (10, 50, 90),
    "webp": (10, 75, 101),
    "png": (9,),
}
#: Camera scale: the same codecs on the teacher-sized crop, and the whole camera frame as ROS's
#: compressed image transport sends it (JPEG quality 95 is its default).
CAMERA_IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {
    "jpeg": (5, 10, 20, 30, 50, 75, 90),
    "webp": (1, 5, 10, 25, 50, 75, 90, 101),
    "png": (9,),
    "jpeg_frame": (10, 30, 50, 75, 95),
    "webp_frame": (5, 25, 50, 90),
    "png_frame": (9,),
}
QUICK_CAMERA_IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {
    "jpeg": (10, 90),
    "webp": (10, 101),
    "jpeg_frame": (50, 95),
}
#: Learned codecs benchmarked (registry names; their shipped rate levels are discovered).
LEARNED: tuple[str, ...] = ("hecsb", "hecsb_light", "svb", "crbq", "factorized", "hyperprior")
#: Display names, in plotting order.
LABELS: dict[str, str] = {
    "hecsb": "HECS-B",
    "hecsb_light": "HECS-B (light head)",
    "svb": "SVB",
    "crbq": "CR+BQ",
    "factorized": "Factorized prior",
    "hyperprior": "Mean-scale hyperprior",
    "jpeg": "JPEG",
    "webp": "WebP",
    "png": "PNG",
    "jpeg_frame": "JPEG (whole frame)",
    "webp_frame": "WebP (whole frame)",
    "png_frame": "PNG (whole frame)",
}
#: Codecs that send the (compressed) input image; the server runs the whole teacher.
INPUT_CODECS = (
    "jpeg",
    "webp",
    "png",
    "factorized",
    "hyperprior",
    "jpeg_frame",
    "webp_frame",
    "png_frame",
)
CLASSIC_INPUT_CODECS = ("jpeg", "webp", "png", "jpeg_frame", "webp_frame", "png_frame")
SPLIT_CODECS = ("hecsb", "hecsb_light", "svb", "crbq")


@dataclass(frozen=True)
class RatePoint:
    """One codec at one setting: registry name, quality (rate level), and a readable setting."""

    codec: str
    quality: int
    setting: str

    @property
    def key(self) -> str:
        return f"{self.codec}:{self.quality}"


def learned_levels(
    codec: str, folder: Path | None = None, tag: str = "fmnist"
) -> list[tuple[int, dict]]:
    """(level, manifest) of every shipped checkpoint of a learned codec for teacher ``tag``, by
    level."""
    return [
        (lv, read_manifest(level_path(codec, tag, lv, folder)))
        for lv in list_levels(codec, tag, folder)
    ]


def discover(
    codecs: list[str] | None = None,
    quick: bool = False,
    folder: Path | None = None,
    tag: str = "fmnist",
) -> list[RatePoint]:
    """All rate points of ``codecs`` (default: every codec benchmarked for teacher ``tag``), image
    codecs first. Camera-scale teachers (any tag but ``fmnist``) add the whole-frame image codecs.
    """
    camera = tag != "fmnist"
    qualities = (
        (QUICK_CAMERA_IMAGE_QUALITIES if quick else CAMERA_IMAGE_QUALITIES)
        if camera
        else (QUICK_IMAGE_QUALITIES if quick else IMAGE_QUALITIES)
    )
    codecs = codecs or [c for c in LABELS if c in LEARNED or c in qualities]
    points: list[RatePoint] = []
    for codec in codecs:
        if codec in qualities:
            points += [
                RatePoint(
                    codec,
                    q,
                    ("lossless" if codec.startswith("webp") and q == 101 else f"q={q}")
                    if not codec.startswith("png")
                    else f"level={q}",
                )
                for q in qualities[codec]
            ]
        elif codec in LEARNED:
            field = model_class(codec).rate_setting
            for level, manifest in learned_levels(codec, folder, tag):
                value = manifest.get(field, "?")
                points.append(RatePoint(codec, level, f"r{level} {field}={value}"))
        elif codec not in LABELS:
            raise ValueError(f"codec {codec!r} is not benchmarked; known: {', '.join(LABELS)}")
    return points
