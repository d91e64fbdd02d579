"""The training loop of a command: every rate level of a :class:`~hecsb_ros.core.training.config.
TrainingRun`, one after the other, each by :func:`~hecsb_ros.core.training.recipes.train_level`."""

from __future__ import annotations

from typing import Callable

from hecsb_ros.core.store import prefix_level_path
from hecsb_ros.core.training.common import evaluate, print_flush, set_seed
from hecsb_ros.core.training.config import DistilledOptions, TrainingRun
from hecsb_ros.core.training.evaluation import val_accuracy
from hecsb_ros.core.training.ledger import append_ledger
from hecsb_ros.core.training.recipes import TrainJob, get_recipe, level_order, train_level
from hecsb_ros.core.training.sources import data_sources, load_run_teacher


def train_levels(run: TrainingRun, log: Callable[[str], None] = print_flush) -> list[dict]:
    """Train one rate level of ``run.kind`` per value with its recipe; returns the manifests.

    Checkpoints are ``{prefix}_r{LEVEL}.safetensors`` in ``run.out`` (default prefix:
    ``{kind}_{tag}``). The training state is written after every epoch (``.train_state.pt``
    beside the checkpoint, removed when the level is done); with ``run.resume`` an interrupted
    run continues from it. Raises ValueError when the options do not fit the recipe or the data.
    """
    recipe = get_recipe(run.kind)
    if not isinstance(run.options, recipe.options):
        raise ValueError(
            f"the {run.kind} recipe takes {recipe.options.__name__}, "
            f"not {type(run.options).__name__}"
        )
    if run.init is not None and not issubclass(recipe.options, DistilledOptions):
        raise ValueError(f"{run.kind} trains from scratch: no initial checkpoints")
    teacher = load_run_teacher(run.data)
    train, test, val = data_sources(run.data, teacher, run.augment, log=log)
    levels = list(run.levels) if run.levels is not None else level_order(recipe, list(run.values))
    inits = dict(zip(levels, run.init)) if run.init else {}
    teacher_acc = evaluate(teacher.model, test.x, test.y)
    log(f"teacher {teacher.model_id}: test accuracy {teacher_acc:.4f} on {len(test)} images")
    run.out.mkdir(parents=True, exist_ok=True)
    manifests = []
    for value, level in sorted(zip(run.values, levels), key=lambda t: t[1]):
        set_seed(run.options.seed)
        path = prefix_level_path(run.prefix or f"{run.kind}_{teacher.tag}", level, run.out)
        state_path = path.with_suffix(".train_state.pt")
        if val is not None and level in inits:
            accuracy = val_accuracy(inits[level], teacher, val)
            log(
                f"level {level}: {inits[level]} has accuracy {accuracy:.4f} on {len(val)} "
                "held-out training images"
            )
        job = TrainJob(
            run.kind,
            value,
            level,
            teacher,
            train,
            run.options,
            inits.get(level),
            run.device,
            run.data.progress,
            state_path,
            run.resume,
        )
        m = train_level(job, path, test, teacher_acc, run.command, val, run.data)
        state_path.unlink(missing_ok=True)
        held_out = (
            f", {m['val_accuracy']:.4f} on {m['val_images']} held-out training images"
            if val is not None
            else ""
        )
        log(
            f"{run.kind} level {level} ({recipe.setting} {value:g}): accuracy "
            f"{m['test_accuracy']:.4f} (teacher {teacher_acc:.4f}){held_out}, "
            f"{m['mean_payload_bytes']:.2f} B/image, "
            f"{m['train_minutes']} min, model id {m['model_id']}"
        )
        if run.ledger is not None:
            append_ledger(run.ledger, m, inits.get(level))
        manifests.append(m)
    return manifests
