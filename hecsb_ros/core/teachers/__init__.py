"""Teachers: classifiers split at the bottleneck position, as a registry of families.

Every model has ``.head`` (input -> features at the split) and ``.tail`` (features -> logits), with
``forward(x) == tail(head(x))``; the split is before the third residual stage, as the seed paper
splits ResNet-50 (section 4.2). Add a family with one module defining ``TEACHER = Teacher(...)``
and one line in :data:`~hecsb_ros.core.teachers.registry.BUILTIN_TEACHERS`.
"""

from hecsb_ros.core.teachers.classifier import (
    CLASSIFIER_FORMAT,
    CheckpointData,
    Classifier,
    check_teacher,
    read_checkpoint,
    save_checkpoint,
)
from hecsb_ros.core.teachers.fmnist_resnet import FmnistResNet, default_teacher_path, fmnist_spec
from hecsb_ros.core.teachers.registry import (
    BUILTIN_TEACHERS,
    DEFAULT_TEACHER,
    Teacher,
    TeacherRef,
    build_model,
    get_teacher,
    list_teachers,
    load_teacher,
    register_teacher,
    resolve_teacher,
    teacher_tag,
)
from hecsb_ros.core.teachers.imagenet import class_index, imagenet_classes, imagenet_synsets
from hecsb_ros.core.teachers.resnet50 import SplitResNet50, resnet50_spec
from hecsb_ros.core.teachers.spec import ClassifierSpec, images_to_tensor

__all__ = [
    "BUILTIN_TEACHERS",
    "CLASSIFIER_FORMAT",
    "CheckpointData",
    "Classifier",
    "ClassifierSpec",
    "DEFAULT_TEACHER",
    "FmnistResNet",
    "SplitResNet50",
    "Teacher",
    "TeacherRef",
    "build_model",
    "check_teacher",
    "class_index",
    "imagenet_synsets",
    "default_teacher_path",
    "fmnist_spec",
    "get_teacher",
    "imagenet_classes",
    "images_to_tensor",
    "list_teachers",
    "load_teacher",
    "read_checkpoint",
    "register_teacher",
    "resnet50_spec",
    "resolve_teacher",
    "save_checkpoint",
    "teacher_tag",
]
