"""ImageNet-1k class metadata, offline: the 1,000 synset ids (WordNet ids, sorted: the class index
order of torchvision's and EfficientNet's ImageNet weights) and the class names.

The synset list (``imagenet_synsets.txt``) comes from the public ``LOC_synset_mapping.txt`` of the
ImageNet localisation challenge (as redistributed in github ``PRIYE/Resnet50_ImageNet1k``); the
names are torchvision's (``ResNet50_Weights.IMAGENET1K_V2.meta["categories"]``, which differ from
that file's first names in two places: "crane bird" and "maillot tank suit").
"""

from __future__ import annotations

import functools
from pathlib import Path

SYNSETS_FILE = Path(__file__).with_name("imagenet_synsets.txt")


@functools.lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k synset ids in class-index order."""
    synsets = tuple(line.strip() for line in SYNSETS_FILE.read_text().splitlines() if line.strip())
    if len(synsets) != 1000 or list(synsets) != sorted(synsets):
        raise ValueError(f"{SYNSETS_FILE} must list the 1,000 ImageNet-1k synsets in sorted order")
    return synsets


def class_index(synset: str) -> int:
    """ImageNet-1k class index of a synset id (``n01440764`` -> 0), -1 when it is not one of the
    1,000."""
    try:
        return imagenet_synsets().index(synset)
    except ValueError:
        return -1


def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names shipped in torchvision's metadata (no download)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
