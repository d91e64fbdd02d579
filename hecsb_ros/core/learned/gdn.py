"""GDN / IGDN for inference: the reparametrised ``beta`` and ``gamma`` computed once.

CompressAI's :class:`~compressai.layers.GDN` recomputes ``beta`` and ``gamma`` from their
non-negative reparametrisation on every call (six small tensor operations, about 15-20 us each
layer at batch 1 on one CPU thread). A deployed split never trains, so :func:`freeze_gdn_`
replaces every GDN in a model by :class:`FrozenGDN`, which holds the two tensors and computes the
same ``x * rsqrt(beta + conv1x1(x^2, gamma))`` (``sqrt`` for IGDN).
"""

from __future__ import annotations

import torch
from compressai.layers import GDN
from torch import nn


class FrozenGDN(nn.Module):
    """Inference copy of one GDN (or IGDN) layer, outputs equal to the layer it was made from."""

    def __init__(self, gdn: GDN) -> None:
        super().__init__()
        with torch.no_grad():
            beta = gdn.beta_reparam(gdn.beta).detach().clone()
            gamma = gdn.gamma_reparam(gdn.gamma).detach().clone()
        c = beta.numel()
        self.register_buffer("beta", beta)
        self.register_buffer("gamma", gamma.reshape(c, c, 1, 1))
        self.inverse = bool(gdn.inverse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = nn.functional.conv2d(x * x, self.gamma, self.beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def freeze_gdn_(model: nn.Module) -> int:
    """Replace every GDN / IGDN inside ``model`` by a :class:`FrozenGDN` (in place); returns how
    many.

    Only for a model that will not be trained or saved again (its state dict changes).
    """
    count = 0
    for name, child in list(model.named_children()):
        if isinstance(child, GDN):
            setattr(model, name, FrozenGDN(child))
            count += 1
        else:
            count += freeze_gdn_(child)
    return count
