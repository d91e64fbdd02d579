"""Fitting a factorized prior to the latents of a fixed encoder.

A CompressAI ``EntropyBottleneck`` starts as a wide density (about 5 bits per symbol whatever the
latent) and its quantiles move only with the auxiliary loss. When a training budget allows a few
hundred steps (camera scale on a CPU), the rate estimate the encoder is trained against is then
mostly the prior's misfit, and a checkpoint ships tables several times wider than its latent
needs. :func:`fit_prior_` fits the density (maximum likelihood of ``y + U(-1/2, 1/2)``, the noise
proxy of rounding the training uses) and the quantiles (the auxiliary loss) to latents of a fixed
encoder, with nothing else changing: the encoder and the decoder stay as they are and, with
``keep_medians`` (after training), so does the rounded latent, since the entropy coder rounds
around the medians.

Used when HECS-B starts from principal directions (the prior then matches ``W``'s first latents)
and after training every bottleneck whose latent has a factorized prior (HECS-B, SVB, the
factorized-prior input codec), so all of them ship a prior fitted in the same way.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from compressai.entropy_models import EntropyBottleneck

from hecsb_ros.core.learned.base import LearnedModel
from hecsb_ros.core.learned.hecsb import HecsbBottleneck
from hecsb_ros.core.teachers.classifier import Classifier


def prior_bits(bottleneck: EntropyBottleneck, latents: torch.Tensor) -> float:
    """Estimated bits per image of rounding ``latents`` ``(N, C, ...)`` under the prior."""
    with torch.no_grad():
        _, lik = bottleneck(latents, training=False)
    return float(-torch.log2(lik.clamp_min(1e-9)).sum() / latents.shape[0])


def fit_prior_(
    bottleneck: EntropyBottleneck,
    latents: torch.Tensor,
    steps: int = 400,
    samples: int = 16384,
    lr: float = 1e-2,
    aux_lr: float = 5e-2,
    keep_medians: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[float, float]:
    """Fit ``bottleneck`` (in place) to ``latents`` ``(N, C, ...)``: ``steps`` Adam steps on
    ``samples`` random latent elements per channel each. Returns the estimated bits per image
    before and after; keeps the prior as it was if the fit did not lower them. ``keep_medians``:
    only the density and the tails' quantiles move, so the rounding grid stays where the decoder
    was trained on it."""
    latents = latents.detach().float()
    channels = latents.shape[1]
    per_channel = latents.transpose(0, 1).reshape(channels, -1)  # (C, N * positions)
    before = prior_bits(bottleneck, latents)
    saved = {k: v.clone() for k, v in bottleneck.state_dict().items()}
    density = [p for n, p in bottleneck.named_parameters() if not n.endswith("quantiles")]
    quantiles = [p for n, p in bottleneck.named_parameters() if n.endswith("quantiles")]
    opt = torch.optim.Adam(density, lr=lr)
    aux = torch.optim.Adam(quantiles, lr=aux_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    gen = torch.Generator().manual_seed(seed)
    was_training = bottleneck.training
    bottleneck.train()
    for _ in range(steps):
        cols = torch.randint(
            0, per_channel.shape[1], (min(samples, per_channel.shape[1]),), generator=gen
        )
        _, lik = bottleneck(per_channel[None, :, cols], training=True)
        loss = -torch.log2(lik.clamp_min(1e-9)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        aux_loss = bottleneck.loss()
        aux.zero_grad(set_to_none=True)
        aux_loss.backward()
        aux.step()
        if keep_medians:
            with torch.no_grad():
                bottleneck.quantiles[..., 1] = saved["quantiles"][..., 1]
    bottleneck.train(was_training)
    after = prior_bits(bottleneck, latents)
    if not after < before:
        bottleneck.load_state_dict(saved)
        after = before
    if log is not None:
        log(
            f"prior fitted to {latents.shape[0]} images' latents: {before / 8:.0f} -> "
            f"{after / 8:.0f} B/image "
            f"(estimated)"
        )
    return before, after


# -- initialising and refitting the priors of the learned models -------------------------------
@torch.no_grad()
def sample_features(
    train: Any, teacher: Classifier, images: int = 256, seed: int = 0
) -> torch.Tensor:
    """The teacher's split features of ``images`` random training images (the cached ones if the
    source has them)."""
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:images]
    return (
        train.targets(idx)["features"]
        if hasattr(train, "targets")
        else teacher.model.head(train.batch(idx)[0])
    )


@torch.no_grad()
def sample_latents(
    model: LearnedModel,
    inputs: Callable[[torch.Tensor], torch.Tensor],
    count: int,
    images: int = 256,
    seed: int = 1,
    batch_size: int = 32,
) -> torch.Tensor:
    """``model``'s unquantised latents (its edge network's output) of ``images`` random training
    images; ``inputs(idx)`` gives the model's input for the images at ``idx`` of ``count``."""
    idx = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:images]
    model.eval()
    return torch.cat([model.edge(inputs(part)) for part in idx.split(batch_size)])


def refit_prior(
    model: LearnedModel,
    inputs: Callable[[torch.Tensor], torch.Tensor],
    count: int,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """After training: fit the factorized prior of ``model``'s latent to the latents of training
    images, the medians (and so the rounded latent) kept (:mod:`hecsb_ros.core.training.prior`).
    Returns the manifest facts (estimated bytes per image before and after)."""
    latents = sample_latents(model, inputs, count)
    before, after = fit_prior_(model.entropy_bottleneck, latents, keep_medians=True, log=log)
    model.update(force=True)
    return {"prior_refit_bytes": [round(before / 8, 1), round(after / 8, 1)]}


@torch.no_grad()
def principal_measurements_(
    model: HecsbBottleneck, features: torch.Tensor, beta: float | None = None
) -> float:
    """Start ``W`` as the top ``m`` principal directions of the teacher's split ``features``
    ``(N, C, h, w)`` (per position) and the decoder's bias so that the linear inverse reconstructs
    the projection of the features onto them (the classical optimum of a linear measurement with
    linear recovery, before quantisation). Returns the rows' norm ``s``.

    The rows' norm sets the quantisation step in feature space (``1 / s``) and so the rate. With
    ``beta`` it is the norm at which the rate-distortion slope of uniformly quantised measurements
    equals ``beta`` (eq. 14: ``dD/dR = -beta`` for ``D = 1/2`` the mean squared error per feature
    element, ``R`` bits per image): ``s = sqrt(ln 2 / (12 C P beta))`` with ``C`` feature channels
    and ``P`` latent positions, at most the norm bound's ``k / sqrt(m)``; training starts near its
    optimum for that beta."""
    flat = features.double().permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    mean = flat.mean(0)
    _, vectors = torch.linalg.eigh(torch.cov((flat - mean).T))
    top = vectors.flip(1)[:, : model.config.measurements].T  # (m, l), orthonormal rows
    config = model.config
    scale = config.norm_bound / config.measurements**0.5
    if beta:
        positions = config.latent_size[0] * config.latent_size[1]
        scale = min(
            scale, math.sqrt(math.log(2) / (12 * config.feature_channels * positions * beta))
        )
    model.measure.weight.copy_((top * scale).float())
    model.feature_mean.copy_((mean - top.T @ (top @ mean)).float())
    return scale
