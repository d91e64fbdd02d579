"""torchvision ResNet-50 split before ``layer3``, as the seed paper splits it (section 4.2).

Weights come only from a local file: a torchvision ``.pth`` state dict (read with
``torch.load(weights_only=True)``) or a safetensors file; nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision key prefix -> key prefix in :class:`SplitResNet50`
_KEY_MAP = {"conv1.": "head.0.", "bn1.": "head.1.", "layer1.": "head.4.", "layer2.": "head.5.",
            "layer3.": "tail.0.", "layer4.": "tail.1.", "fc.": "tail.4."}


def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names shipped in torchvision's metadata (no download)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


class SplitResNet50(nn.Module):
    """ResNet-50 as ``head`` (conv1..layer2: ``(N, 3, 224, 224)`` -> ``(N, 512, 28, 28)``) and
    ``tail`` (layer3, layer4, avgpool, flatten, fc: -> ``(N, num_classes)``)."""

    split_channels = 512

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None, num_classes=num_classes)
        self.head = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2)
        self.tail = nn.Sequential(net.layer3, net.layer4, net.avgpool, nn.Flatten(1), net.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(x))


def torchvision_to_split_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision ResNet-50 keys (``layer3.0.conv1.weight``) to split keys (``tail.0.0...``).

    Keys already in split form are kept; an unknown key raises KeyError.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(("head.", "tail.")):
            out[key] = value
            continue
        for old, new in _KEY_MAP.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            raise KeyError(f"unexpected key {key!r} in a ResNet-50 state dict")
    return out


def read_resnet50_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a local ResNet-50 state dict (.safetensors, or a torchvision .pth without unpickling code)."""
    from hecsb_ros.core.manifest import verify_checkpoint

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
