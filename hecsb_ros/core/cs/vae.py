"""Compressed sensing with a generative model (Bora et al., 2017): the VAE baseline of section 4.1.

A small MLP VAE (784-500-500-20 with a mirrored decoder and Bernoulli likelihood, Bora et al.'s
MNIST setting) is trained on the training set. Its decoder mean ``G`` then reconstructs from
``y = A x + eps`` by ``x_hat = G(z*)``, ``z* = argmin_z ||y - A G(z)||^2 + lambda ||z||^2``, found
by Adam from several random starts (the start with the lowest objective wins).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Softplus())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """MLP VAE: Gaussian encoder ``q(z|x)``, Bernoulli decoder ``p(x|z)`` with mean ``G(z)``."""

    def __init__(self, n: int = 784, latent: int = 20, hidden: int = 500) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = _mlp([n, hidden, hidden, 2 * latent])
        self.decoder = _mlp([latent, hidden, hidden, n])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        return mu, log_var

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """``G(z)``: the decoder's Bernoulli mean in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def negative_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ``-ELBO = -E_q[log p(x|z)] + KL(q(z|x) || N(0, I))``."""
        mu, log_var = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        rec = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
        return (rec + kl) / x.shape[0]


def train_vae(
    vae: VAE,
    X: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    desc: str = "VAE",
) -> list[float]:
    """Train ``vae`` on rows of ``X`` with Adam; returns the mean ``-ELBO`` of every epoch."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    history: list[float] = []
    vae.train()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        perm = torch.randperm(X.shape[0], generator=gen)
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            x = X[perm[start : start + batch_size]]
            loss = vae.negative_elbo(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
        history.append(total / X.shape[0])
        bar.set_postfix(neg_elbo=f"{history[-1]:.1f}")
    vae.eval()
    return history


def latent_objective(
    vae: VAE, A: torch.Tensor, Y: torch.Tensor, z: torch.Tensor, lam: float
) -> torch.Tensor:
    """Per-row ``||y - A G(z)||^2 + lambda ||z||^2`` (Bora et al.'s loss)."""
    residual = Y - vae.generate(z) @ A.t()
    return residual.pow(2).sum(dim=1) + lam * z.pow(2).sum(dim=1)


def vae_reconstruct(
    vae: VAE,
    A: torch.Tensor,
    Y: torch.Tensor,
    lam: float = 0.1,
    restarts: int = 5,
    steps: int = 200,
    lr: float = 0.1,
    seed: int = 0,
    batch_size: int = 250,
    progress: bool = False,
    desc: str = "VAE-CS",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruct every row of ``Y`` ``(N, m)``; returns ``(x_hat (N, n), objective (N,))``.

    All restarts of a batch of images are optimised together as one ``(batch * restarts, k)``
    latent tensor (the per-row objectives are independent, so summing them is exact).
    """
    gen = torch.Generator().manual_seed(seed)
    for p in vae.parameters():
        p.requires_grad_(False)
    outs: list[torch.Tensor] = []
    objs: list[torch.Tensor] = []
    batches = range(0, Y.shape[0], batch_size)
    total = math.ceil(Y.shape[0] / batch_size) * steps
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    try:
        for start in batches:
            y = Y[start : start + batch_size]
            b = y.shape[0]
            y_rep = y.repeat_interleave(restarts, dim=0)
            z = torch.randn(b * restarts, vae.latent, generator=gen).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                loss = latent_objective(vae, A, y_rep, z, lam).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                bar.update(1)
            with torch.no_grad():
                obj = latent_objective(vae, A, y_rep, z, lam).view(b, restarts)
                best = obj.argmin(dim=1)
                z_best = z.detach().view(b, restarts, -1)[torch.arange(b), best]
                outs.append(vae.generate(z_best))
                objs.append(obj[torch.arange(b), best])
    finally:
        bar.close()
        for p in vae.parameters():
            p.requires_grad_(True)
    return torch.cat(outs), torch.cat(objs)
