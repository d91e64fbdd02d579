"""Command-line options shared by the training tools (device and time budget, data and teacher) and
the training loop they share (:func:`train_levels`)."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hecsb_ros.core.store import prefix_level_path
from hecsb_ros.core.teachers import Classifier, load_teacher
from hecsb_ros.core.training import Augment, evaluate, resolve_device, set_seed
from hecsb_ros.core.training.data import FolderSource, TensorSource, fashion_mnist_source
from hecsb_ros.core.training.photos import ImageList, PhotoCrops
from hecsb_ros.core.training.pool import PhotoPool
from hecsb_ros.core.training.evaluation import val_accuracy
from hecsb_ros.core.training.recipes import TrainJob, get_recipe, level_order, train_level


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
                   help="fit each level's training into about this many minutes on this machine (on a CPU, "
                        "minutes of this process's CPU time, i.e. core-minutes, whatever else runs; on a GPU, "
                        f"wall minutes): step times are measured first and the epochs scaled ({budget_help}); "
                        "the manifest records them")
    p.add_argument("--epoch-max-min", type=float, default=None,
                   help="with --budget-min: split epochs longer than this many minutes into shorter ones (same "
                        "steps; with --resume the state is saved after each, so a stopped run loses at most this)")
    p.add_argument("--ledger", type=Path, default=None,
                   help="append one row per trained level to this CSV: core-hours, device minutes, samples seen, "
                        "pool version, commit, accuracy and bytes (the training ledger)")
    p.add_argument("--refit-prior", action=argparse.BooleanOptionalAction, default=None,
                   help="after training, fit the factorized prior of the latent (HECS-B, SVB, factorized) to "
                        "the latents of 256 training images, the rounding grid kept (default: on)")


def add_data_options(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--val-folder``, ``--test-list``, ``--teacher``, ``--resnet50-weights``, held-out
    images, photo crops and their cache, ``--limit-train/test``."""
    p.add_argument("--data", nargs="+", default=["fashion-mnist"],
                   help="'fashion-mnist', 'imagenet-folder PATH' (a labelled train folder), 'photos PATH [PATH ...]' "
                        "(image folders and video files, no labels: distil from the teacher's outputs on fixed "
                        "crops, cached) or 'pool PATH [PATH ...]' (the same, a fresh random view per draw with "
                        "the teacher run on it: for long runs on large pools)")
    p.add_argument("--val-folder", type=Path, default=None, help="imagenet-folder: evaluation folder")
    p.add_argument("--test-list", type=Path, default=None,
                   help="photos: evaluation images, a CSV of file,class_index (paths relative to it; -1 = no label)")
    p.add_argument("--val-images", type=int, default=0,
                   help="hold out this many training images (photos: whole photos) and report the accuracy on them "
                        "(photos: agreement with the teacher), to choose levels without the test set")
    p.add_argument("--crops", type=int, default=2, help="photos: random resized crops per photo")
    p.add_argument("--video-every", type=int, default=10, help="photos: use every k-th frame of a video")
    p.add_argument("--cache", type=Path, default=Path("runs/cache"),
                   help="photos: folder of the crops and the teacher's outputs on them (made once)")
    p.add_argument("--teacher", default=None,
                   help="teacher: a registered name (fmnist_resnet, resnet50:PATH, ...), a classifier checkpoint "
                        "or a weights file (default: the shipped Fashion-MNIST teacher)")
    p.add_argument("--resnet50-weights", type=Path, default=None, help="local torchvision ResNet-50 weights")
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-test", type=int, default=None)


def teacher_from_args(args: argparse.Namespace) -> Classifier:
    """The frozen teacher the options name: ResNet-50 weights, a teacher setting or the shipped one."""
    if args.resnet50_weights is not None:
        return load_teacher(f"resnet50:{args.resnet50_weights}")
    if args.data[0] == "imagenet-folder" and args.teacher is None:
        raise SystemExit("imagenet-folder needs --teacher (e.g. resnet50:PATH) or --resnet50-weights PATH")
    return load_teacher(args.teacher)


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
            raise SystemExit("--val-images is for fashion-mnist and photos; an imagenet-folder run has --val-folder")
        train = FolderSource(args.data[1], teacher.spec, args.limit_train)
        test = FolderSource(args.val_folder or args.data[1], teacher.spec, args.limit_test)  # read lazily
        return train, test, None
    if kind == "photos" and len(args.data) >= 2:
        if args.test_list is None:
            raise SystemExit("--data photos needs --test-list CSV (file,class_index) for the evaluation images")
        crops = PhotoCrops(args.data[1:], teacher, args.cache, args.crops, args.video_every, args.seed,
                           progress=not getattr(args, "no_progress", False))
        train, val = crops.split(val_images)
        if args.limit_train:
            train = train.first(args.limit_train)
        return train, ImageList(args.test_list, teacher.spec, labelled_only=True, limit=args.limit_test), val
    if kind == "pool" and len(args.data) >= 2:
        if args.test_list is None:
            raise SystemExit("--data pool needs --test-list CSV (file,class_index) for the evaluation images")
        train, val = pool_split(args, teacher, val_images)
        if args.limit_train:
            train = train.first(args.limit_train)
        return train, ImageList(args.test_list, teacher.spec, labelled_only=True, limit=args.limit_test), val
    raise SystemExit(f"--data must be 'fashion-mnist', 'imagenet-folder PATH', 'photos PATH ...' or 'pool PATH ...', "
                     f"not {' '.join(args.data)}")


def pool_split(args: argparse.Namespace, teacher: Classifier, val_images: int,
               batch_size: int = 32) -> tuple[PhotoPool, PhotoCrops | None]:
    """(training pool, held-out views) of ``--data pool PATH ...``: ``val_images`` whole photos are held
    out (the same ones for every run on the same pool) and seen as ``--crops`` fixed crops each, with the
    teacher's outputs cached (:class:`PhotoCrops`), to compare runs and choose levels."""
    pool = PhotoPool(args.data[1:], teacher.spec, frames_dir=args.cache / "frames", video_every=args.video_every)
    train, held = pool.split(val_images)
    val = (PhotoCrops(held, teacher, args.cache, args.crops, args.video_every, args.seed, batch_size=batch_size,
                      progress=not getattr(args, "no_progress", False)) if held else None)
    parts = ", ".join(f"{k} {v}" for k, v in train.composition().items())
    print(f"pool {pool.version}: {len(train)} photos for training ({parts}), {len(held)} held out", flush=True)
    return train, val


def hold_out(train: TensorSource, n: int, seed: int = 20240601) -> tuple[TensorSource, TensorSource | None]:
    """Split ``n`` images off ``train`` (a subset fixed by ``seed``, not by ``--seed``): ``(rest, held out)``."""
    if n <= 0:
        return train, None
    if n >= len(train):
        raise SystemExit(f"--val-images {n} leaves no training images (there are {len(train)})")
    rest, val = held_out_indices(len(train), n, seed)
    return TensorSource(train.x[rest], train.y[rest], train.augment), TensorSource(train.x[val], train.y[val])


def held_out_indices(total: int, n: int, seed: int = 20240601) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rest, held out)``: the sorted indices :func:`hold_out` splits ``total`` images into."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:-n].sort().values, order[-n:].sort().values


def train_levels(args: argparse.Namespace, kind: str, values: list[float], augment: Augment | None, command: str,
                 prefix: str | None = None) -> list[dict]:
    """Train one rate level of ``kind`` per value with its recipe, as the options say; returns the manifests.

    Checkpoints are ``{prefix}_r{LEVEL}.safetensors`` in ``--out`` (default prefix: ``{kind}_{tag}``);
    with ``--resume`` in the options, training state is written after every epoch and an
    interrupted run continues from it.
    """
    teacher = teacher_from_args(args)
    train, test, val = data_sources(args, teacher, augment, args.val_images)
    recipe = get_recipe(kind)
    levels = args.levels or level_order(recipe, values)
    if len(levels) != len(values) or len(set(levels)) != len(levels):
        raise SystemExit(f"--levels needs one distinct level per --{recipe.setting}")
    if args.init and len(args.init) != len(values):
        raise SystemExit(f"--init needs one checkpoint per --{recipe.setting}")
    inits = dict(zip(levels, args.init)) if args.init else {}
    teacher_acc = evaluate(teacher.model, test.x, test.y)
    print(f"teacher {teacher.model_id}: test accuracy {teacher_acc:.4f} on {len(test)} images", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    resumable = getattr(args, "resume", None) is not None
    manifests = []
    for value, level in sorted(zip(values, levels), key=lambda t: t[1]):
        set_seed(args.seed)
        path = prefix_level_path(prefix or f"{kind}_{teacher.tag}", level, args.out)
        state_path = path.with_suffix(".train_state.pt") if resumable else None
        if val is not None and level in inits:
            print(f"level {level}: {inits[level]} has accuracy {val_accuracy(inits[level], teacher, val):.4f} "
                  f"on {len(val)} held-out training images", flush=True)
        job = TrainJob(kind, value, level, teacher, train, args, inits.get(level), args.device,
                       not args.no_progress, state_path, bool(getattr(args, "resume", False)))
        m = train_level(job, path, test, teacher_acc, command, val)
        if state_path is not None:
            state_path.unlink(missing_ok=True)
        held_out = f", {m['val_accuracy']:.4f} on {m['val_images']} held-out training images" if val is not None else ""
        print(f"{kind} level {level} ({recipe.setting} {value:g}): accuracy {m['test_accuracy']:.4f} (teacher "
              f"{teacher_acc:.4f}){held_out}, {m['mean_payload_bytes']:.2f} B/image, {m['train_minutes']} min, "
              f"model id {m['model_id']}", flush=True)
        if getattr(args, "ledger", None) is not None:
            append_ledger(args.ledger, m, inits.get(level))
        manifests.append(m)
    return manifests


LEDGER_FIELDS = ("finished", "kind", "rate_level", "setting", "value", "init", "core_hours", "device_minutes",
                 "samples_seen", "train_pool", "teacher_classes_seen", "val_accuracy", "test_accuracy",
                 "mean_payload_bytes", "commit")


def _commit() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def append_ledger(path: Path, manifest: dict, init: Path | None) -> None:
    """Append the training ledger's row of one trained level (``LEDGER_FIELDS``) to the CSV ``path``."""
    import csv
    import datetime

    setting = get_recipe(manifest["kind"]).setting
    row = {"finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
           "kind": manifest["kind"], "rate_level": manifest["rate_level"], "setting": setting,
           "value": manifest.get(setting), "init": init.name if init else "", "commit": _commit(),
           **{k: manifest.get(k, "") for k in LEDGER_FIELDS[6:-1]}}
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LEDGER_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
