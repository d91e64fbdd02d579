"""The teacher's own first layers as the start of a bottleneck's edge encoder.

At camera scale a bottleneck trained in CPU minutes cannot learn from scratch what the teacher's
ImageNet-trained layers to the split already compute. HECS-B's acquisition network ``f_psi`` starts
with them (the compressed-sensing module sits in a shallow layer of the network, seed paper section
3), and so can SVB's and CR+BQ's encoders (``stem`` in their configs): the three then differ only
in what follows the stem, which is the comparison the paper makes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable

from torch import nn


def teacher_stem(name: str, input_size: tuple[int, int], stride: int) -> tuple[nn.Module, int]:
    """(module, output channels) of teacher family ``name``'s layers from the input to
    ``stride``."""
    from hecsb_ros.core.teachers.registry import get_teacher

    teacher = get_teacher(name)
    if teacher.stem is None:
        raise ValueError(f"teacher {name!r} has no stem to start an edge encoder with")
    return teacher.stem(tuple(input_size), stride)


def stem_free_dict(config) -> dict:
    """``asdict(config)`` without the stem fields when it has no stem: configs from before the stem
    existed read and hash as they did (the shipped checkpoints' model ids stay)."""
    d = asdict(config)
    if not config.stem:
        del d["stem"], d["stem_stride"]
    return d


def check_stem_stride(stride: int) -> None:
    if stride < 2 or stride & (stride - 1):
        raise ValueError(f"stem_stride must be a power of 2, not {stride}")


def load_stem_(
    stem: nn.Module, head: nn.Module, name: str, log: Callable[[str], None] = print
) -> int:
    """Copy the weights of the trained teacher ``head`` into ``stem`` (the tensors they share by
    name); returns how many were copied. ValueError when none match (a stem of another teacher)."""
    own = stem.state_dict()
    shared = {k: v for k, v in head.state_dict().items() if k in own and own[k].shape == v.shape}
    if not shared:
        raise ValueError(f"the teacher's head shares no weights with the {name} stem")
    stem.load_state_dict(shared, strict=False)
    log(
        f"the encoder starts with {name}'s first layers ({len(shared)} of {len(own)} tensors from "
        "the teacher)"
    )
    return len(shared)


class StemFirst:
    """:meth:`stem` and :meth:`encode_after_stem` of a model whose edge encoder is an
    ``nn.Sequential`` (the attribute named ``encoder_attr``) that begins with the stem when
    ``config.stem`` is set."""

    encoder_attr = "encoder"

    def stem(self) -> nn.Module | None:
        return getattr(self, self.encoder_attr)[0] if self.config.stem else None

    def encode_after_stem(self, s):
        if not self.config.stem:
            raise NotImplementedError(f"this {type(self).__name__} has no stem")
        return getattr(self, self.encoder_attr)[1:](s)
