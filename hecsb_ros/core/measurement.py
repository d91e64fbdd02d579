"""The compressed-sensing measurement operator ``W`` of the seed paper (eq. 1 and section 4.1).

``y = W f_psi(x) + eps`` with ``W`` in R^{m x l}, ``m < l``, and the constraint ``||W||_F <= k``.
The same operator serves the compressed-sensing experiment (a vector signal) and the HECS-B
bottleneck (applied at every spatial position of a feature map, i.e. as a 1x1 convolution, which
is a linear map with one shared ``W`` per pixel).

The constraint is enforced by projection: after each optimiser step call :meth:`project_`, which
rescales ``W`` onto the Frobenius ball when it leaves it (the Euclidean projection onto
``{W : ||W||_F <= k}``). This keeps the encoder from "winning" against measurement noise by
trivially growing ``W`` (section 4.1).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def gaussian_frobenius_norm(m: int, n: int) -> float:
    """Expected Frobenius norm of an ``m x n`` matrix with i.i.d. N(0, 1/m) entries: ``sqrt(n)``.

    This is the usual normalisation of a compressed-sensing Gaussian matrix; it is the default
    ``k`` so that a learned ``W`` competes at the same energy as a random one.
    """
    del m
    return math.sqrt(n)


def gaussian_measurement_matrix(
    m: int, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random ``m x n`` compressed-sensing matrix ``A`` with i.i.d. N(0, 1/m) entries (eq. 1, ``W =
    A``).

    The classical baselines of section 4.1 measure ``y = A x + eps`` with such a matrix; its
    Frobenius norm is close to :func:`gaussian_frobenius_norm` ``(m, n)``.
    """
    if m <= 0 or n <= 0:
        raise ValueError("m and n must be positive")
    return torch.randn(m, n, generator=generator) / math.sqrt(m)


class MeasurementOperator(nn.Module):
    """Learned linear measurement ``W`` (no bias) with ``||W||_F <= max_norm``.

    Args:
        in_features: ``l``, size of the acquired signal ``f_psi(x)`` per position.
        measurements: ``m``, number of measurements per position (``m < l`` for compression).
        max_norm: ``k``; ``None`` leaves ``W`` unconstrained.
        spatial: if True, apply ``W`` at every position of a ``(N, l, H, W)`` map, giving
            ``(N, m, H, W)``; otherwise map ``(N, l)`` to ``(N, m)``.
    """

    def __init__(
        self,
        in_features: int,
        measurements: int,
        max_norm: float | None = None,
        spatial: bool = False,
    ) -> None:
        super().__init__()
        if measurements <= 0 or in_features <= 0:
            raise ValueError("in_features and measurements must be positive")
        if max_norm is not None and max_norm <= 0:
            raise ValueError("max_norm must be positive (or None)")
        self.in_features = in_features
        self.measurements = measurements
        self.max_norm = max_norm
        self.spatial = spatial
        weight = torch.randn(measurements, in_features) / math.sqrt(measurements)
        self.weight = nn.Parameter(weight)
        self.project_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, l)`` -> ``(N, m)``, or ``(N, l, H, W)`` -> ``(N, m, H, W)`` when spatial."""
        # a 1x1 convolution: the same sum as einsum("ml,nlhw->nmhw"), a quarter of its time
        if self.spatial:
            return nn.functional.conv2d(x, self.weight[:, :, None, None])
        return x @ self.weight.t()

    def frobenius_norm(self) -> float:
        return float(self.weight.detach().norm())

    @torch.no_grad()
    def project_(self) -> None:
        """Project ``W`` onto ``{W : ||W||_F <= max_norm}`` (no-op when inside or
        unconstrained)."""
        if self.max_norm is None:
            return
        norm = self.weight.norm()
        if norm > self.max_norm:
            self.weight.mul_(self.max_norm / norm)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, measurements={self.measurements}, "
            f"max_norm={self.max_norm}, spatial={self.spatial}"
        )
