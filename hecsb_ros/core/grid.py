"""Spatial geometry shared by the bottlenecks: how many stride-2 layers an encoder needs and how
many 2x upsampling steps its decoder needs to reach the teacher's features at the split.

Fashion-MNIST split: input 28 x 28, features 14 x 14, latent 7 x 7 (two stride-2 layers, one
upsampling step). torchvision ResNet-50 split before ``layer3``: input 224 x 224, features
28 x 28, latent 28 x 28 (three stride-2 layers, none).
"""

from __future__ import annotations

import math


def downsampled(size: tuple[int, int], steps: int) -> tuple[int, int]:
    """``size`` after ``steps`` stride-2 layers; ValueError unless it divides evenly."""
    h, w = size
    if h % (1 << steps) or w % (1 << steps):
        raise ValueError(f"input size {tuple(size)} not divisible by 2^{steps}")
    return (h >> steps, w >> steps)


def upsampling_steps(latent_size: tuple[int, int], feature_size: tuple[int, int]) -> int:
    """2x upsampling steps from the latent grid to the feature grid; ValueError if there is no such
    k."""
    ratio = feature_size[0] / latent_size[0]
    steps = round(math.log2(ratio)) if ratio >= 1 else -1
    if steps < 0 or (latent_size[0] << steps, latent_size[1] << steps) != tuple(feature_size):
        raise ValueError(
            f"feature size {tuple(feature_size)} is not the latent grid {tuple(latent_size)} x 2^k"
        )
    return steps


def encoder_depth(
    input_size: tuple[int, int], feature_size: tuple[int, int], minimum: int = 2
) -> int:
    """Stride-2 layers an encoder at the split needs: at least ``minimum``, and enough that the
    latent grid is no finer than the feature grid (Fashion-MNIST 2, ResNet-50 at 224 x 224: 3)."""
    ratio = input_size[0] / feature_size[0]
    return max(minimum, round(math.log2(ratio)) if ratio >= 1 else 0)
