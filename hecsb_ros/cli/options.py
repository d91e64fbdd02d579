"""Command-line options shared by the training tools (device and time budget, data and teacher),
and their translation into the typed configuration of :mod:`hecsb_ros.core.training.config`: the
commands parse and print, the core trains (:func:`hecsb_ros.core.training.levels.train_levels`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Iterable, Sequence, TypeVar

import torch

from hecsb_ros.core.training import Augment, resolve_device
from hecsb_ros.core.training.config import DataOptions, TrainingOptions, TrainingRun

T = TypeVar("T", bound=TrainingOptions)


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_device_options(p: argparse.ArgumentParser, budget_help: str) -> None:
    """``--device`` (parsed to a :class:`torch.device`) and ``--budget-min`` (minutes per
    level)."""
    p.add_argument(
        "--device",
        type=_device,
        default=torch.device("cpu"),
        help="'cpu', 'cuda' or 'auto' (training only; evaluation runs on the CPU)",
    )
    p.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="fit each level's training into about this many minutes on this machine "
        "(on a CPU, "
        "minutes of this process's CPU time, i.e. core-minutes, whatever else "
        "runs; on a GPU, "
        "wall minutes): step times are measured first and the epochs scaled "
        f"({budget_help}); "
        "the manifest records them",
    )
    p.add_argument(
        "--epoch-max-min",
        type=float,
        default=None,
        help="with --budget-min: split epochs longer than this many minutes into "
        "shorter ones (same "
        "steps; with --resume the state is saved after each, so a stopped run "
        "loses at most this)",
    )
    p.add_argument(
        "--ledger",
        type=Path,
        default=None,
        help="append one row per trained level to this CSV: core-hours, device "
        "minutes, samples seen, "
        "pool version, commit, accuracy and bytes (the training ledger)",
    )
    p.add_argument(
        "--refit-prior",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after training, fit the factorized prior of the latent (HECS-B, SVB, "
        "factorized) to "
        "the latents of 256 training images, the rounding grid kept (default: on)",
    )


def add_data_options(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--val-folder``, ``--test-list``, ``--teacher``, ``--resnet50-weights``,
    held-out images, photo crops and their cache, ``--limit-train/test``."""
    p.add_argument(
        "--data",
        nargs="+",
        default=["fashion-mnist"],
        help="'fashion-mnist', 'imagenet-folder PATH' (a labelled train folder), "
        "'photos PATH [PATH ...]' "
        "(image folders and video files, no labels: distil from the teacher's "
        "outputs on fixed "
        "crops, cached) or 'pool PATH [PATH ...]' (the same, a fresh random view "
        "per draw with "
        "the teacher run on it: for long runs on large pools)",
    )
    p.add_argument(
        "--val-folder", type=Path, default=None, help="imagenet-folder: evaluation folder"
    )
    p.add_argument(
        "--test-list",
        type=Path,
        default=None,
        help="photos: evaluation images, a CSV of file,class_index (paths relative to "
        "it; -1 = no label)",
    )
    p.add_argument(
        "--val-images",
        type=int,
        default=0,
        help="hold out this many training images (photos: whole photos) and report the "
        "accuracy on them "
        "(photos: agreement with the teacher), to choose levels without the test "
        "set",
    )
    p.add_argument("--crops", type=int, default=2, help="photos: random resized crops per photo")
    p.add_argument(
        "--video-every", type=int, default=10, help="photos: use every k-th frame of a video"
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=Path("runs/cache"),
        help="photos: folder of the crops and the teacher's outputs on them (made once)",
    )
    p.add_argument(
        "--teacher",
        default=None,
        help="teacher: a registered name (fmnist_resnet, resnet50:PATH, ...), a "
        "classifier checkpoint "
        "or a weights file (default: the shipped Fashion-MNIST teacher)",
    )
    p.add_argument(
        "--resnet50-weights", type=Path, default=None, help="local torchvision ResNet-50 weights"
    )
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-test", type=int, default=None)


def data_options(args: argparse.Namespace) -> DataOptions:
    """The data options of :func:`add_data_options` (with ``--seed`` and ``--no-progress``)."""
    return DataOptions(
        data=tuple(args.data),
        val_folder=args.val_folder,
        test_list=args.test_list,
        val_images=args.val_images,
        crops=args.crops,
        video_every=args.video_every,
        cache=args.cache,
        teacher=args.teacher,
        resnet50_weights=args.resnet50_weights,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
        seed=args.seed,
        progress=not args.no_progress,
    )


def recipe_options(cls: type[T], args: argparse.Namespace, absent: Iterable[str] = ()) -> T:
    """A recipe's options ``cls`` from the parsed arguments of the same names (an argument left at
    None takes the field's default). Every field must be an argument of the command or be named in
    ``absent`` (what the command does not offer), so that no setting is dropped unnoticed."""
    names = [f.name for f in dataclasses.fields(cls)]
    given = vars(args)
    missing = [n for n in names if n not in given and n not in absent]
    if missing:
        raise TypeError(f"{cls.__name__}: the command has no argument for {missing}")
    return cls(**{n: given[n] for n in names if given.get(n) is not None})


def training_run(
    args: argparse.Namespace,
    kind: str,
    values: Sequence[float],
    options: TrainingOptions,
    augment: Augment | None,
    command: str,
    prefix: str | None = None,
) -> TrainingRun:
    """The run of a training command: ``--levels``, ``--init``, ``--out``, ``--resume``,
    ``--ledger``, ``--device`` and the data options around the recipe's ``options``."""
    return TrainingRun(
        kind,
        tuple(values),
        options,
        data_options(args),
        levels=args.levels,
        init=args.init,
        out=args.out,
        prefix=prefix,
        resume=args.resume,
        ledger=args.ledger,
        device=args.device,
        augment=augment,
        command=command,
    )


def usage_error(prog: str, exc: Exception | str) -> int:
    """Print what is wrong with a command's settings, as argparse does; returns exit status 2."""
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 2
