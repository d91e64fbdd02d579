"""Training recipes of the learned codecs, registered by kind, and the one loop that trains a rate
level.

A recipe turns a :class:`TrainJob` (the rate setting's value, the teacher, the training images and
the recipe's typed options, :mod:`~hecsb_ros.core.training.config`) into a trained model
(:class:`Trained`):

- ``hecsb``, ``hecsb_light`` (the light edge head) and ``svb``: the seed paper's two stages
  (:class:`~hecsb_ros.core.training.distill.Distiller`: head distillation, eq. 14, then knowledge
  distillation, eq. 10-12), optionally from a trained checkpoint (``init``);
- ``crbq``: head distillation only (:func:`~hecsb_ros.core.training.loops.head_distill`);
- ``factorized`` and ``hyperprior``: CompressAI's rate-distortion objective on the teacher's input
  pixels (:func:`~hecsb_ros.core.training.loops.train_rd`).

:func:`train_level` then saves the checkpoint, loads it back as the deployable
:class:`~hecsb_ros.core.learned.split.Split`, measures accuracy and the real payload bytes on the
test images, and writes the manifest (with the options). A new recipe is a function, its options
class and one :data:`RECIPES` line. Wrong settings raise ValueError with the reason.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from hecsb_ros.core.learned.base import (
    FactorizedLatentModel,
    LearnedModel,
    model_class,
    read_learned,
    save_learned,
)
from hecsb_ros.core.learned.crbq import CrbqBottleneck, crbq_config_for
from hecsb_ros.core.learned.hecsb import DECODER_FIELDS, HecsbConfig
from hecsb_ros.core.learned.neural import NeuralConfig, build as build_neural
from hecsb_ros.core.learned.split import Split
from hecsb_ros.core.learned.stem import load_stem_
from hecsb_ros.core.learned.svb import SvbBottleneck, svb_config_for
from hecsb_ros.core.store import model_id_of, read_manifest, read_metadata, write_manifest
from hecsb_ros.core.teachers.classifier import Classifier
from hecsb_ros.core.teachers.tail import build_tail
from hecsb_ros.core.training.common import epochs_for_budget, seconds_per_step
from hecsb_ros.core.training.config import (
    CrbqOptions,
    DataOptions,
    DistilledOptions,
    EpochOptions,
    HecsbOptions,
    RdOptions,
    SvbOptions,
    TrainingOptions,
)
from hecsb_ros.core.training.data import PixelSource
from hecsb_ros.core.training.distill import Distiller
from hecsb_ros.core.training.distill_state import work_facts
from hecsb_ros.core.training.evaluation import evaluate_split, val_accuracy
from hecsb_ros.core.training.loops import head_distill, train_rd
from hecsb_ros.core.training.prior import (
    fit_prior_,
    principal_measurements_,
    refit_prior,
    sample_features,
)

# : HECS-B architecture per teacher tag (``f_psi`` widths, measurements per position, decoder
# width); : a teacher without an entry gets the Fashion-MNIST shape with one stride-2 layer per
# halving.
HECSB_ARCH: dict[str, dict[str, Any]] = {
    "fmnist": {"acq_channels": (16, 24), "measurements": 2, "decoder_channels": 128},
    "resnet50": {"acq_channels": (64, 96, 128), "measurements": 12, "decoder_channels": 256},
    # EfficientNet-Lite0 at 224: f_psi is the teacher's own head (its layers to the stride-8 split,
    # initialised from it: 114 M multiply-accumulates, 0.3 x the whole teacher), W takes 32
    # measurements of each position's 40 features, and decoding starts from their least-squares
    # inverse
    "effl0": {
        "stem": "efficientnet_lite0",
        "stem_stride": 8,
        "stem_channels": 40,
        "acq_channels": (),
        "measurements": 32,
        "linear_inverse": True,
        "decoder_channels": 64,
        "decoder_blocks": 1,
    },
    # The light head (codec hecsb_light) for EfficientNet-Lite0 at 224: the teacher's layers to
    # stride 2 (stem and block 0, 16 channels at 112 x 112, initialised from it), then two
    # depthwise-separable stride-2 layers (5x5 depthwise, 1x1 to 64, then to the split's 40
    # channels at 28 x 28: f_psi is distilled to the split features in stage 1), then W as in the
    # standard head: about 29 M multiply-accumulates, a quarter of the standard head's
    # (benchmarks/light_head)
    "effl0_light": {
        "stem": "efficientnet_lite0",
        "stem_stride": 2,
        "acq_channels": (64, 40),
        "separable": True,
        "kernel": 5,
        "measurements": 32,
        "linear_inverse": True,
        "decoder_channels": 64,
        "decoder_blocks": 1,
    },
}
# : The HECS-B heads: learned model kind -> suffix of its :data:`HECSB_ARCH` keys
# (``{tag}{suffix}``).
HECSB_HEADS: dict[str, str] = {"hecsb": "", "hecsb_light": "_light"}


@dataclass
class TrainJob:
    """One rate level to train: ``value`` of the kind's rate setting, ``options`` of the type its
    recipe takes (:attr:`Recipe.options`, e.g. :class:`HecsbOptions`; checked when the job is
    made)."""

    kind: str
    value: float
    level: int
    teacher: Classifier
    train: Any
    options: TrainingOptions
    init: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = True
    state_path: Path | None = None
    resume: bool = False
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        wanted = get_recipe(self.kind).options
        if not isinstance(self.options, wanted):
            raise ValueError(
                f"the {self.kind} recipe takes {wanted.__name__}, "
                f"not {type(self.options).__name__}"
            )


@dataclass
class Trained:
    """A recipe's result: the model (CDF tables updated), the fine-tuned tail to ship (None: the
    teacher's) and facts for the checkpoint and its manifest."""

    model: LearnedModel
    tail: nn.Module | None
    facts: dict[str, Any]


@dataclass(frozen=True)
class Recipe:
    """How to train one kind: ``train(job)``; ``larger_is_more_bytes`` orders the rate levels
    (level 0 = the fewest bytes: the largest beta, the fewest channels, the smallest lambda);
    ``options``: the options type its jobs carry."""

    kind: str
    train: Callable[[TrainJob], Trained]
    larger_is_more_bytes: bool
    options: type[TrainingOptions] = DistilledOptions

    @property
    def setting(self) -> str:
        """Name of the value that sets the rate (the manifest field and the command option)."""
        return model_class(self.kind).rate_setting


# -- the two-stage recipe (HECS-B, SVB)
# -------------------------------------------------------------
def earlier_training(init: Path) -> list[dict[str, Any]]:
    """The training an initial checkpoint went through (earliest first), from its manifest."""
    m = read_manifest(init)
    if not m:
        m = dict(read_metadata(init)[1])
    earlier = m.get("earlier_training", [])
    earlier = earlier if isinstance(earlier, list) else json.loads(earlier)
    keys = (
        "command",
        "distill",
        "distill_config",
        "test_accuracy",
        "mean_payload_bytes",
        "estimated_bits_mean",
    )
    return [*earlier, {k: m[k] for k in keys if k in m} | {"model_id": model_id_of(init)}]


def _check_init(init: Path, teacher: Classifier) -> tuple[LearnedModel, nn.Module]:
    """(model, tail) of an initial checkpoint, which must belong to ``teacher``."""
    model, meta, tail_state = read_learned(init)
    if meta.get("teacher_model_id") != teacher.model_id:
        raise ValueError(
            f"{init} was trained for teacher {meta.get('teacher_model_id')}, "
            f"not {teacher.model_id}"
        )
    return model, build_tail(teacher.model.tail, tail_state)


def hecsb_config(
    teacher: Classifier, options: HecsbOptions = HecsbOptions(), kind: str = "hecsb"
) -> HecsbConfig:
    """HECS-B architecture of head ``kind`` (``hecsb`` or ``hecsb_light``, :data:`HECSB_HEADS`) for
    ``teacher`` (:data:`HECSB_ARCH`), with the options' overrides. The light head exists for the
    teachers with an ``{tag}_light`` entry only (it starts with the teacher's own first layers)."""
    spec = teacher.spec
    channels, size = teacher.split_features()
    key = teacher.tag + HECSB_HEADS[kind]
    if kind != "hecsb" and key not in HECSB_ARCH:
        known = sorted(
            k[: -len(HECSB_HEADS[kind])] for k in HECSB_ARCH if k.endswith(HECSB_HEADS[kind])
        )
        raise ValueError(
            f"no {kind} architecture for teacher {teacher.tag!r} "
            f"(HECSB_ARCH[{key!r}]); teachers with one: {', '.join(known)}"
        )
    arch = dict(HECSB_ARCH.get(key) or _generic_hecsb_arch(spec.input_size, size))
    overrides = {
        "measurements": options.measurements,
        "decoder_channels": options.decoder_channels,
        "decoder_blocks": options.decoder_blocks,
    }
    arch.update({k: v for k, v in overrides.items() if v is not None})
    if options.acq_channels:
        arch["acq_channels"] = tuple(options.acq_channels)
    if arch.get("stem") and not arch["acq_channels"]:  # the stem reaches the split: l = its width
        arch["stem_channels"] = channels
    return HecsbConfig(
        spec.in_channels, spec.input_size, channels, size, max_norm=options.max_norm, **arch
    )


def _generic_hecsb_arch(
    input_size: tuple[int, int], feature_size: tuple[int, int]
) -> dict[str, Any]:
    from hecsb_ros.core.grid import encoder_depth

    depth = encoder_depth(input_size, feature_size)
    return {
        "acq_channels": (16,) * (depth - 1) + (24,),
        "measurements": 2,
        "decoder_channels": 128,
    }


def _hecsb_start(job: TrainJob) -> tuple[FactorizedLatentModel, nn.Module | None]:
    """A fresh HECS-B, or ``job.init`` grown / widened / with a new decoder as the options ask."""
    options = job.options
    if job.init is None:
        model = model_class(job.kind)(hecsb_config(job.teacher, options, job.kind))
        if model.config.stem:  # the teacher's own first layers: start from its weights
            load_stem_(model.f_psi.stem, job.teacher.model.head, model.config.stem, log=job.log)
        if model.config.linear_inverse:
            # W starts as the principal directions of the split features and the prior fits their
            # measurements: what f_psi computes from the start when it is the teacher's head, and
            # what stage 1 distils the light head's f_psi to (its layers past the stem start
            # untrained)
            features = sample_features(job.train, job.teacher, seed=options.seed)
            scale = principal_measurements_(model, features, beta=job.value)
            job.log(
                f"W starts as the {model.config.measurements} principal directions of the "
                "split features, "
                f"rows of norm {scale:.3f}"
            )
            with torch.no_grad():
                latents = model.measure(features)
            fit_prior_(model.entropy_bottleneck, latents, log=job.log)
        return model, None
    model, tail = _check_init(job.init, job.teacher)
    if model.kind != job.kind:
        raise ValueError(
            f"{job.init} is a {model.kind} checkpoint, not {job.kind} (train_hecsb --head)"
        )
    if options.measurements and options.measurements != model.config.measurements:
        job.log(
            f"starting from {job.init}, measurements per position {model.config.measurements} "
            "-> "
            f"{options.measurements}"
        )
        model = model.grown(options.measurements, torch.Generator().manual_seed(options.seed))
    if options.acq_channels and tuple(options.acq_channels) != model.config.acq_channels:
        job.log(
            f"starting from {job.init}, f_psi widened {model.config.acq_channels} -> "
            f"{tuple(options.acq_channels)}"
        )
        model = model.widened(tuple(options.acq_channels))
    decoder = {f: getattr(options, f) for f in DECODER_FIELDS if getattr(options, f) is not None}
    if any(getattr(model.config, k) != v for k, v in decoder.items()):
        fresh = type(model)(replace(model.config, **decoder))
        fresh.load_edge_state_(model)
        job.log(f"starting from the encoder and prior of {job.init}, new decoder ({fresh.config})")
        return fresh.train(), tail
    job.log(f"starting from {job.init} ({model.config})")
    return model.train(), tail


def _svb_start(job: TrainJob) -> tuple[FactorizedLatentModel, nn.Module | None]:
    if job.init is None:
        model = SvbBottleneck(
            svb_config_for(job.teacher, job.options.latent_channels, stem=job.options.stem)
        )
        if model.config.stem:  # the teacher's own first layers: start from its weights
            load_stem_(model.g_a[0], job.teacher.model.head, model.config.stem, log=job.log)
        return model, None
    model, tail = _check_init(job.init, job.teacher)
    job.log(f"starting from {job.init} ({model.config})")
    return model.train(), tail


def distilled(
    start: Callable[[TrainJob], tuple[FactorizedLatentModel, nn.Module | None]],
) -> Callable[[TrainJob], Trained]:
    """The two-stage recipe (:class:`~hecsb_ros.core.training.distill.Distiller`) for a
    factorized-latent bottleneck, its jobs' options a :class:`DistilledOptions`; ``start(job)``
    returns the initial model and the tail behind it (None: the teacher's)."""

    def train(job: TrainJob) -> Trained:
        options: DistilledOptions = job.options
        model, tail = start(job)
        distiller = Distiller(
            model,
            job.teacher,
            job.train,
            options.distill_config(job.value),
            job.state_path,
            log=job.log,
            progress=job.progress,
            device=job.device,
            tail=tail,
        )
        resumed = job.resume and job.state_path is not None and job.state_path.exists()
        if options.budget_min and not resumed:
            distiller.fit_budget(options.budget_min, max_epoch_min=options.epoch_max_min)
        model = distiller.run(resume=job.resume)
        cfg = distiller.cfg  # as the budget fit (or the resumed state) set it
        fine_tuned = distiller.tail is not job.teacher.model.tail
        facts: dict[str, Any] = {
            "distill": asdict(cfg),
            "tail": "fine-tuned" if fine_tuned else "teacher",
            **work_facts(distiller.work, distiller.teacher_top1),
        }
        if options.refit_prior and not cfg.freeze_encoder:  # frozen: the edge's bytes stay
            facts |= refit_prior(
                model, lambda idx: job.train.batch(idx)[0], len(job.train), log=job.log
            )
        if job.init is not None:
            facts["earlier_training"] = earlier_training(job.init)
        return Trained(model, distiller.tail if fine_tuned else None, facts)

    return train


def _quiet(_: str) -> None:
    pass


def _fit_epochs(
    job: TrainJob, train_fn: Callable[..., nn.Module], model: nn.Module, **kw: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``model`` with ``train_fn`` for the options' ``epochs``, or for the epochs that fit
    ``budget_min`` given the step time measured on copies of the model (part of an epoch when one
    is too long). Returns the model and the facts (epochs, epoch fraction)."""
    options: EpochOptions = job.options
    epochs, fraction = options.epochs, 1.0
    batch_size = options.batch_size
    budget = options.budget_min
    if budget:

        def run(n: int) -> None:
            train_fn(copy.deepcopy(model), epochs=n, progress=False, log=_quiet, max_steps=n, **kw)

        per_epoch = seconds_per_step(run, job.device) * (len(job.train) // batch_size)
        epochs = epochs_for_budget(budget * 60, [per_epoch], [1])[0]
        fraction = round(min(1.0, budget * 60 / (epochs * per_epoch)), 4)
        job.log(
            f"budget {budget:g} min: {per_epoch:.1f} s per epoch -> {epochs} epochs"
            + (f" of {100 * fraction:.0f}% of the images" if fraction < 1 else "")
        )
    model = train_fn(
        model, epochs=epochs, progress=job.progress, log=job.log, epoch_fraction=fraction, **kw
    )
    return model, {"epochs": epochs, "epoch_fraction": fraction}


def _train_crbq(job: TrainJob) -> Trained:
    options: CrbqOptions = job.options
    model = CrbqBottleneck(crbq_config_for(job.teacher, int(job.value), stem=options.stem))
    if model.config.stem:  # the teacher's own first layers: start from its weights
        load_stem_(model.encoder[0], job.teacher.model.head, model.config.stem, log=job.log)
    frozen = options.freeze_stem
    model, facts = _fit_epochs(
        job,
        head_distill,
        model,
        teacher=job.teacher,
        train=job.train,
        batch_size=options.batch_size,
        seed=options.seed,
        device=job.device,
        freeze_stem=frozen,
    )
    if frozen:
        facts["freeze_stem"] = True
    return Trained(model, None, facts)


def _train_neural(job: TrainJob) -> Trained:
    options: RdOptions = job.options
    spec = job.teacher.spec
    config = NeuralConfig(job.kind, options.N, options.M, spec.in_channels, tuple(spec.input_size))
    model, facts = _fit_epochs(
        job,
        train_rd,
        build_neural(config),
        config=config,
        images=PixelSource(job.train, spec),
        lmbda=job.value,
        batch_size=options.batch_size,
        seed=options.seed,
        device=job.device,
        patch=options.patch,
    )
    if options.patch:
        facts["patch"] = options.patch
    if job.kind == "factorized" and options.refit_prior:  # the hyperprior's y has no such prior
        pixels = PixelSource(job.train, spec)
        facts |= refit_prior(model, lambda idx: pixels[idx], len(pixels), log=job.log)
    return Trained(model, None, facts)


#: Training recipe per learned codec kind.
RECIPES: dict[str, Recipe] = {
    "hecsb": Recipe("hecsb", distilled(_hecsb_start), False, HecsbOptions),
    "hecsb_light": Recipe("hecsb_light", distilled(_hecsb_start), False, HecsbOptions),
    "svb": Recipe("svb", distilled(_svb_start), False, SvbOptions),
    "crbq": Recipe("crbq", _train_crbq, True, CrbqOptions),
    "factorized": Recipe("factorized", _train_neural, True, RdOptions),
    "hyperprior": Recipe("hyperprior", _train_neural, True, RdOptions),
}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add the training recipe of a learned codec kind of one's own."""
    if RECIPES.get(recipe.kind, recipe) is not recipe:
        raise ValueError(f"recipe {recipe.kind!r} registered twice")
    RECIPES[recipe.kind] = recipe
    return recipe


def get_recipe(kind: str) -> Recipe:
    if kind not in RECIPES:
        raise ValueError(f"no training recipe for {kind!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[kind]


def level_order(recipe: Recipe, values: list[float]) -> list[int]:
    """Rate level of each value: 0 = the fewest bytes."""
    order = np.argsort(
        np.asarray(values) * (1 if recipe.larger_is_more_bytes else -1), kind="stable"
    )
    return [int(r) for r in np.argsort(order)]


# -- the one training loop
# -------------------------------------------------------------------------
def train_level(
    job: TrainJob,
    path: Path,
    test: Any,
    teacher_accuracy: float,
    command: str,
    val: Any = None,
    data: DataOptions | None = None,
) -> dict[str, Any]:
    """Train ``job`` with its recipe, save it at ``path``, measure it, write its manifest (with the
    job's options and the ``data`` options it was trained on); returns the manifest."""
    recipe = get_recipe(job.kind)
    start, cpu = time.time(), time.process_time()
    trained = recipe.train(job)
    minutes = (time.time() - start) / 60
    # recipes without their own count: this process's CPU time
    if "core_hours" not in trained.facts:
        trained.facts["core_hours"] = round((time.process_time() - cpu) / 3600, 3)
    if getattr(job.train, "version", None):
        trained.facts["train_pool"] = job.train.version
    facts = {
        recipe.setting: job.value,
        "rate_level": str(job.level),
        **trained.facts,
        "command": command,
    }
    save_learned(path, trained.model, job.teacher.model_id, facts, trained.tail)
    split = Split.load(path, job.teacher)
    measured = evaluate_split(split, test.x, test.y)
    fields = {
        "kind": job.kind,
        "rate_level": job.level,
        recipe.setting: job.value,
        **{k: round(v, 4) if k == "test_accuracy" else round(v, 2) for k, v in measured.items()},
        "teacher_accuracy": round(teacher_accuracy, 4),
        "test_images": len(test),
        "train_images": len(job.train),
        "teacher_model_id": job.teacher.model_id,
        "config": trained.model.config_dict(),
        "resize": job.teacher.spec.resize,
        **trained.facts,
        "train_minutes": round(minutes, 1),
        "train_device": str(job.device),
        "torch_threads": torch.get_num_threads(),
        "command": command,
        "training_options": job.options.manifest(),
    }
    if data is not None:
        fields["data_options"] = data.manifest()
    fields.setdefault("earlier_training", [])
    if val is not None:
        fields["val_accuracy"], fields["val_images"] = (
            round(val_accuracy(path, job.teacher, val), 4),
            len(val),
        )
    write_manifest(path, fields)
    return read_manifest(path)
