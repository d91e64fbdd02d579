"""Training utilities shared by the teacher and the HECS-B trainers: seeds, batches, loops,
eval."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch; return a torch generator seeded with ``seed`` for batching."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def print_flush(text: str) -> None:
    """Print a log line at once (training logs usually go to a file)."""
    print(text, flush=True)


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Augment:
    """Light augmentation on a batch ``(N, C, H, W)``: random crop after zero padding, h-flip."""

    pad: int = 2
    hflip: bool = True

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.pad > 0:
            padded = nn.functional.pad(x, (self.pad,) * 4)
            oy = torch.randint(0, 2 * self.pad + 1, (n,), generator=gen)
            ox = torch.randint(0, 2 * self.pad + 1, (n,), generator=gen)
            iy = (oy[:, None] + torch.arange(h))[:, :, None]  # (N, H, 1)
            ix = (ox[:, None] + torch.arange(w))[:, None, :]  # (N, 1, W)
            x = padded.permute(0, 2, 3, 1)[torch.arange(n)[:, None, None], iy, ix].permute(
                0, 3, 1, 2
            )
        if self.hflip:
            flip = torch.rand(n, generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.contiguous()


def batches(
    n: int, batch_size: int, gen: torch.Generator | None = None, drop_last: bool = False
) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)``: shuffled when ``gen`` is given, in order otherwise."""
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    stop = n - (n % batch_size) if drop_last else n
    for i in range(0, stop, batch_size):
        yield order[i : i + batch_size]


@torch.inference_mode()
def predict_logits(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 500
) -> torch.Tensor:
    """Apply ``fn`` to ``x`` ``(N, ...)`` in batches; return the concatenated outputs ``(N,
    K)``."""
    return torch.cat([fn(x[idx]) for idx in batches(len(x), batch_size)])


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of logits ``(N, K)`` against labels ``(N,)``."""
    return float((logits.argmax(1) == labels).float().mean())


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on ``x`` ``(N, C, H, W)``, ``y`` ``(N,)``."""
    model.eval()
    return accuracy(predict_logits(model, x, batch_size), y)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    tau: float,
) -> torch.Tensor:
    """``(1 - alpha) CE(P_S, y) + alpha tau^2 KL(P_T || P_S)`` with temperature ``tau`` (eq.
    10-12)."""
    ce = nn.functional.cross_entropy(student_logits, labels)
    if alpha == 0.0:
        return ce
    log_ps = nn.functional.log_softmax(student_logits / tau, dim=1)
    log_pt = nn.functional.log_softmax(teacher_logits / tau, dim=1)
    kl = nn.functional.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
    return (1.0 - alpha) * ce + alpha * tau * tau * kl


def mixed_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y_a: torch.Tensor,
    y_b: torch.Tensor,
    lam: torch.Tensor,
    alpha: float,
    tau: float,
) -> torch.Tensor:
    """:func:`kd_loss` on mixed images: the label term is ``lam CE(y_a) + (1 - lam) CE(y_b)`` per
    image."""
    ce = nn.functional.cross_entropy
    label = (
        lam * ce(student_logits, y_a, reduction="none")
        + (1 - lam) * ce(student_logits, y_b, reduction="none")
    ).mean()
    return (1.0 - alpha) * label + alpha * (kd_loss(student_logits, teacher_logits, y_a, 1.0, tau))


def train_classifier_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    gen: torch.Generator,
    batch_size: int,
    augment: Augment | None = None,
    progress=None,
    label_smoothing: float = 0.0,
) -> float:
    """One epoch of cross-entropy training; returns the mean loss. ``progress`` is a tqdm bar."""
    model.train()
    total, count = 0.0, 0
    for idx in batches(len(x), batch_size, gen, drop_last=True):
        xb = x[idx]
        if augment is not None:
            xb = augment(xb, gen)
        loss = nn.functional.cross_entropy(model(xb), y[idx], label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


def resolve_device(name: str) -> torch.device:
    """``'cpu'``, ``'cuda'`` (``'cuda:N'``) or ``'auto'`` (CUDA when available) as a device.

    Raises ``ValueError`` with what to do when CUDA is asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} asked for, but this torch build sees no CUDA GPU: use --device cpu"
        )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU), so that wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_step(
    run_steps: Callable[[int], None], device: torch.device, warmup: int = 5, steps: int = 30
) -> float:
    """Measured time of one training step: CPU time of this process on a CPU (core-seconds, so that
    a budget means the same on a loaded machine as on an idle one, and a niced run is not cut short
    by others' work), wall time on a GPU.

    ``run_steps(n)`` must run ``n`` training steps on a throw-away copy of the model. A first call
    of ``warmup`` steps pays the one-time costs (kernel selection, allocator growth) and is not
    counted; the second call's time is divided by ``steps``. Used to fit a training run into a
    time budget (:func:`epochs_for_budget`).
    """
    clock = time.process_time if torch.device(device).type == "cpu" else time.perf_counter
    run_steps(warmup)
    synchronize(device)
    start = clock()
    run_steps(steps)
    synchronize(device)
    return max((clock() - start) / steps, 1e-6)


def epochs_for_budget(
    budget_s: float, seconds_per_epoch: Sequence[float], shares: Sequence[float]
) -> list[int]:
    """Epochs per stage so that ``sum(epochs_i * seconds_per_epoch_i) <= budget_s``.

    ``shares`` are the relative numbers of epochs of the stages (e.g. the ``--stage1-epochs`` and
    ``--stage2-epochs`` given on the command line); each stage with a positive share gets >= 1.
    """
    total = sum(shares)
    if total <= 0:
        raise ValueError("need a positive share of epochs")
    scale = budget_s / sum(s * t for s, t in zip(shares, seconds_per_epoch))
    return [max(1, int(s * scale)) if s > 0 else 0 for s in shares]


def budget_schedule(
    budget_s: float,
    seconds_per_epoch: Sequence[float],
    shares: Sequence[int],
    full_steps: int,
    max_epoch_s: float | None = None,
) -> tuple[list[int], float]:
    """(epochs per stage, epoch fraction) of a run that fits ``budget_s`` seconds.

    The epochs of :func:`epochs_for_budget`; when even ``shares`` epochs (the configured ones,
    e.g. 1 : 3) are longer than the budget, those, each visiting that part of the images (the
    fraction). ``max_epoch_s``: epochs longer than this are split into shorter ones, the same
    steps in all, each at least one step of the ``full_steps`` of a whole epoch.
    """
    epochs = epochs_for_budget(budget_s, seconds_per_epoch, shares)
    fraction = min(1.0, budget_s / sum(e * t for e, t in zip(epochs, seconds_per_epoch)))
    if fraction < 1.0 and tuple(epochs) != tuple(shares):
        epochs = list(shares)
        fraction = min(1.0, budget_s / sum(e * t for e, t in zip(epochs, seconds_per_epoch)))
    longest = fraction * max(t for e, t in zip(epochs, seconds_per_epoch) if e > 0)
    if max_epoch_s and longest > max_epoch_s:
        k = math.ceil(longest / max_epoch_s)
        k = max(1, min(k, int(fraction * full_steps)))  # at least one step an epoch
        epochs, fraction = [e * k for e in epochs], fraction / k
    return epochs, fraction
