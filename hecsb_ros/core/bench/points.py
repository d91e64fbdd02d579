"""Rate points of the benchmark: every codec at every setting, discovered from the registry and the
shipped checkpoints' manifests (so that new or retrained rate levels are picked up on a re-run).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hecsb_ros.core.learned.base import model_class
from hecsb_ros.core.store import level_path, list_levels, read_manifest

#: Quality settings of the classic image codecs (JPEG/WebP quality, WebP 101 = lossless, PNG level).
IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {
    "jpeg": (5, 10, 20, 30, 50, 75, 90),
    "webp": (1, 5, 10, 25, 50, 75, 90, 101),
    "png": (1, 9),
}
QUICK_IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {"jpeg": (10, 50, 90), "webp": (10, 75, 101), "png": (9,)}
#: Learned codecs benchmarked (registry names; their shipped rate levels are discovered).
LEARNED: tuple[str, ...] = ("hecsb", "svb", "crbq", "factorized", "hyperprior")
#: Display names, in plotting order.
LABELS: dict[str, str] = {
    "hecsb": "HECS-B", "svb": "SVB", "crbq": "CR+BQ", "factorized": "Factorized prior",
    "hyperprior": "Mean-scale hyperprior", "jpeg": "JPEG", "webp": "WebP", "png": "PNG",
}
#: Codecs that send the (compressed) input image; the server runs the whole teacher.
INPUT_CODECS = ("jpeg", "webp", "png", "factorized", "hyperprior")
CLASSIC_INPUT_CODECS = ("jpeg", "webp", "png")
SPLIT_CODECS = ("hecsb", "svb", "crbq")


@dataclass(frozen=True)
class RatePoint:
    """One codec at one setting: registry name, quality (rate level), and a readable setting."""

    codec: str
    quality: int
    setting: str

    @property
    def key(self) -> str:
        return f"{self.codec}:{self.quality}"


def learned_levels(codec: str, folder: Path | None = None, tag: str = "fmnist") -> list[tuple[int, dict]]:
    """(level, manifest) of every shipped checkpoint of a learned codec for teacher ``tag``, by level."""
    return [(lv, read_manifest(level_path(codec, tag, lv, folder))) for lv in list_levels(codec, tag, folder)]


def discover(codecs: list[str] | None = None, quick: bool = False, folder: Path | None = None) -> list[RatePoint]:
    """All rate points of ``codecs`` (default: every benchmarked codec), image codecs first."""
    codecs = codecs or list(LABELS)
    qualities = QUICK_IMAGE_QUALITIES if quick else IMAGE_QUALITIES
    points: list[RatePoint] = []
    for codec in codecs:
        if codec in qualities:
            points += [RatePoint(codec, q, ("lossless" if codec == "webp" and q == 101 else f"q={q}")
                                 if codec != "png" else f"level={q}") for q in qualities[codec]]
        elif codec in LEARNED:
            field = model_class(codec).rate_setting
            for level, manifest in learned_levels(codec, folder):
                value = manifest.get(field, "?")
                points.append(RatePoint(codec, level, f"r{level} {field}={value}"))
        else:
            raise ValueError(f"codec {codec!r} is not benchmarked; known: {', '.join(LABELS)}")
    return points
