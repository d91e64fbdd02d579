"""Command-line options shared by the training tools."""
from __future__ import annotations

import argparse

import torch

from hecsb_ros.core.training import resolve_device


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_device_options(p: argparse.ArgumentParser, budget_help: str) -> None:
    """``--device`` (parsed to a :class:`torch.device`) and ``--budget-min`` (minutes per level)."""
    p.add_argument("--device", type=_device, default=torch.device("cpu"),
                   help="'cpu', 'cuda' or 'auto' (training only; evaluation runs on the CPU)")
    p.add_argument("--budget-min", type=float, default=None,
                   help="fit each level's training into about this many minutes on this machine: step times "
                        f"are measured first and the epochs scaled ({budget_help}); the manifest records them")
