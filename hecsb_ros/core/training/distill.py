"""Two-stage training of a factorized-prior bottleneck (HECS-B, SVB) against a frozen teacher (seed
paper, section 3.3).

Stage 1, head distillation (eq. 14): ``L = 1/2 ||h - g(f(x) + eps)||^2 / n + beta R`` with the
teacher's split features ``h = teacher.head(x)`` as targets, ``n`` the feature size (so ``beta``
does not depend on it), ``R = -log2 p(f(x) + eps)`` bits per image, plus the entropy
bottleneck's auxiliary quantile loss (own optimiser).

Stage 2, end-to-end fine-tuning with knowledge distillation (eq. 10-12): ``L = (1 - alpha) CE(P_S,
y) + alpha tau^2 KL(P_T || P_S)``, ``P_S`` from the teacher's unchanged tail applied to
``g(round(f(x)))`` (straight-through rounding, so fine-tuning sees the latent the deployed coder
sends). By default the teacher's tail stays frozen: the server runs it unchanged and all rate
levels share it. With ``train_tail`` stage 2 fine-tunes a copy of it too, as the paper's second
phase fine-tunes "the encoder, decoder, and all remaining layers" (section 4.2); the bottleneck's
checkpoint then carries that tail (:mod:`hecsb_ros.core.teachers.tail`), and ``tail_lr_scale`` sets
its learning rate relative to ``lr2``. With ``freeze_encoder`` only ``g_phi`` trains (the prior,
its quantiles included, stays as it is, so the latent and its bytes are those of stage 1);
otherwise ``f_theta`` and the prior train too and ``stage2_rate_weight * beta * R`` is added, so
that the rate stays controlled while the encoder learns what the classifier needs (weight 0 gives
the paper's plain eq. 11, and the rate then drifts upwards). The KD loss per image reacts far more
to the latent than the per-element feature error of stage 1 does, so the weight is large
(``train_hecsb`` uses 100).

Two optional aids to generalisation in stage 2 (off by default): ``ema`` keeps an exponential
moving average of all floating-point weights (prior included) and puts it into the model when the
stage ends; ``mixup`` mixes that fraction of the batches, ``x = lam x_i + (1 - lam) x_j`` with
``lam ~ U(0, 1)`` per image, and the student then matches the teacher on the mixed image (the KL
term) and the mixed label (``lam CE(y_i) + (1 - lam) CE(y_j)``): the student learns the teacher's
function on many more inputs than the training images.

``freeze_stem``: for a bottleneck whose edge network starts with the teacher's own layers to the
split (``model.stem()``), those layers keep the teacher's weights and statistics, and with a source
that caches the teacher's split features (:class:`~hecsb_ros.core.training.photos.PhotoCrops`) the
stem is not even run: the cached features are its output. A step then costs the bottleneck and (in
stage 2) the tail only, so a CPU budget buys many more steps.

Runs on any torch device (``device='cuda'`` on a GPU machine); the model comes back on the CPU
with its CDF tables updated. :meth:`Distiller.fit_budget` chooses the epochs of both stages so
that training fits a time budget on the machine at hand (its step times are measured first).

Resumable: after every epoch the run's state is written to ``state_path``, with the work done so
far (:mod:`~hecsb_ros.core.training.distill_state`, which also keeps the moving average).
:meth:`Distiller.fit_budget` can cap an epoch at ``max_epoch_min`` minutes so that a long run loses
little when it is stopped. A resumed run takes the epochs and epoch fraction of its state (what the
budget fit chose then). The configuration is
:class:`~hecsb_ros.core.training.config.DistillConfig`.

Unlabelled sources (labels ``-1``, :class:`~hecsb_ros.core.training.pool.PhotoPool`) are distilled
from the teacher's outputs on the very view the student sees; the teacher's top-1 on that view
stands in for the label, and :attr:`Distiller.teacher_top1` counts those classes (the pool's
coverage of the teacher's classes, in the training ledger).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch import nn
from tqdm import tqdm

from hecsb_ros.core.learned.base import FactorizedLatentModel, distortion, rate_bits
from hecsb_ros.core.teachers.classifier import Classifier
from hecsb_ros.core.teachers.tail import TAIL_PREFIX
from hecsb_ros.core.training.common import (
    batches,
    budget_schedule,
    kd_loss,
    mixed_kd_loss,
    seconds_per_step,
)
from hecsb_ros.core.training.config import DistillConfig
from hecsb_ros.core.training.distill_state import (
    WeightAverage,
    new_work,
    read_state,
    save_state,
)
from hecsb_ros.core.training.evaluation import rounded_rate_and_logits

__all__ = ["DistillConfig", "Distiller", "Source", "mixed_kd_loss", "rounded_rate_and_logits"]


class Source(Protocol):
    """Training images and labels by index. A source may also have ``targets(idx)``: the teacher's
    ``features`` and ``logits`` on those images, precomputed
    (:class:`~hecsb_ros.core.training.photos.PhotoCrops`), which the distiller then uses instead of
    running the teacher."""

    def __len__(self) -> int: ...
    def batch(
        self, idx: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def _optimisers(
    model: FactorizedLatentModel,
    stage: int,
    cfg: DistillConfig,
    steps: int,
    tail: nn.Module | None = None,
):
    if stage == 1 or not cfg.freeze_encoder:
        params = (
            model.encoder_parameters()
            + model.prior_parameters(aux=False)
            + list(model.g_phi.parameters())
        )
    else:
        params = list(model.g_phi.parameters())
    lr = cfg.lr1 if stage == 1 else cfg.lr2
    groups = [{"params": params, "lr": lr}]
    if stage == 2 and cfg.train_tail:
        groups.append({"params": list(tail.parameters()), "lr": lr * cfg.tail_lr_scale})
    opt = torch.optim.Adam(groups, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=max(steps, 1), pct_start=0.1
    )
    aux = torch.optim.Adam(model.prior_parameters(aux=True), lr=cfg.aux_lr)
    return opt, sched, aux


class Distiller:
    """Runs stage 1 then stage 2 for one ``beta``; ``run()`` returns the trained bottleneck."""

    def __init__(
        self,
        model: FactorizedLatentModel,
        teacher: Classifier,
        train: Source,
        cfg: DistillConfig,
        state_path: Path | None = None,
        log: Callable[[str], None] = print,
        progress: bool = True,
        device: torch.device | str = "cpu",
        tail: nn.Module | None = None,
    ) -> None:
        """``tail``: the tail behind the bottleneck (default: the teacher's); with
        ``cfg.train_tail`` stage 2 fine-tunes a copy of it, available as :attr:`tail` afterwards.
        """
        self.device = torch.device(device)
        self.model, self.teacher, self.train, self.cfg = model.to(self.device), teacher, train, cfg
        teacher.model.to(self.device)
        self.state_path = state_path
        self.log = log
        self.progress = progress
        for p in teacher.model.parameters():
            p.requires_grad_(False)
        teacher.model.eval()
        tail = tail if tail is not None else teacher.model.tail
        if cfg.train_tail:
            tail = copy.deepcopy(tail)
            for p in tail.parameters():
                p.requires_grad_(True)
        self.tail = tail.to(self.device).eval()
        # On a CPU, oneDNN runs the tail's forward and backward about 1.3x faster in channels-last
        # layout (EfficientNet-Lite0's tail at batch 32: 37 -> 29 ms per image); the decoder gains
        # nothing. The same holds for the stem of an edge network that starts with the teacher's
        # layers, and for the teacher run on fresh views (EfficientNet-Lite0 stem + HECS-B stage 2
        # at batch 32, one thread: 198 -> 156 ms per image); weights go back to the contiguous
        # layout after training.
        self._tail_layout = (
            torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        )
        self.tail.to(memory_format=self._tail_layout)
        self.model.to(memory_format=self._tail_layout)
        teacher.model.to(memory_format=self._tail_layout)
        if cfg.freeze_stem:
            if model.stem() is None:
                raise ValueError(
                    f"freeze_stem: this {type(model).__name__} does not start with "
                    "the teacher's layers"
                )
            for p in model.stem().parameters():
                p.requires_grad_(False)
        # : a frozen stem that computes the teacher's own head (SVB, CR+BQ from the teacher's
        # weights): : on views without cached features the teacher's head then runs once per batch
        # and serves as : the target (stage 1), the student's stem output and the input of the
        # teacher's tail (stage 2)
        self._stem_is_head = (
            cfg.freeze_stem
            and model.stem_reaches_split()
            and _same_function(model.stem(), teacher.model.head, teacher.spec, self.device)
        )
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.full_steps = len(train) // cfg.batch_size
        self.steps_per_epoch = max(1, int(self.full_steps * cfg.epoch_fraction))
        if self.full_steps == 0:
            raise ValueError(
                f"need at least batch_size={cfg.batch_size} training images, have {len(train)}"
            )
        self.epoch = 0  # epochs done over both stages
        self._shares = (cfg.stage1_epochs, cfg.stage2_epochs)  # ratio kept by fit_budget
        self.history: list[dict[str, float]] = []
        self.ema: WeightAverage | None = None  # stage 2's moving average, when cfg.ema > 0
        #: work done so far (resumed runs included): process CPU seconds, samples, device seconds
        self.work = new_work()
        #: the teacher's top-1 class on the stage-2 views seen (counts per class)
        self.teacher_top1 = torch.zeros(teacher.spec.num_classes, dtype=torch.int64)

    def _trained_state(self) -> dict[str, torch.Tensor]:
        """The bottleneck's state plus, with ``train_tail``, the tail's (keys ``tail.*``): what the
        moving average averages."""
        state = dict(self.model.state_dict())
        if self.cfg.train_tail:
            state.update({TAIL_PREFIX + k: v for k, v in self.tail.state_dict().items()})
        return state

    # -- resumable state (distill_state) ---------------------------------------------------------
    def _save_state(self, opt, sched, aux) -> None:
        if self.state_path is None:
            return
        save_state(
            self.state_path,
            self.cfg,
            self.epoch,
            self.model.state_dict(),
            opt.state_dict(),
            sched.state_dict(),
            aux.state_dict(),
            self.gen,
            self.history,
            self.ema.values if self.ema is not None else None,
            self.work,
            self.teacher_top1,
            tail=self.tail.state_dict() if self.cfg.train_tail else None,
        )

    def _load_state(self) -> dict | None:
        found = read_state(self.state_path, self.cfg) if self.state_path is not None else None
        if found is None:
            return None
        state, self.cfg = found
        self.steps_per_epoch = max(1, int(self.full_steps * self.cfg.epoch_fraction))
        self.model.load_state_dict(state["model"])
        self.model.to(self.device)
        if self.cfg.train_tail:
            self.tail.load_state_dict(state["tail"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        ema = state.get("ema")
        self.ema = (
            WeightAverage(self._trained_state, self.cfg.ema, ema) if ema is not None else None
        )
        self.work.update(state.get("work", {}))
        if "teacher_top1" in state:
            self.teacher_top1 = state["teacher_top1"].clone()
        self.log(
            f"resumed from {self.state_path} after epoch {self.epoch} of "
            f"{self.cfg.stage1_epochs + self.cfg.stage2_epochs} "
            f"({self.work['cpu_seconds'] / 3600:.2f} core-hours, "
            f"{self.work['samples']} samples so far)"
        )
        return state

    # -- training ------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> FactorizedLatentModel:
        """Train both stages (continuing from ``state_path`` when ``resume``); returns the
        model."""
        state = self._load_state() if resume else None
        e1, e2 = self.cfg.stage1_epochs, self.cfg.stage2_epochs
        for stage, first, last in ((1, 0, e1), (2, e1, e1 + e2)):
            if self.epoch >= last:
                continue
            opt, sched, aux = _optimisers(
                self.model, stage, self.cfg, (last - first) * self.steps_per_epoch, self.tail
            )
            if (
                state is not None
                and first <= int(state["epoch"]) < last
                and int(state["epoch"]) > first
            ):
                opt.load_state_dict(state["opt"])
                sched.load_state_dict(state["sched"])
                aux.load_state_dict(state["aux"])
            if stage == 2 and self.cfg.ema > 0 and (state is None or self.ema is None):
                self.ema = WeightAverage(self._trained_state, self.cfg.ema)
            state = None
            with tqdm(
                total=(last - self.epoch) * self.steps_per_epoch,
                desc=f"beta={self.cfg.beta:g} stage {stage}",
                unit="batch",
                file=sys.stderr,
                disable=not self.progress,
            ) as bar:
                while self.epoch < last:
                    cpu, wall = time.process_time(), time.perf_counter()
                    stats = self._epoch(
                        stage, opt, sched, aux, bar, max_steps=self.steps_per_epoch
                    )
                    self.work["cpu_seconds"] += time.process_time() - cpu
                    self.work["samples"] += self.steps_per_epoch * self.cfg.batch_size
                    if self.device.type != "cpu":
                        self.work["device_seconds"] += time.perf_counter() - wall
                    self.epoch += 1
                    stats.update(stage=stage, epoch=self.epoch)
                    self.history.append(stats)
                    bar.write(
                        f"stage {stage} epoch {self.epoch}: "
                        + ", ".join(
                            f"{k} {v:.4g}" for k, v in stats.items() if k not in ("stage", "epoch")
                        )
                    )
                    if self.epoch == last and self.ema is not None:
                        self.ema.apply()
                        self.ema = None
                    self._save_state(opt, sched, aux)
        self.model.to("cpu", memory_format=torch.contiguous_format)
        self.teacher.model.to("cpu", memory_format=torch.contiguous_format)
        self.tail.to("cpu", memory_format=torch.contiguous_format).eval()
        self.model.update()
        self.model.eval()
        return self.model

    def fit_budget(
        self, minutes: float, steps: int = 20, max_epoch_min: float | None = None
    ) -> DistillConfig:
        """Set the epochs of both stages so that training takes about ``minutes`` here.

        Times ``steps`` steps of each stage on a copy of the model (the model, the batch order
        and the random state are left as they were) and scales the configured epochs of the two
        stages, keeping the ratio of the epochs first configured. Returns (and uses from now on)
        the new configuration. When even one epoch per stage is longer than the budget, the
        epochs visit a random part of the images (``epoch_fraction``) so that the run fits.
        ``max_epoch_min``: split epochs longer than this into shorter ones (the same steps in all;
        the state is saved after every epoch, so a stopped run loses at most this much).
        The timing steps count in :attr:`work`.
        """
        cpu = time.process_time()
        saved_model, saved_gen, saved_rng = (
            copy.deepcopy(self.model),
            self.gen.get_state(),
            torch.get_rng_state(),
        )
        saved_tail = copy.deepcopy(self.tail.state_dict())
        saved_top1 = self.teacher_top1.clone()  # the timing steps' views are not training views
        per_epoch = []
        for stage in (1, 2):

            def run(n: int, stage: int = stage) -> None:
                self.model = copy.deepcopy(saved_model)
                opt, sched, aux = _optimisers(self.model, stage, self.cfg, n, self.tail)
                while n > 0:  # as many (partial) epochs as it takes
                    self._epoch(stage, opt, sched, aux, None, max_steps=n)
                    n -= min(n, self.full_steps)

            per_epoch.append(seconds_per_step(run, self.device, steps=steps) * self.full_steps)
        self.model = saved_model
        self.tail.load_state_dict(saved_tail)
        self.teacher_top1 = saved_top1
        self.gen.set_state(saved_gen)
        torch.set_rng_state(saved_rng)
        self.work["cpu_seconds"] += time.process_time() - cpu
        (e1, e2), fraction = budget_schedule(
            minutes * 60,
            per_epoch,
            self._shares,
            self.full_steps,
            max_epoch_min * 60 if max_epoch_min else None,
        )
        self.cfg = DistillConfig(
            **{
                **asdict(self.cfg),
                "stage1_epochs": e1,
                "stage2_epochs": e2,
                "epoch_fraction": round(fraction, 4),
            }
        )
        self.steps_per_epoch = max(1, int(self.full_steps * self.cfg.epoch_fraction))
        self.log(
            f"budget {minutes:g} min: {per_epoch[0]:.1f} s per stage-1 epoch, "
            f"{per_epoch[1]:.1f} s per "
            f"stage-2 epoch -> {e1} + {e2} epochs"
            + (f" of {100 * fraction:.0f}% of the images each" if fraction < 1 else "")
        )
        return self.cfg

    def _encode(self, x: torch.Tensor, cached: dict | None) -> torch.Tensor:
        """The unquantised latent of ``x``; with ``freeze_stem``, from the cached split features
        (the frozen stem's output) when there are any and the stem ends at the split, else from the
        stem run without gradients (the light HECS-B head's stem ends at stride 2)."""
        if not self.cfg.freeze_stem:
            return self.model.encode(x)
        if cached is not None and self.model.stem_reaches_split():
            return self.model.encode_after_stem(
                cached["features"].to(self.device, non_blocking=True)
            )
        with torch.no_grad():
            s = self.model.stem()(x)
        return self.model.encode_after_stem(s)

    def _epoch(
        self, stage: int, opt, sched, aux, bar, max_steps: int | None = None
    ) -> dict[str, float]:
        model, tail = self.model, self.tail
        model.train()
        if self.cfg.freeze_stem:
            model.stem().eval()  # the teacher's batch-norm statistics stay
        tail.train(stage == 2 and self.cfg.train_tail)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        count = 0
        for idx in batches(len(self.train), self.cfg.batch_size, self.gen, drop_last=True):
            if max_steps is not None and count >= max_steps:
                break
            x, y = self.train.batch(idx, self.gen)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            # the teacher's, precomputed
            cached = self.train.targets(idx) if hasattr(self.train, "targets") else None
            unlabelled = bool((y < 0).any())
            if stage == 1:
                if cached is not None:
                    h = cached["features"].to(self.device, non_blocking=True)
                else:
                    with torch.no_grad():
                        h = self.teacher.model.head(x)
                    if self._stem_is_head:
                        cached = {"features": h}
                z, lik = model.quantize(self._encode(x, cached), "noise")
                h_hat = model.synthesize(z)
                d, r = distortion(h, h_hat).mean(), rate_bits(lik).mean()
                loss = d + self.cfg.beta * r
                parts = {"distortion": d, "bits": r}
            else:
                mixed = (
                    self.cfg.mixup > 0
                    and float(torch.rand((), generator=self.gen)) < self.cfg.mixup
                )
                if mixed:
                    lam = torch.rand(len(x), generator=self.gen).to(self.device)
                    perm = torch.randperm(len(x), generator=self.gen).to(self.device)
                    x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
                shared = None
                if cached is not None and not mixed:
                    t_logits = cached["logits"].to(self.device, non_blocking=True)
                elif self._stem_is_head:
                    with torch.no_grad():
                        h = self.teacher.model.head(x)
                        t_logits = self.teacher.model.tail(h)
                    shared = {"features": h}
                else:
                    with torch.no_grad():
                        t_logits = self.teacher.model(x)
                if unlabelled:  # the teacher's top-1 on this very view stands in for the label
                    y = t_logits.argmax(1)
                    if not mixed:
                        self.teacher_top1 += torch.bincount(
                            y.cpu(), minlength=len(self.teacher_top1)
                        )
                # a mixed image has no cached features
                fresh = shared if shared is not None else (None if mixed else cached)
                if self.cfg.freeze_encoder:
                    with torch.no_grad():
                        z, lik = model.quantize(self._encode(x, fresh), "round")
                else:
                    z, lik = model.quantize(self._encode(x, fresh), "ste")
                s_logits = tail(model.synthesize(z).contiguous(memory_format=self._tail_layout))
                r = rate_bits(lik).mean()
                if mixed:
                    loss = mixed_kd_loss(
                        s_logits, t_logits, y, y[perm], lam, self.cfg.alpha, self.cfg.tau
                    )
                else:
                    loss = kd_loss(s_logits, t_logits, y, self.cfg.alpha, self.cfg.tau)
                parts = {"kd": loss, "bits": r}
                if not mixed:
                    parts["acc"] = (s_logits.argmax(1) == y).float().mean()
                if not self.cfg.freeze_encoder and self.cfg.stage2_rate_weight > 0:
                    loss = loss + self.cfg.stage2_rate_weight * self.cfg.beta * r
            # checked now and then: .item() waits for the GPU
            if count % 50 == 0 and not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} in stage {stage}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            model.project_()
            # a frozen prior keeps its quantiles (medians) too
            if stage == 1 or not self.cfg.freeze_encoder:
                aux_loss = model.aux_loss()
                aux.zero_grad(set_to_none=True)
                aux_loss.backward()
                aux.step()
                parts["aux"] = aux_loss
            if stage == 2 and self.ema is not None:
                self.ema.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
                counts[k] = counts.get(k, 0) + 1
            count += 1
            if bar is not None:
                bar.update(1)
                if count % 100 == 0:
                    bar.set_postfix({k: f"{float(v) / counts[k]:.3g}" for k, v in sums.items()})
        means = {k: float(v) / counts[k] for k, v in sums.items()}
        if not all(math.isfinite(v) for v in means.values()):
            raise FloatingPointError(f"stage {stage}: {means}")
        return means


@torch.no_grad()
def _same_function(a: nn.Module, b: nn.Module, spec, device: torch.device) -> bool:
    """Whether modules ``a`` and ``b`` (in eval mode) give the same output on a random input of
    ``spec``'s size."""
    modes = a.training, b.training
    a.eval(), b.eval()
    x = torch.randn(
        2, spec.in_channels, *spec.input_size, generator=torch.Generator().manual_seed(0)
    ).to(device)
    try:
        ya, yb = a(x), b(x)
        return ya.shape == yb.shape and bool(torch.allclose(ya, yb, rtol=1e-4, atol=1e-4))
    finally:
        a.train(modes[0]), b.train(modes[1])
