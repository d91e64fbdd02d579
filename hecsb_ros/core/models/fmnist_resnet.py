"""A small ResNet for 1x28x28 images (Fashion-MNIST), split before its third residual stage."""
from __future__ import annotations

import torch
from torch import nn


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
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class FmnistResNet(nn.Module):
    """Stem + three residual stages (strides 1/2/2) + global pool + linear.

    ``head`` = stem, stage 1, stage 2: ``(N, C, 28, 28)`` -> ``(N, widths[1], 14, 14)``;
    ``tail`` = stage 3, pool, fc: ``(N, widths[1], 14, 14)`` -> ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 widths: tuple[int, int, int] = (16, 32, 64), blocks: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        w1, w2, w3 = widths
        stem = nn.Sequential(nn.Conv2d(in_channels, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1),
                             nn.ReLU(inplace=True))
        self.head = nn.Sequential(stem, _stage(w1, w1, blocks[0], 1), _stage(w1, w2, blocks[1], 2))
        self.tail = nn.Sequential(_stage(w2, w3, blocks[2], 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                  nn.Linear(w3, num_classes))
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
