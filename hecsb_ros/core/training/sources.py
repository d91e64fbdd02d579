"""The teacher and the image sources that :class:`~hecsb_ros.core.training.config.DataOptions`
name: training, test and held-out images for every data kind, split the same way by every
training run and by the level selection (``hecsb select``)."""

from __future__ import annotations

from typing import Callable

import torch

from hecsb_ros.core.teachers import Classifier, load_teacher
from hecsb_ros.core.training.common import Augment, print_flush
from hecsb_ros.core.training.config import DataOptions
from hecsb_ros.core.training.data import FolderSource, TensorSource, fashion_mnist_source
from hecsb_ros.core.training.photos import ImageList, PhotoCrops
from hecsb_ros.core.training.pool import PhotoPool

#: The seed that fixes which Fashion-MNIST training images are held out (not the run's seed).
HOLD_OUT_SEED = 20240601


def load_run_teacher(data: DataOptions) -> Classifier:
    """The frozen teacher the options name: ResNet-50 weights, a teacher setting or the shipped
    one."""
    if data.resnet50_weights is not None:
        return load_teacher(f"resnet50:{data.resnet50_weights}")
    if data.kind == "imagenet-folder" and data.teacher is None:
        raise ValueError(
            "imagenet-folder needs a teacher (e.g. resnet50:PATH) or ResNet-50 weights"
        )
    return load_teacher(data.teacher)


Sources = tuple[TensorSource | FolderSource, TensorSource | FolderSource, TensorSource | None]


def data_sources(
    data: DataOptions,
    teacher: Classifier,
    augment: Augment | None,
    log: Callable[[str], None] = print_flush,
) -> Sources:
    """(train, test, held-out) sources of ``data``; ``augment`` applies to in-memory training
    images (folder images get a random crop and flip), ``data.val_images`` images are held out. A
    folder test set is read batch by batch (its ``x`` is lazy), never held in memory whole."""
    if data.kind == "fashion-mnist":
        train = fashion_mnist_source("train", teacher.spec, data.limit_train, augment)
        test = fashion_mnist_source("test", teacher.spec, data.limit_test)
        train, val = hold_out(train, data.val_images)
        return train, test, val
    if data.kind == "imagenet-folder":
        train = FolderSource(data.paths[0], teacher.spec, data.limit_train)
        test = FolderSource(data.val_folder or data.paths[0], teacher.spec, data.limit_test)
        return train, test, None
    if data.test_list is None:
        raise ValueError(
            f"data {data.kind} needs a test list (a CSV of file,class_index) for the "
            "evaluation images"
        )
    if data.kind == "photos":
        crops = PhotoCrops(
            data.paths,
            teacher,
            data.cache,
            data.crops,
            data.video_every,
            data.seed,
            progress=data.progress,
        )
        train, val = crops.split(data.val_images)
    else:
        train, val = pool_split(data, teacher, log=log)
    if data.limit_train:
        train = train.first(data.limit_train)
    test = ImageList(data.test_list, teacher.spec, labelled_only=True, limit=data.limit_test)
    return train, test, val


def pool_split(
    data: DataOptions,
    teacher: Classifier,
    batch_size: int = 32,
    log: Callable[[str], None] = print_flush,
) -> tuple[PhotoPool, PhotoCrops | None]:
    """(training pool, held-out views) of a ``pool`` data set: ``data.val_images`` whole photos are
    held out (the same ones for every run on the same pool) and seen as ``data.crops`` fixed crops
    each, with the teacher's outputs cached (:class:`PhotoCrops`), to compare runs and choose
    levels."""
    pool = PhotoPool(
        data.paths, teacher.spec, frames_dir=data.cache / "frames", video_every=data.video_every
    )
    train, held = pool.split(data.val_images)
    val = (
        PhotoCrops(
            held,
            teacher,
            data.cache,
            data.crops,
            data.video_every,
            data.seed,
            batch_size=batch_size,
            progress=data.progress,
        )
        if held
        else None
    )
    parts = ", ".join(f"{k} {v}" for k, v in train.composition().items())
    log(f"pool {pool.version}: {len(train)} photos for training ({parts}), {len(held)} held out")
    return train, val


def hold_out(
    train: TensorSource, n: int, seed: int = HOLD_OUT_SEED
) -> tuple[TensorSource, TensorSource | None]:
    """Split ``n`` images off ``train`` (a subset fixed by ``seed``, not by the run's seed):
    ``(rest, held out)``."""
    if n <= 0:
        return train, None
    if n >= len(train):
        raise ValueError(
            f"holding out {n} images leaves no training images (there are {len(train)})"
        )
    rest, val = held_out_indices(len(train), n, seed)
    return (
        TensorSource(train.x[rest], train.y[rest], train.augment),
        TensorSource(train.x[val], train.y[val]),
    )


def held_out_indices(
    total: int, n: int, seed: int = HOLD_OUT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rest, held out)``: the sorted indices :func:`hold_out` splits ``total`` images into."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:-n].sort().values, order[-n:].sort().values
