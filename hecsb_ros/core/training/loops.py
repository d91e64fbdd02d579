"""The training loops of the baselines that are not two-stage distillation: CR+BQ's head
distillation (:func:`head_distill`) and the neural input codecs' rate-distortion training
(:func:`train_rd`, CompressAI's objective on pixels, optionally on random patches). The recipes
that call them are in :mod:`hecsb_ros.core.training.recipes`.
"""

from __future__ import annotations

import math
import sys
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from hecsb_ros.core.learned.crbq import CrbqBottleneck
from hecsb_ros.core.learned.neural import NeuralConfig, crop, pad
from hecsb_ros.core.teachers.classifier import Classifier
from hecsb_ros.core.training.common import batches
from hecsb_ros.core.training.data import PixelSource


# -- CR+BQ: head distillation
# -------------------------------------------------------------------------
def head_distill(
    model: CrbqBottleneck,
    teacher: Classifier,
    train,
    epochs: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: torch.device | str = "cpu",
    max_steps: int | None = None,
    epoch_fraction: float = 1.0,
    freeze_stem: bool = False,
) -> CrbqBottleneck:
    """Head distillation: minimise ``1/2 ||h - g(Q(f(x)))||^2 / n`` with ``h = teacher.head(x)``
    (the source's cached teacher features when it has them).

    Trains on ``device``; the model comes back on the CPU. ``max_steps`` stops early (for timing);
    ``epoch_fraction`` < 1 visits that part of the images per epoch (a fresh random subset each).
    ``freeze_stem``: the encoder's teacher layers (``model.stem()``, ending at the split) keep the
    teacher's weights and statistics; with cached features they are not run (``h`` is their
    output).
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    teacher.model.to(device).eval()
    model.to(device)
    stem = model.stem() if freeze_stem else None
    if freeze_stem:
        if stem is None:
            raise ValueError(
                "freeze_stem: this CR+BQ does not start with the teacher's layers (--stem)"
            )
        for p in stem.parameters():
            p.requires_grad_(False)
    steps = max(1, int(len(train) // batch_size * epoch_fraction))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(epochs * steps, 1), pct_start=0.1
    )
    done = 0
    with tqdm(
        total=epochs * steps,
        desc=f"crbq C={model.config.channels}",
        unit="batch",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        for epoch in range(epochs):
            model.train()
            if stem is not None:
                stem.eval()
            total = torch.zeros((), device=device)
            for step, idx in enumerate(batches(len(train), batch_size, gen, drop_last=True)):
                if (max_steps is not None and done >= max_steps) or step >= steps:
                    break
                cached = hasattr(train, "targets")
                x = None
                if cached:
                    h = train.targets(idx)["features"].to(device, non_blocking=True)
                # a frozen stem with cached features needs no image
                if not (cached and stem is not None):
                    x = train.batch(idx, gen)[0].to(device, non_blocking=True)
                if not cached:
                    with torch.no_grad():
                        h = teacher.model.head(x)
                if stem is not None:
                    s = h if cached else stem(x).detach()
                    out = model(s, after_stem=True)
                else:
                    out = model(x)
                loss = 0.5 * (out - h).pow(2).flatten(1).mean(1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.detach()
                done += 1
                bar.update(1)
            if max_steps is None:
                log(
                    f"crbq C={model.config.channels} epoch {epoch + 1}: distortion "
                    f"{float(total) / max(steps, 1):.4g}"
                )
    teacher.model.to("cpu")
    return model.to("cpu").eval()


# -- neural input codecs: rate-distortion
# -------------------------------------------------------------
def rd_loss(
    out: dict, x: torch.Tensor, lmbda: float, num_pixels: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CompressAI's rate-distortion loss ``lambda 255^2 MSE + bpp``: (loss, mse, bpp)."""
    bpp = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values()) / (
        x.shape[0] * num_pixels
    )
    mse = nn.functional.mse_loss(out["x_hat"], x)
    return lmbda * 255**2 * mse + bpp, mse, bpp


def random_patches(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``size x size`` patch of each image of ``x`` ``(N, C, H, W)``."""
    n, _, h, w = x.shape
    if size > min(h, w):
        raise ValueError(f"patch {size} is larger than the images ({h} x {w})")
    top = torch.randint(0, h - size + 1, (n,), generator=gen)
    left = torch.randint(0, w - size + 1, (n,), generator=gen)
    return torch.stack(
        [
            x[i, :, t : t + size, lf : lf + size]
            for i, (t, lf) in enumerate(zip(top.tolist(), left.tolist()))
        ]
    )


def train_rd(
    model: nn.Module,
    config: NeuralConfig,
    images: torch.Tensor | PixelSource,
    lmbda: float,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    aux_lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: torch.device | str = "cpu",
    max_steps: int | None = None,
    epoch_fraction: float = 1.0,
    patch: int | None = None,
) -> nn.Module:
    """Train on pixels in [0, 1] ``(N, C, H, W)`` (random h-flips); ``update()`` at the end.

    ``images``: a tensor, or a :class:`~hecsb_ros.core.training.data.PixelSource` read batch by
    batch (an image folder). Trains on ``device``; the model comes back on the CPU. ``max_steps``
    stops early (for timing); ``epoch_fraction`` < 1 visits that part of the images per epoch.
    ``patch``: train on one random ``patch x patch`` square of each image (a multiple of 64, so no
    padding), as CompressAI's models are trained on crops of larger photos: the same CPU minutes
    then take about ``(H W) / patch^2`` times as many steps; the model is fully convolutional and
    codes whole images.
    """
    if patch is not None and patch % 64:
        raise ValueError(f"patch must be a multiple of 64 (the hyperprior's stride), not {patch}")
    device = torch.device(device)
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    steps = max(1, int(len(images) // batch_size * epoch_fraction))
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(epochs * steps, 1), pct_start=0.1
    )
    aux_opt = torch.optim.Adam(aux_params, lr=aux_lr)
    num_pixels = patch * patch if patch else config.input_size[0] * config.input_size[1]
    with tqdm(
        total=epochs * steps,
        desc=f"{config.kind} lambda={lmbda:g}",
        unit="batch",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        done = 0
        for epoch in range(epochs):
            model.train()
            sums = [torch.zeros((), device=device), torch.zeros((), device=device)]
            for step, idx in enumerate(batches(len(images), batch_size, gen, drop_last=True)):
                if (max_steps is not None and done >= max_steps) or step >= steps:
                    break
                x = images[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
                if patch:
                    x = random_patches(x, patch, gen).to(device, non_blocking=True)
                    out = model(x)
                else:
                    x = x.to(device, non_blocking=True)
                    out = model(pad(x, config))
                    out["x_hat"] = crop(out["x_hat"], config)
                loss, mse, bpp = rd_loss(out, x, lmbda, num_pixels)
                # now and then: .item() waits for the GPU
                if done % 50 == 0 and not math.isfinite(loss.item()):
                    raise FloatingPointError(f"loss became {loss.item()}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                aux = model.aux_loss()
                aux_opt.zero_grad(set_to_none=True)
                aux.backward()
                aux_opt.step()
                sums[0] += mse.detach()
                sums[1] += bpp.detach()
                done += 1
                bar.update(1)
            mse_mean, bpp_mean = float(sums[0]) / max(steps, 1), float(sums[1]) / max(steps, 1)
            if not (math.isfinite(mse_mean) and math.isfinite(bpp_mean)):
                raise FloatingPointError(f"epoch {epoch + 1}: mse {mse_mean}, bpp {bpp_mean}")
            if max_steps is None:
                full = config.input_size[0] * config.input_size[1]
                log(
                    f"{config.kind} lambda={lmbda:g} epoch {epoch + 1}: mse {mse_mean:.4g}, "
                    f"bytes/image {bpp_mean * full / 8:.1f}"
                )
    model.to("cpu")
    model.update(force=True)
    return model.eval()
