"""The Fashion-MNIST teacher: a small ResNet for 1x28x28 images, split before its third residual
stage.

Its weights are the shipped checkpoint ``hecsb_ros/checkpoints/teacher_fmnist.safetensors``
(``python -m hecsb_ros.cli.train_teacher`` trains one); bottlenecks trained for it are named
``{kind}_fmnist_r{LEVEL}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from hecsb_ros.core.store import CHECKPOINT_DIR
from hecsb_ros.core.teachers.registry import Teacher
from hecsb_ros.core.teachers.spec import ClassifierSpec


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(cin, cout, stride)] + [
        BasicBlock(cout, cout, 1) for _ in range(blocks - 1)
    ]
    return nn.Sequential(*layers)


class FmnistResNet(nn.Module):
    """Stem + three residual stages (strides 1/2/2) + global pool + linear.

    ``head`` = stem, stage 1, stage 2: ``(N, C, 28, 28)`` -> ``(N, widths[1], 14, 14)``;
    ``tail`` = stage 3, pool, fc: ``(N, widths[1], 14, 14)`` -> ``(N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        widths: tuple[int, int, int] = (16, 32, 64),
        blocks: tuple[int, int, int] = (1, 1, 1),
    ) -> None:
        super().__init__()
        w1, w2, w3 = widths
        stem = nn.Sequential(
            nn.Conv2d(in_channels, w1, 3, 1, 1, bias=False),
            nn.BatchNorm2d(w1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(stem, _stage(w1, w1, blocks[0], 1), _stage(w1, w2, blocks[1], 2))
        self.tail = nn.Sequential(
            _stage(w2, w3, blocks[2], 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(w3, num_classes),
        )
        self.split_channels = w2
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: blocks start as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, 28, 28)`` -> logits ``(N, num_classes)``."""
        return self.tail(self.head(x))


def fmnist_spec() -> ClassifierSpec:
    """Spec of the Fashion-MNIST teacher (1x28x28, mean/std of the training images)."""
    from hecsb_ros.core.datasets import FASHION_MNIST_CLASSES

    return ClassifierSpec(
        "fmnist_resnet", FASHION_MNIST_CLASSES, (28, 28), 1, (0.2860,), (0.3530,)
    )


def default_teacher_path() -> Path:
    """The shipped Fashion-MNIST teacher: ``hecsb_ros/checkpoints/teacher_fmnist.safetensors``."""
    return CHECKPOINT_DIR / "teacher_fmnist.safetensors"


def _build(spec: ClassifierSpec, **arch: Any) -> FmnistResNet:
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()}
    return FmnistResNet(num_classes=spec.num_classes, in_channels=spec.in_channels, **kw)


TEACHER = Teacher(
    name="fmnist_resnet",
    tag="fmnist",
    build=_build,
    default_weights=default_teacher_path,
    description="small ResNet for 28x28 grey images (the shipped Fashion-MNIST teacher)",
)
