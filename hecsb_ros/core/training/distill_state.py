"""What a distillation run carries from epoch to epoch and from process to process.

- the **work counters** (:func:`new_work`): CPU core-seconds (process CPU time, so the count is in
  core-seconds whatever the thread count), samples seen and, on a GPU, device seconds;
  :func:`work_facts` turns them into the training ledger's facts;
- the **moving average of the weights** (:class:`WeightAverage`, the ``ema`` option);
- the **resumable state** (:func:`save_state`, :func:`read_state`): after every epoch the
  bottleneck, the optimisers, the random state, the average, the counters and the configuration
  are written to one file, read back with ``torch.load(weights_only=True)``. A state is continued
  only under the configuration it was written with, less what a budget fit chose
  (:data:`SCHEDULED`): its epochs and epoch fraction are the state's.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from hecsb_ros.core.training.config import DistillConfig

#: Settings a budget fit chooses: a resumed run takes them from its state.
SCHEDULED = ("stage1_epochs", "stage2_epochs", "epoch_fraction")


def new_work() -> dict[str, float]:
    """Work counters at the start: CPU seconds, samples, device seconds."""
    return {"cpu_seconds": 0.0, "samples": 0, "device_seconds": 0.0}


def work_facts(work: dict[str, float], teacher_top1: torch.Tensor | None = None) -> dict[str, Any]:
    """The training ledger's facts of a run: core-hours (process CPU time), samples seen, device
    minutes (GPU), and how many of the teacher's classes its top-1 named on the training views."""
    facts: dict[str, Any] = {
        "core_hours": round(work["cpu_seconds"] / 3600, 3),
        "samples_seen": int(work["samples"]),
        "device_minutes": round(work.get("device_seconds", 0.0) / 60, 1),
    }
    if teacher_top1 is not None and int(teacher_top1.sum()) > 0:
        facts["teacher_classes_seen"] = int((teacher_top1 > 0).sum())
    return facts


class WeightAverage:
    """An exponential moving average (``decay``) of the floating-point entries of the state that
    ``state()`` returns (integer buffers, the CDF tables, are left alone). ``values`` is what the
    resumable state stores."""

    def __init__(
        self,
        state: Callable[[], dict[str, torch.Tensor]],
        decay: float,
        values: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.state, self.decay = state, decay
        self.values = (
            values
            if values is not None
            else {k: v.detach().clone() for k, v in state().items() if v.is_floating_point()}
        )

    @torch.no_grad()
    def step(self) -> None:
        state = self.state()
        for k, avg in self.values.items():
            avg.lerp_(state[k].detach(), 1.0 - self.decay)

    def apply(self) -> None:
        """Put the averaged weights into the model."""
        state = self.state()
        for k, avg in self.values.items():
            state[k].copy_(avg)


def save_state(
    path: Path,
    cfg: DistillConfig,
    epoch: int,
    model: dict,
    opt: dict,
    sched: dict,
    aux: dict,
    gen: torch.Generator,
    history: list[dict[str, float]],
    ema: dict[str, torch.Tensor] | None,
    work: dict[str, float],
    teacher_top1: torch.Tensor,
    tail: dict | None = None,
) -> None:
    """Write the state after ``epoch`` epochs (state dicts of the model, optimisers and scheduler,
    the random state, ...) to ``path`` atomically; ``tail``: a fine-tuned tail's state (the
    teacher's own tail is not saved)."""
    state = {
        "model": model,
        "opt": opt,
        "sched": sched,
        "aux": aux,
        "gen": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "epoch": epoch,
        "config": asdict(cfg),
        "history": history,
        "ema": ema,
        "work": dict(work),
        "teacher_top1": teacher_top1,
    }
    if tail is not None:
        state["tail"] = tail
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def read_state(path: Path, cfg: DistillConfig) -> tuple[dict[str, Any], DistillConfig] | None:
    """The state at ``path`` (None when there is none) and the configuration to continue with:
    ``cfg`` with the state's :data:`SCHEDULED` settings. Raises ValueError when the state was
    written with other settings than ``cfg``."""
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    mine = {k: v for k, v in asdict(cfg).items() if k not in SCHEDULED}
    theirs = {k: v for k, v in state["config"].items() if k not in SCHEDULED}
    if mine != theirs:
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
        raise ValueError(f"{path} was written with other settings (state, now): {diff}")
    return state, DistillConfig(**state["config"])
