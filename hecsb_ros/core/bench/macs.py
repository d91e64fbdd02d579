"""Multiply-accumulates of a codec's edge half, counted while it encodes one image.

A machine-independent companion to the edge times: at 28x28 the measured time of a small network
is mostly per-call overhead, while the multiply-accumulate count (MACs) is what dominates on
camera-sized images. Counted by a global forward hook on the layers that do the arithmetic:

- ``Conv2d``: ``out.numel() * in_channels / groups * kh * kw``;
- ``ConvTranspose2d``: ``in.numel() * out_channels / groups * kh * kw``;
- ``Linear``: ``out.numel() * in_features``;
- CompressAI's ``GDN`` / IGDN (and their inference copies, ``FrozenGDN``): a 1x1 convolution over
  ``x^2``, ``out.numel() * C``;
- :class:`~hecsb_ros.core.measurement.MeasurementOperator` (``W``): ``out.numel() * l``.

Element-wise work (activations, rounding, normalisation) is not counted; neither is the entropy
coder, which is not multiply-accumulate work.
"""

from __future__ import annotations

import numpy as np
import torch
from compressai.layers import GDN
from torch import nn

from hecsb_ros.core.learned.gdn import FrozenGDN
from hecsb_ros.core.measurement import MeasurementOperator


def layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """MACs of one forward call of ``module`` (0 for layers without multiply-accumulates)."""
    if not isinstance(output, torch.Tensor):
        return 0
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        return inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, (GDN, FrozenGDN)):
        return output.numel() * output.shape[1]
    if isinstance(module, MeasurementOperator):
        return output.numel() * module.in_features
    return 0


def count_macs(fn, *args, **kwargs) -> tuple[int, object]:
    """Run ``fn(*args, **kwargs)`` and return (MACs of every module called, ``fn``'s result)."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        total += layer_macs(module, inputs, output)

    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        result = fn(*args, **kwargs)
    finally:
        handle.remove()
    return total, result


def edge_macs(codec, image: np.ndarray, encoding: str = "mono8") -> int:
    """MACs of ``codec.encode(image)`` (0 for the classic image codecs, which run no network)."""
    macs, _ = count_macs(codec.encode, image, encoding)
    return macs
