"""Rate points of the benchmark: every codec at every setting, discovered from the registry and the
shipped checkpoints' manifests (so that new or retrained rate levels are picked up on a re-run).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hecsb_ros.core.models import CHECKPOINT_DIR

#: Quality settings of the classic image codecs (JPEG/WebP quality, WebP 101 = lossless, PNG level).
IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {
    "jpeg": (5, 10, 20, 30, 50, 75, 90),
    "webp": (1, 5, 10, 25, 50, 75, 90, 101),
    "png": (1, 9),
}
QUICK_IMAGE_QUALITIES: dict[str, tuple[int, ...]] = {"jpeg": (10, 50, 90), "webp": (10, 75, 101), "png": (9,)}
#: Learned codecs: registry name -> checkpoint prefix and the manifest field naming the setting.
LEARNED: dict[str, tuple[str, str]] = {
    "hecsb": ("hecsb_fmnist", "beta"),
    "svb": ("svb_fmnist", "beta"),
    "crbq": ("crbq_fmnist", "channels"),
    "factorized": ("factorized_fmnist", "lmbda"),
    "hyperprior": ("hyperprior_fmnist", "lmbda"),
}
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


def _manifest(folder: Path, prefix: str, level: int) -> dict:
    path = folder / f"{prefix}_r{level}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def learned_levels(codec: str, folder: Path | None = None) -> list[tuple[int, dict]]:
    """(level, manifest) of every shipped checkpoint of a learned codec, sorted by level."""
    import re

    folder = folder or CHECKPOINT_DIR
    prefix, _ = LEARNED[codec]
    pattern = re.compile(rf"{re.escape(prefix)}_r(\d+)\.safetensors$")
    levels = sorted(int(m.group(1)) for m in (pattern.match(p.name) for p in folder.glob(f"{prefix}_r*.safetensors")) if m)
    return [(lv, _manifest(folder, prefix, lv)) for lv in levels]


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
            field = LEARNED[codec][1]
            for level, manifest in learned_levels(codec, folder):
                value = manifest.get(field, "?")
                points.append(RatePoint(codec, level, f"r{level} {field}={value}"))
        else:
            raise ValueError(f"codec {codec!r} is not benchmarked; known: {', '.join(LABELS)}")
    return points
