"""Training: shared loops and utilities (teacher and HECS-B distillation)."""

from hecsb_ros.core.training.common import (
    Augment,
    accuracy,
    batches,
    epochs_for_budget,
    evaluate,
    kd_loss,
    predict_logits,
    resolve_device,
    seconds_per_step,
    set_seed,
    set_threads,
    synchronize,
    train_classifier_epoch,
)

__all__ = [
    "Augment",
    "accuracy",
    "batches",
    "epochs_for_budget",
    "evaluate",
    "kd_loss",
    "predict_logits",
    "resolve_device",
    "seconds_per_step",
    "set_seed",
    "set_threads",
    "synchronize",
    "train_classifier_epoch",
]
