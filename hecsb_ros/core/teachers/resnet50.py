"""torchvision ResNet-50 split before ``layer3``, as the seed paper splits it (section 4.2).

Registered as teacher ``resnet50`` (tag ``resnet50``); there are no default weights: name a file
(``teacher: /models/resnet50.pth`` or ``resnet50:/models/resnet50.pth``).

Weights come only from a local file: a torchvision ``.pth`` state dict (read with
``torch.load(weights_only=True)``) or a safetensors file; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from hecsb_ros.core.store import verify_checkpoint
from hecsb_ros.core.teachers.imagenet import imagenet_classes
from hecsb_ros.core.teachers.registry import Teacher
from hecsb_ros.core.teachers.spec import ClassifierSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision key prefix -> key prefix in :class:`SplitResNet50`
_KEY_MAP = {
    "conv1.": "head.0.",
    "bn1.": "head.1.",
    "layer1.": "head.4.",
    "layer2.": "head.5.",
    "layer3.": "tail.0.",
    "layer4.": "tail.1.",
    "fc.": "tail.4.",
}


class SplitResNet50(nn.Module):
    """ResNet-50 as ``head`` (conv1..layer2: ``(N, 3, 224, 224)`` -> ``(N, 512, 28, 28)``) and
    ``tail`` (layer3, layer4, avgpool, flatten, fc: -> ``(N, num_classes)``)."""

    split_channels = 512

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None, num_classes=num_classes)
        self.head = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2
        )
        self.tail = nn.Sequential(net.layer3, net.layer4, net.avgpool, nn.Flatten(1), net.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(x))


def torchvision_to_split_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision ResNet-50 keys (``layer3.0.conv1.weight``) to split keys
    (``tail.0.0...``).

    Keys already in split form are kept; an unknown key raises KeyError.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(("head.", "tail.")):
            out[key] = value
            continue
        for old, new in _KEY_MAP.items():
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
        else:
            raise KeyError(f"unexpected key {key!r} in a ResNet-50 state dict")
    return out


def read_resnet50_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a local ResNet-50 state dict (.safetensors, or a torchvision .pth without unpickling
    code)."""
    path = Path(path)
    verify_checkpoint(path)  # refused when a SHA256SUMS beside it lists another hash
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return torchvision_to_split_keys(state)


def resnet50_spec() -> ClassifierSpec:
    """Spec of torchvision's ImageNet ResNet-50 (3x224x224, ImageNet mean/std and classes)."""
    return ClassifierSpec(
        "resnet50", imagenet_classes(), (224, 224), 3, IMAGENET_MEAN, IMAGENET_STD
    )


def _build(spec: ClassifierSpec, **arch: Any) -> SplitResNet50:
    if spec.in_channels != 3:
        raise ValueError("resnet50 needs 3 input channels")
    return SplitResNet50(num_classes=spec.num_classes, **arch)


def _recognizes(names: list[str]) -> bool:
    """torchvision ResNet-50 tensor names (or the split's own): a fourth stage with a third
    block."""
    keys = set(names)
    return {"layer4.2.conv3.weight", "fc.weight"} <= keys or {
        "tail.1.2.conv3.weight",
        "tail.4.weight",
    } <= keys


TEACHER = Teacher(
    name="resnet50",
    tag="resnet50",
    build=_build,
    spec=resnet50_spec,
    read_weights=read_resnet50_weights,
    recognizes=_recognizes,
    description="torchvision ResNet-50 from a local weights file (.pth or .safetensors)",
)
