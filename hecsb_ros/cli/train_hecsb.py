"""Train HECS-B bottlenecks (one per rate level) for a frozen teacher, and save them with
manifests.

Fashion-MNIST, the shipped teacher, five rate levels::

    python -m hecsb_ros.cli.train_hecsb --beta 1e-4 3e-5 1.5e-5 8e-6 4e-6 --threads 1

ImageNet-style folder with local torchvision ResNet-50 weights::

    python -m hecsb_ros.cli.train_hecsb --data imagenet-folder /data/imagenet/train \
        --resnet50-weights resnet50.pth --beta 1e-5 --out runs/hecsb

The light edge head (codec ``hecsb_light``, docs/light_head.md): the teacher's layers to stride 2
and
depthwise-separable convolutions instead of its layers to the split, e.g.::

    python -m hecsb_ros.cli.train_hecsb --head light --teacher efficientnet_lite0 --beta 3e-4 1e-4
    3e-5 \
        --data pool /work/data/photos/* --test-list labels.csv --budget-min 60 --resume --ledger
        ledger.csv

Rate level 0 is the largest beta (fewest bytes) unless ``--levels`` says otherwise. Each level gets
``{prefix}_r{LEVEL}.safetensors`` and ``{prefix}_r{LEVEL}.json`` (prefix ``hecsb_{tag}``, the
teacher's tag: ``hecsb_fmnist``, ``hecsb_resnet50``, ...; ``hecsb_light_{tag}`` for the light head)
(beta, test accuracy, mean payload bytes measured with the real entropy coder, model id).
``--resume`` continues an interrupted run from the ``.train_state.pt`` files written after every
epoch.
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
from hecsb_ros.core.training.config import HecsbOptions
from hecsb_ros.core.training.levels import train_levels

PROG = "hecsb train hecsb"  # the parser's prog, for usage errors
#: --head -> the learned model kind (and codec) it trains
HEADS = {"standard": "hecsb", "light": "hecsb_light"}
#: HecsbOptions fields this command does not offer (their defaults hold)
NOT_OFFERED = ("aux_lr",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hecsb train hecsb", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--beta", type=float, nargs="+", required=True, help="rate weights, one level each"
    )
    p.add_argument("--levels", type=int, nargs="+", default=None, help="rate level of each beta")
    p.add_argument(
        "--head",
        choices=sorted(HEADS),
        default="standard",
        help="edge head: 'standard' (f_psi per HECSB_ARCH[tag]; codec hecsb) or "
        "'light' (the teacher's "
        "layers to stride 2 and depthwise-separable convolutions, "
        "HECSB_ARCH[tag_light]; codec "
        "hecsb_light, checkpoints hecsb_light_{tag}_rN)",
    )
    p.add_argument("--stage1-epochs", type=int, default=1)
    p.add_argument("--stage2-epochs", type=int, default=5)
    p.add_argument(
        "--freeze-encoder", action="store_true", help="stage 2 trains only the decoder g_phi"
    )
    p.add_argument(
        "--freeze-stem",
        action="store_true",
        help="camera scale: f_psi's teacher layers (to the split) keep the teacher's "
        "weights and "
        "training reads the cached split features (--data photos) instead of "
        "running them; "
        "W, the prior and g_phi train, and a CPU budget buys many more steps",
    )
    p.add_argument(
        "--stage2-rate-weight",
        type=float,
        default=100.0,
        help="stage 2 adds weight * beta * rate when the encoder trains (0: plain eq. "
        "11); the KD "
        "loss per image is far more sensitive to the latent than the per-element "
        "feature "
        "error of stage 1, hence the large default",
    )
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--tau", type=float, default=4.0)
    p.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="stage 2 keeps a moving average of the weights with this decay (e.g. "
        "0.999) and saves it "
        "(0: off)",
    )
    p.add_argument(
        "--mixup",
        type=float,
        default=0.0,
        help="fraction of stage-2 batches whose images are mixed pairwise (lam ~ U(0, "
        "1)); the "
        "student matches the teacher on the mixed images (0: off)",
    )
    p.add_argument(
        "--train-tail",
        action="store_true",
        help="stage 2 fine-tunes the teacher's tail too (the paper's 'all remaining "
        "layers'); the "
        "checkpoint then carries that tail and the server runs it",
    )
    p.add_argument(
        "--tail-lr-scale",
        type=float,
        default=1.0,
        help="with --train-tail: the tail's learning rate as a multiple of --lr2",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr1", type=float, default=4e-3)
    p.add_argument("--lr2", type=float, default=2e-3)
    p.add_argument(
        "--measurements", type=int, default=None, help="m, measurements per latent position"
    )
    p.add_argument(
        "--acq-channels", type=int, nargs="+", default=None, help="widths of f_psi (last = l)"
    )
    p.add_argument("--decoder-channels", type=int, default=None, help="width of the decoder g_phi")
    p.add_argument(
        "--decoder-blocks",
        type=int,
        default=None,
        help="residual blocks of g_phi at the feature resolution (server side only)",
    )
    p.add_argument("--max-norm", type=float, default=0.0, help="k of ||W||_F <= k (0: sqrt(l))")
    add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    add_device_options(p, "keeping the stage-1:stage-2 ratio")
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--init",
        type=Path,
        nargs="+",
        default=None,
        help="start from these bottleneck checkpoints (one per --beta) instead of from "
        "scratch, "
        "e.g. to continue stage 2 with --stage1-epochs 0; with --decoder-channels "
        "or "
        "--decoder-blocks other than the checkpoint's, only its encoder and prior "
        "are kept "
        "and a new decoder is trained behind them; with a larger --measurements, "
        "the "
        "trained model gets new rows of W (HecsbBottleneck.grown); with wider "
        "--acq-channels, f_psi "
        "is widened without changing the latent (HecsbBottleneck.widened)",
    )
    p.add_argument(
        "--prefix",
        default=None,
        help="checkpoint file prefix (default: hecsb_{teacher tag}, "
        "hecsb_light_{teacher tag} with --head light)",
    )
    p.add_argument(
        "--out", type=Path, default=CHECKPOINT_DIR, help="folder for checkpoints and manifests"
    )
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    command = "python -m hecsb_ros.cli.train_hecsb " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    try:
        options = recipe_options(HecsbOptions, args, absent=NOT_OFFERED)
        augment = Augment(pad=2, hflip=True)
        train_levels(
            training_run(args, HEADS[args.head], args.beta, options, augment, command, args.prefix)
        )
    except ValueError as exc:
        return usage_error(PROG, exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
