"""HECSA: the High-Efficiency Compressed Sensing Autoencoder (sections 3.1-3.2, eq. 1-9).

Encoder: the learned linear measurement ``y = W x + eps`` (eq. 1 with ``f_psi`` the identity,
``W`` without bias, ``eps ~ N(0, sigma^2 I_m)`` as in eq. 3), ``||W||_F <= k`` enforced by
projection after every optimiser step (section 4.1). ``W`` is the shared
:class:`~hecsb_ros.core.measurement.MeasurementOperator`, the same operator as in the HECS-B
bottleneck.

Decoder: ``p_theta(x|y)``, a perceptron with two hidden layers of 600 units giving per-pixel
Bernoulli logits (pixels in [0, 1] are used as soft targets; this is the usual choice for
MNIST-like data). Training maximises the Monte-Carlo estimate of ``sum_x E_{Q_phi(y|x)}[log
p_theta(x|y)]`` (eq. 9), a variational lower bound on ``I(X; Y)`` up to the constant ``H(X)`` (eq.
5-8), with the reparameterised noise ``y = W x + sigma * e``, ``e ~ N(0, I)``, so gradients reach
``W``. The reconstruction is the decoder mean ``x_hat = sigmoid(logits)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from hecsb_ros.core.measurement import MeasurementOperator


class HECSA(nn.Module):
    """Learned measurement ``W`` (``||W||_F <= max_norm``) and MLP decoder ``p_theta(x|y)``.

    Args:
        n: signal size (784 for 28x28 images).
        m: number of measurements.
        max_norm: ``k`` of the Frobenius constraint.
        sigma: standard deviation of the measurement noise used in training (eq. 3).
        hidden: width of the decoder's two hidden layers (600 in section 4.1).
    """

    def __init__(
        self, n: int, m: int, max_norm: float, sigma: float = 0.1, hidden: int = 600
    ) -> None:
        super().__init__()
        self.sigma = sigma
        self.encoder = MeasurementOperator(n, m, max_norm=max_norm)
        self.decoder = nn.Sequential(
            nn.Linear(m, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n),
        )

    def measure(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``y = W x + eps`` (eq. 1); fresh ``eps ~ N(0, sigma^2 I)`` unless ``noise`` is given."""
        clean = self.encoder(x)
        if noise is None:
            noise = self.sigma * torch.randn_like(clean)
        return clean + noise

    def logits(self, y: torch.Tensor) -> torch.Tensor:
        """Decoder logits of ``p_theta(x|y)``."""
        return self.decoder(y)

    def reconstruct(self, y: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the decoder, ``x_hat = E_{p_theta}[x|y]`` in [0, 1]."""
        return torch.sigmoid(self.decoder(y))

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image ``log p_theta(x|y)`` (Bernoulli, soft targets): the integrand of eq. 8-9."""
        return -F.binary_cross_entropy_with_logits(self.logits(y), x, reduction="none").sum(dim=1)

    def frobenius_norm(self) -> float:
        return self.encoder.frobenius_norm()


def train_hecsa(
    model: HECSA,
    X: torch.Tensor,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    noise_samples: int = 1,
    seed: int = 0,
    X_val: torch.Tensor | None = None,
    progress: bool = True,
    desc: str = "HECSA",
) -> list[dict[str, float]]:
    """Maximise eq. 9 with Adam and a cosine learning-rate decay; project ``W`` after each step.

    Every image is measured with ``noise_samples`` independent noise draws per step (Monte-Carlo
    estimate of the inner expectation of eq. 9). Returns per-epoch mean training
    ``-log p(x|y)`` and, when ``X_val`` is given, the validation ``l2`` error.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(X.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    history: list[dict[str, float]] = []
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        model.train()
        perm = torch.randperm(X.shape[0], generator=gen)
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            x = X[perm[start : start + batch_size]]
            if noise_samples > 1:
                x = x.repeat(noise_samples, 1)
            nll = -model.log_likelihood(x, model.measure(x)).mean()
            opt.zero_grad()
            nll.backward()
            opt.step()
            sched.step()
            model.encoder.project_()
            total += float(nll.detach()) * x.shape[0] / max(1, noise_samples)
        record = {"nll": total / X.shape[0], "w_norm": model.frobenius_norm()}
        if X_val is not None:
            model.eval()
            with torch.no_grad():
                x_hat = model.reconstruct(model.measure(X_val))
                record["val_l2"] = float((X_val - x_hat).norm(dim=1).mean())
        history.append(record)
        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items()})
    model.eval()
    return history
