"""Train the learned baselines (SVB, CR+BQ, factorized prior, mean-scale hyperprior), one
checkpoint and manifest per rate level, against a frozen teacher: by default the shipped one on the
Fashion-MNIST training images.

    python -m hecsb_ros.cli.train_baselines svb --beta 0.02 0.005 0.002 0.0005
    python -m hecsb_ros.cli.train_baselines crbq --channels 1 2 4 8
    python -m hecsb_ros.cli.train_baselines factorized --lmbda 0.002 0.008 0.032 0.128
    python -m hecsb_ros.cli.train_baselines hyperprior --lmbda 0.002 0.008 0.032 0.128

ImageNet-style folder with local torchvision ResNet-50 weights (the same options as train_hecsb)::

    python -m hecsb_ros.cli.train_baselines svb --beta 1e-3 --data imagenet-folder
    /data/imagenet/train \
        --val-folder /data/imagenet/val --resnet50-weights resnet50.pth --out runs/baselines
        --device cuda

Rate level 0 is the fewest bytes (largest beta, fewest channels, smallest lambda). Each level is
trained with its kind's recipe (:mod:`hecsb_ros.core.training.recipes`), evaluated on the test
images through the real payload bytes (edge encode, server decode) and written as
``{kind}_{tag}_r{LEVEL}.safetensors`` plus ``.json`` (``tag`` the teacher's: ``fmnist``,
``resnet50``, ...), in ``hecsb_ros/checkpoints`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from hecsb_ros.cli.options import (
    add_data_options,
    add_device_options,
    recipe_options,
    training_run,
    usage_error,
)
from hecsb_ros.core.store import CHECKPOINT_DIR
from hecsb_ros.core.training import Augment, set_threads
from hecsb_ros.core.training.config import CrbqOptions, RdOptions, SvbOptions
from hecsb_ros.core.training.levels import train_levels

PROG = "hecsb train baselines"  # the parser's prog, for usage errors
KINDS = ("svb", "crbq", "factorized", "hyperprior")
#: the command-line option carrying each kind's rate values
SETTING_OPTION = {"svb": "beta", "crbq": "channels", "factorized": "lmbda", "hyperprior": "lmbda"}
#: each kind's options, and the fields of them this command does not offer (their defaults hold)
OPTIONS = {
    "svb": (SvbOptions, ("aux_lr", "tau", "freeze_encoder")),
    "crbq": (CrbqOptions, ()),
    "factorized": (RdOptions, ()),
    "hyperprior": (RdOptions, ()),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hecsb train baselines", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=KINDS)
    p.add_argument(
        "--beta", type=float, nargs="+", help="svb: rate weights (eq. 14), one level each"
    )
    p.add_argument(
        "--channels", type=int, nargs="+", help="crbq: bottleneck channels, one level each"
    )
    p.add_argument(
        "--lmbda", type=float, nargs="+", help="factorized/hyperprior: lambda, one level each"
    )
    p.add_argument(
        "--levels", type=int, nargs="+", default=None, help="rate level of each setting"
    )
    p.add_argument(
        "--latent-channels", type=int, default=12, help="svb: N of the Entropic Student"
    )
    p.add_argument("--N", type=int, default=32, help="factorized/hyperprior: N")
    p.add_argument("--M", type=int, default=32, help="factorized/hyperprior: M")
    p.add_argument(
        "--stem",
        action="store_true",
        help="svb, crbq: the encoder starts with the teacher's own layers to the "
        "split, initialised "
        "from its weights, as HECS-B's f_psi at camera scale (the teacher family "
        "needs a stem)",
    )
    p.add_argument(
        "--freeze-stem",
        action="store_true",
        help="svb, crbq with --stem: the teacher's layers keep its weights; training "
        "reads the cached "
        "split features (--data photos) instead of running them, so a CPU budget "
        "buys more steps",
    )
    p.add_argument(
        "--patch",
        type=int,
        default=None,
        help="factorized/hyperprior: train on one random PATCH x PATCH square per "
        "image (a multiple "
        "of 64), as CompressAI models are trained: more steps in the same minutes",
    )
    p.add_argument(
        "--stage1-epochs", type=int, default=3, help="svb: head distillation epochs (eq. 14)"
    )
    p.add_argument(
        "--stage2-epochs", type=int, default=2, help="svb: KD fine-tuning epochs (eq. 10-12)"
    )
    p.add_argument("--lr1", type=float, default=2e-3, help="svb: stage-1 learning rate")
    p.add_argument("--lr2", type=float, default=5e-4, help="svb: stage-2 learning rate")
    p.add_argument(
        "--stage2-rate-weight",
        type=float,
        default=1.0,
        help="svb: weight * beta * rate kept in stage 2 (as train_hecsb)",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="svb: stage 2 keeps a moving average of the weights with this decay and "
        "saves it (0: off)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="svb: stage-2 weight of the KD term against the label term (eq. 10-12), "
        "as train_hecsb",
    )
    p.add_argument(
        "--train-tail",
        action="store_true",
        help="svb: stage 2 fine-tunes the teacher's tail too (shipped in the "
        "checkpoint), as train_hecsb",
    )
    p.add_argument(
        "--tail-lr-scale",
        type=float,
        default=1.0,
        help="svb: with --train-tail, the tail's lr / --lr2",
    )
    p.add_argument(
        "--init",
        type=Path,
        nargs="+",
        default=None,
        help="svb: start from these checkpoints (one per --beta) instead of from "
        "scratch, e.g. to "
        "continue stage 2 with --stage1-epochs 0; the manifest records the "
        "earlier training",
    )
    p.add_argument("--epochs", type=int, default=4, help="crbq / neural codecs: training epochs")
    p.add_argument("--batch-size", type=int, default=64)
    add_device_options(p, "svb keeps the stage-1:stage-2 ratio")
    add_data_options(p)
    p.add_argument(
        "--mixup",
        type=float,
        default=0.0,
        help="svb: fraction of stage-2 batches whose images are mixed pairwise (the "
        "teacher is run on "
        "the mixed images; 0: off)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="svb: write training state after every epoch and continue an interrupted run from it",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = SETTING_OPTION[args.kind]
    values = getattr(args, name)
    if not values:
        return usage_error(PROG, f"{args.kind} needs --{name}")
    set_threads(args.threads)
    augment = Augment(pad=2, hflip=True) if args.kind in ("svb", "crbq") else None
    command = "python -m hecsb_ros.cli.train_baselines " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    cls, not_offered = OPTIONS[args.kind]
    try:
        options = recipe_options(cls, args, absent=not_offered)
        train_levels(training_run(args, args.kind, values, options, augment, command))
    except ValueError as exc:
        return usage_error(PROG, exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
