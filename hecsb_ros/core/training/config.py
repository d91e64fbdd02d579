"""The typed, frozen configuration of training: one options class per recipe, the data, the run.

A command builds these from its arguments (:mod:`hecsb_ros.cli.options`); the core reads them by
attribute, so a misspelt setting is an error, never a silent default. Each class checks its values
when built and raises ValueError with the reason. :meth:`TrainingOptions.manifest` is what a
trained level's manifest records of them (``training_options``, ``data_options``).

- :class:`DistilledOptions` (:class:`HecsbOptions`, :class:`SvbOptions`): the two-stage recipe;
  :meth:`DistilledOptions.distill_config` gives the :class:`DistillConfig` of one ``beta``;
- :class:`EpochOptions` (:class:`CrbqOptions`, :class:`RdOptions`): recipes trained for a number
  of epochs (head distillation, the rate-distortion objective);
- :class:`DataOptions`: the teacher and where the training, held-out and test images come from;
- :class:`TrainingRun`: one training command, levels of one kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hecsb_ros.core.store import CHECKPOINT_DIR
from hecsb_ros.core.training.common import Augment


def _jsonable(value: Any) -> Any:
    if isinstance(value, (Path, torch.device)):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _manifest(options: Any) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(options, f.name)) for f in dataclasses.fields(options)}


def _tuple(options: Any, name: str) -> None:
    """Store a list-valued setting as a tuple (the options stay hashable and frozen)."""
    value = getattr(options, name)
    if isinstance(value, list):
        object.__setattr__(options, name, tuple(value))


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
            raise ValueError(
                "train_tail fine-tunes the whole student; it cannot be combined with "
                "freeze_encoder"
            )
        if self.tail_lr_scale <= 0:
            raise ValueError(f"tail_lr_scale must be positive, not {self.tail_lr_scale}")


# -- per recipe -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingOptions:
    """What every recipe reads: the seed, the batch size, the time budget of a level (minutes on
    this machine; None: the configured epochs) and whether to refit the latent's prior after
    training (the recipes with a factorized prior)."""

    seed: int = 0
    batch_size: int = 64
    budget_min: float | None = None
    refit_prior: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.budget_min is not None and not self.budget_min > 0:
            raise ValueError(f"budget_min must be positive minutes, not {self.budget_min}")

    def manifest(self) -> dict[str, Any]:
        """The options as JSON values (paths as strings, tuples as lists)."""
        return _manifest(self)


#: The :class:`DistillConfig` fields a :class:`DistilledOptions` sets (``beta`` is the level's
#: value, ``epoch_fraction`` is chosen by the budget fit).
DISTILL_FIELDS = tuple(
    f.name for f in dataclasses.fields(DistillConfig) if f.name not in ("beta", "epoch_fraction")
)


@dataclass(frozen=True)
class DistilledOptions(TrainingOptions):
    """The two-stage recipe (head distillation, then knowledge distillation):
    :class:`DistillConfig` less ``beta``, and ``epoch_max_min``, the longest epoch a budget fit may
    make (minutes)."""

    stage1_epochs: int = 6
    stage2_epochs: int = 4
    lr1: float = 2e-3
    lr2: float = 5e-4
    aux_lr: float = 1e-3
    alpha: float = 0.5
    tau: float = 4.0
    freeze_encoder: bool = False
    stage2_rate_weight: float = 1.0
    ema: float = 0.0
    mixup: float = 0.0
    train_tail: bool = False
    tail_lr_scale: float = 1.0
    freeze_stem: bool = False
    epoch_max_min: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage1_epochs < 0 or self.stage2_epochs < 0:
            raise ValueError(
                f"epochs cannot be negative ({self.stage1_epochs}, {self.stage2_epochs})"
            )
        if self.epoch_max_min is not None and not self.epoch_max_min > 0:
            raise ValueError(f"epoch_max_min must be positive minutes, not {self.epoch_max_min}")
        self.distill_config(1.0)  # its own checks (ema, mixup, train_tail, ...)

    def distill_config(self, beta: float) -> DistillConfig:
        """The distiller's configuration of one level at ``beta``."""
        return DistillConfig(beta=beta, **{n: getattr(self, n) for n in DISTILL_FIELDS})


@dataclass(frozen=True)
class HecsbOptions(DistilledOptions):
    """HECS-B (``hecsb``, ``hecsb_light``): the two-stage recipe and the architecture's overrides
    of ``HECSB_ARCH`` (None: the teacher's entry): measurements per position ``m``, the widths of
    ``f_psi``, the decoder's width and residual blocks, ``k`` of ``||W||_F <= k`` (0: sqrt(l))."""

    measurements: int | None = None
    acq_channels: tuple[int, ...] | None = None
    decoder_channels: int | None = None
    decoder_blocks: int | None = None
    max_norm: float = 0.0

    def __post_init__(self) -> None:
        _tuple(self, "acq_channels")
        super().__post_init__()
        for name in ("measurements", "decoder_channels"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.acq_channels is not None and (not self.acq_channels or min(self.acq_channels) < 1):
            raise ValueError(f"acq_channels must be positive widths, not {self.acq_channels}")


@dataclass(frozen=True)
class SvbOptions(DistilledOptions):
    """SVB: the two-stage recipe, ``N`` of the Entropic Student's latent, and whether the encoder
    starts with the teacher's own layers to the split (``stem``)."""

    latent_channels: int = 12
    stem: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent_channels < 1:
            raise ValueError(f"latent_channels must be at least 1, not {self.latent_channels}")


@dataclass(frozen=True)
class EpochOptions(TrainingOptions):
    """A recipe trained for ``epochs`` epochs (or the epochs that fit ``budget_min``)."""

    epochs: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {self.epochs}")


@dataclass(frozen=True)
class CrbqOptions(EpochOptions):
    """CR+BQ (head distillation): the encoder may start with the teacher's layers (``stem``),
    kept frozen (``freeze_stem``)."""

    stem: bool = False
    freeze_stem: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.freeze_stem and not self.stem:
            raise ValueError("freeze_stem keeps the teacher's layers of a stem: it needs stem")


@dataclass(frozen=True)
class RdOptions(EpochOptions):
    """The factorized prior and the hyperprior (rate-distortion on pixels): ``N`` and ``M``, and
    ``patch``, the side of a random square per image to train on (None: whole images)."""

    N: int = 32
    M: int = 32
    patch: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.patch is not None and self.patch % 64:
            raise ValueError(
                f"patch must be a multiple of 64 (the hyperprior's stride), not {self.patch}"
            )


# -- data and run ---------------------------------------------------------------------------------
#: ``data[0]`` -> (fewest, most) entries of ``data`` (None: no limit)
DATA_KINDS: dict[str, tuple[int, int | None]] = {
    "fashion-mnist": (1, 1),
    "imagenet-folder": (2, 2),
    "photos": (2, None),
    "pool": (2, None),
}


@dataclass(frozen=True)
class DataOptions:
    """The teacher and the images: ``data`` is ``('fashion-mnist',)``, ``('imagenet-folder',
    PATH)``, ``('photos', PATH, ...)`` (fixed crops, the teacher's outputs cached) or ``('pool',
    PATH, ...)`` (a fresh view per draw); ``val_images`` training images (photos: whole photos)
    are held out; ``crops``, ``video_every`` and ``cache`` shape photos and pools; ``teacher`` is a
    teacher setting (None: the shipped one), ``resnet50_weights`` local torchvision weights."""

    data: tuple[str, ...] = ("fashion-mnist",)
    val_folder: Path | None = None
    test_list: Path | None = None
    val_images: int = 0
    crops: int = 2
    video_every: int = 10
    cache: Path = Path("runs/cache")
    teacher: str | None = None
    resnet50_weights: Path | None = None
    limit_train: int | None = None
    limit_test: int | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        kind = self.data[0] if self.data else ""
        fewest, most = DATA_KINDS.get(kind, (0, 0))
        if not fewest or len(self.data) < fewest or (most is not None and len(self.data) > most):
            raise ValueError(
                "data must be 'fashion-mnist', 'imagenet-folder PATH', 'photos PATH "
                f"...' or 'pool PATH ...', not {' '.join(self.data)!r}"
            )
        if self.val_images < 0:
            raise ValueError(f"val_images cannot be negative ({self.val_images})")
        if kind == "imagenet-folder" and self.val_images:
            raise ValueError(
                "val_images is for fashion-mnist, photos and pool; an "
                "imagenet-folder run has val_folder"
            )
        if self.crops < 1 or self.video_every < 1:
            raise ValueError(
                f"crops and video_every must be at least 1 ({self.crops}, {self.video_every})"
            )

    @property
    def kind(self) -> str:
        return self.data[0]

    @property
    def paths(self) -> tuple[str, ...]:
        return self.data[1:]

    def manifest(self) -> dict[str, Any]:
        return _manifest(self)


@dataclass(frozen=True)
class TrainingRun:
    """One training command: a level of ``kind`` per value of its rate setting (``values``), each
    trained with the recipe's ``options`` on ``data``. ``levels``: the level of each value
    (default: by bytes, 0 the fewest); ``init``: a checkpoint to start each from; checkpoints go
    to ``out`` as ``{prefix}_r{LEVEL}`` (default prefix ``{kind}_{teacher tag}``); ``resume``
    continues from the training state written after every epoch; ``ledger``: a CSV to append a row
    per level to; ``augment``: of in-memory training images; ``command``: for the manifest."""

    kind: str
    values: tuple[float, ...]
    options: TrainingOptions
    data: DataOptions = field(default_factory=DataOptions)
    levels: tuple[int, ...] | None = None
    init: tuple[Path, ...] | None = None
    out: Path = CHECKPOINT_DIR
    prefix: str | None = None
    resume: bool = False
    ledger: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    augment: Augment | None = None
    command: str = ""

    def __post_init__(self) -> None:
        for name in ("values", "levels", "init"):
            _tuple(self, name)
        if not self.values:
            raise ValueError(f"{self.kind}: no rate values to train")
        if self.levels is not None and (
            len(self.levels) != len(self.values) or len(set(self.levels)) != len(self.levels)
        ):
            raise ValueError(
                f"levels {list(self.levels)}: need one distinct level per value "
                f"({len(self.values)})"
            )
        if self.init is not None and len(self.init) != len(self.values):
            raise ValueError(
                f"init needs one checkpoint per value ({len(self.values)}), not {len(self.init)}"
            )
