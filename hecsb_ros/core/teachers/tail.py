"""The classifier tail a split checkpoint may carry: the teacher's tail, fine-tuned in stage 2.

The seed paper's second training phase fine-tunes "the entire model, including the encoder,
decoder, and all remaining layers" (section 4.2). A bottleneck trained that way ships the tail it
was fine-tuned with, under the state-dict prefix :data:`TAIL_PREFIX`; the server then runs that
tail instead of the teacher's. A checkpoint without such keys uses the teacher's tail unchanged.
Either way the tail has the teacher's architecture, so the teacher (checked by its model id)
still defines it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


TAIL_PREFIX = "tail."


def tail_state(tail: nn.Module) -> dict[str, torch.Tensor]:
    """State of a fine-tuned tail, keys prefixed with :data:`TAIL_PREFIX`, on the CPU."""
    return {TAIL_PREFIX + k: v.detach().cpu().contiguous() for k, v in tail.state_dict().items()}


def split_tail_state(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``state`` -> (entries without the prefix, the tail's own state with the prefix removed)."""
    rest = {k: v for k, v in state.items() if not k.startswith(TAIL_PREFIX)}
    tail = {k[len(TAIL_PREFIX) :]: v for k, v in state.items() if k.startswith(TAIL_PREFIX)}
    return rest, tail


def build_tail(teacher_tail: nn.Module, state: dict[str, torch.Tensor] | None) -> nn.Module:
    """The tail to run: ``teacher_tail`` itself when ``state`` is empty, else a copy holding
    ``state``.

    Raises ValueError when ``state`` does not fit the teacher's tail (another architecture).
    """
    if not state:
        return teacher_tail
    tail = copy.deepcopy(teacher_tail)
    try:
        tail.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"the checkpoint's fine-tuned tail does not fit the teacher's tail: {exc}"
        ) from None
    for p in tail.parameters():
        p.requires_grad_(False)
    return tail.eval()
