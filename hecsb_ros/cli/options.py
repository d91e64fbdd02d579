"""Command-line options shared by the training tools: device and time budget, data and teacher."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hecsb_ros.core.models import Classifier, load_classifier, load_resnet50
from hecsb_ros.core.training import Augment, resolve_device
from hecsb_ros.core.training.data import FolderSource, TensorSource, fashion_mnist_source


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


def add_data_options(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--val-folder``, ``--teacher``, ``--resnet50-weights``, ``--limit-train/test``."""
    p.add_argument("--data", nargs="+", default=["fashion-mnist"],
                   help="'fashion-mnist' or 'imagenet-folder PATH' (train folder)")
    p.add_argument("--val-folder", type=Path, default=None, help="imagenet-folder: evaluation folder")
    p.add_argument("--teacher", type=Path, default=None, help="classifier checkpoint (default: shipped)")
    p.add_argument("--resnet50-weights", type=Path, default=None, help="local torchvision ResNet-50 weights")
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-test", type=int, default=None)


def load_teacher(args: argparse.Namespace) -> Classifier:
    """The frozen teacher the options name: ResNet-50 weights, a classifier checkpoint or the shipped one."""
    if args.resnet50_weights is not None:
        return load_resnet50(args.resnet50_weights)
    if args.data[0] == "imagenet-folder" and args.teacher is None:
        raise SystemExit("imagenet-folder needs --resnet50-weights PATH (a local torchvision state dict)")
    return load_classifier(args.teacher)


def data_sources(args: argparse.Namespace, teacher: Classifier, augment: Augment | None,
                 val_images: int = 0) -> tuple[TensorSource | FolderSource, TensorSource | FolderSource,
                                               TensorSource | None]:
    """(train, test, held-out) sources for ``--data``; ``augment`` applies to in-memory training images
    (folder images get a random crop and flip), ``val_images`` Fashion-MNIST images are held out.
    A folder test set is read batch by batch (its ``x`` is lazy), never held in memory whole."""
    kind = args.data[0]
    if kind == "fashion-mnist" and len(args.data) == 1:
        train = fashion_mnist_source("train", teacher.spec, args.limit_train, augment)
        test = fashion_mnist_source("test", teacher.spec, args.limit_test)
        train, val = hold_out(train, val_images)
        return train, test, val
    if kind == "imagenet-folder" and len(args.data) == 2:
        if val_images:
            raise SystemExit("--val-images is for fashion-mnist; an imagenet-folder run has --val-folder")
        train = FolderSource(args.data[1], teacher.spec, args.limit_train)
        test = FolderSource(args.val_folder or args.data[1], teacher.spec, args.limit_test)  # read lazily
        return train, test, None
    raise SystemExit(f"--data must be 'fashion-mnist' or 'imagenet-folder PATH', not {' '.join(args.data)}")


def hold_out(train: TensorSource, n: int, seed: int = 20240601) -> tuple[TensorSource, TensorSource | None]:
    """Split ``n`` images off ``train`` (a subset fixed by ``seed``, not by ``--seed``): ``(rest, held out)``."""
    if n <= 0:
        return train, None
    if n >= len(train):
        raise SystemExit(f"--val-images {n} leaves no training images (there are {len(train)})")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    rest, val = order[:-n].sort().values, order[-n:].sort().values
    return TensorSource(train.x[rest], train.y[rest], train.augment), TensorSource(train.x[val], train.y[val])
