"""The typed, frozen configuration of training: :class:`DistillConfig`, the settings of the
two-stage recipe (:class:`~hecsb_ros.core.training.distill.Distiller`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DistillConfig:
    """Hyper-parameters of both stages of :class:`~hecsb_ros.core.training.distill.Distiller`.

    A resumable run's state stores these and refuses to continue under others
    (:mod:`~hecsb_ros.core.training.distill_state`): adding a field means reading old states
    without it."""

    beta: float
    stage1_epochs: int = 6
    stage2_epochs: int = 4
    batch_size: int = 64
    lr1: float = 2e-3
    lr2: float = 5e-4
    aux_lr: float = 1e-3
    alpha: float = 0.5
    tau: float = 4.0
    freeze_encoder: bool = False
    stage2_rate_weight: float = 1.0
    seed: int = 0
    ema: float = 0.0
    mixup: float = 0.0
    train_tail: bool = False
    tail_lr_scale: float = 1.0
    freeze_stem: bool = False
    #: part of the training images one epoch visits (a fresh random subset each epoch); below 1
    #: when a time budget is shorter than one epoch of each stage (:meth:`Distiller.fit_budget`)
    epoch_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.epoch_fraction <= 1.0:
            raise ValueError(f"epoch_fraction must be in (0, 1], not {self.epoch_fraction}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema is a decay in [0, 1), not {self.ema}")
        if not 0.0 <= self.mixup <= 1.0:
            raise ValueError(f"mixup is the fraction of mixed batches in [0, 1], not {self.mixup}")
        if self.train_tail and self.freeze_encoder:
            raise ValueError("train_tail fine-tunes the whole student; it cannot be combined with "
                             "freeze_encoder")
        if self.tail_lr_scale <= 0:
            raise ValueError(f"tail_lr_scale must be positive, not {self.tail_lr_scale}")
