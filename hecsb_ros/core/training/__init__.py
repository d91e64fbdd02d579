"""Training: shared loops and utilities (teacher and HECS-B distillation)."""
from hecsb_ros.core.training.common import (
    Augment, accuracy, batches, evaluate, kd_loss, predict_logits, set_seed, set_threads,
    train_classifier_epoch,
)

__all__ = ["Augment", "accuracy", "batches", "evaluate", "kd_loss", "predict_logits", "set_seed",
           "set_threads", "train_classifier_epoch"]
