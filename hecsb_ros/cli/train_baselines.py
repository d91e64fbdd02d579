"""Train the learned baselines (SVB, CR+BQ, factorized prior, mean-scale hyperprior), one checkpoint
and manifest per rate level, against a frozen teacher: by default the shipped one on the
Fashion-MNIST training images.

    python -m hecsb_ros.cli.train_baselines svb --beta 0.02 0.005 0.002 0.0005
    python -m hecsb_ros.cli.train_baselines crbq --channels 1 2 4 8
    python -m hecsb_ros.cli.train_baselines factorized --lmbda 0.002 0.008 0.032 0.128
    python -m hecsb_ros.cli.train_baselines hyperprior --lmbda 0.002 0.008 0.032 0.128

ImageNet-style folder with local torchvision ResNet-50 weights (the same options as train_hecsb)::

    python -m hecsb_ros.cli.train_baselines svb --beta 1e-3 --data imagenet-folder /data/imagenet/train \
        --val-folder /data/imagenet/val --resnet50-weights resnet50.pth --out runs/baselines --device cuda

Rate level 0 is the fewest bytes (largest beta, fewest channels, smallest lambda). Each level is
evaluated on the test images through the real payload bytes (edge encode, server decode) and
written as ``{kind}_fmnist_r{LEVEL}.safetensors`` (``{kind}_resnet50_r{LEVEL}`` for a ResNet-50
teacher) plus ``.json``, in ``hecsb_ros/checkpoints`` unless ``--out`` says otherwise.
"""
from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hecsb_ros.core.baselines import checkpoint as ckpt
from hecsb_ros.core.models import CHECKPOINT_DIR, Classifier, model_id_of
from hecsb_ros.cli.options import add_data_options, add_device_options, data_sources, load_teacher
from hecsb_ros.core.training import Augment, accuracy, epochs_for_budget, evaluate, seconds_per_step, set_seed, set_threads
from hecsb_ros.core.training.data import PixelSource


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=ckpt.KINDS)
    p.add_argument("--beta", type=float, nargs="+", help="svb: rate weights (eq. 14), one level each")
    p.add_argument("--channels", type=int, nargs="+", help="crbq: bottleneck channels, one level each")
    p.add_argument("--lmbda", type=float, nargs="+", help="factorized/hyperprior: lambda, one level each")
    p.add_argument("--levels", type=int, nargs="+", default=None, help="rate level of each setting")
    p.add_argument("--latent-channels", type=int, default=12, help="svb: N of the Entropic Student")
    p.add_argument("--N", type=int, default=32, help="factorized/hyperprior: N")
    p.add_argument("--M", type=int, default=32, help="factorized/hyperprior: M")
    p.add_argument("--stage1-epochs", type=int, default=3, help="svb: head distillation epochs (eq. 14)")
    p.add_argument("--stage2-epochs", type=int, default=2, help="svb: KD fine-tuning epochs (eq. 10-12)")
    p.add_argument("--lr1", type=float, default=2e-3, help="svb: stage-1 learning rate")
    p.add_argument("--lr2", type=float, default=5e-4, help="svb: stage-2 learning rate")
    p.add_argument("--stage2-rate-weight", type=float, default=1.0,
                   help="svb: weight * beta * rate kept in stage 2 (as train_hecsb)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="svb: stage 2 keeps a moving average of the weights with this decay and saves it (0: off)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="svb: stage-2 weight of the KD term against the label term (eq. 10-12), as train_hecsb")
    p.add_argument("--train-tail", action="store_true",
                   help="svb: stage 2 fine-tunes the teacher's tail too (shipped in the checkpoint), as train_hecsb")
    p.add_argument("--tail-lr-scale", type=float, default=1.0, help="svb: with --train-tail, the tail's lr / --lr2")
    p.add_argument("--init", type=Path, nargs="+", default=None,
                   help="svb: start from these checkpoints (one per --beta) instead of from scratch, e.g. to "
                        "continue stage 2 with --stage1-epochs 0; the manifest records the earlier training")
    p.add_argument("--epochs", type=int, default=4, help="crbq / neural codecs: training epochs")
    p.add_argument("--batch-size", type=int, default=64)
    add_device_options(p, "svb keeps the stage-1:stage-2 ratio")
    add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _settings(args: argparse.Namespace) -> tuple[str, list[float], bool]:
    """(setting name, values, whether a larger value means more bytes)."""
    if args.kind == "svb":
        return "beta", args.beta, False
    if args.kind == "crbq":
        return "channels", args.channels, True
    return "lmbda", args.lmbda, True


def _levels(values: list[float], ascending_bytes: bool, given: list[int] | None) -> list[int]:
    if given:
        if len(given) != len(values) or len(set(given)) != len(given):
            raise SystemExit("--levels needs one distinct level per setting")
        return given
    order = np.argsort(np.asarray(values) * (1 if ascending_bytes else -1), kind="stable")
    return [int(r) for r in np.argsort(order)]


def evaluate_split(split, x: torch.Tensor, y: torch.Tensor, encode) -> tuple[float, np.ndarray]:
    """Accuracy from the server's decoding of every real payload, and payload sizes ``(N,)``."""
    payloads = []
    for i in range(0, len(x), 500):
        payloads += encode(x[i:i + 500])
    logits = torch.stack([split.decode(p) for p in payloads])
    return accuracy(logits, y), np.asarray([len(p) for p in payloads], dtype=np.float64)


def _quiet(_: str) -> None:
    pass


def _fit_and_train(args: argparse.Namespace, train_fn, model: torch.nn.Module, train_images: int,
                   **kw) -> tuple[torch.nn.Module, int]:
    """Train ``model`` with ``train_fn`` (``head_distill`` or ``train_rd``) for ``--epochs``, or for
    the epochs that fit ``--budget-min`` given the step time measured on copies of the model."""
    epochs = args.epochs
    if args.budget_min:
        def run(n: int) -> None:
            train_fn(copy.deepcopy(model), epochs=n, progress=False, log=_quiet, max_steps=n, **kw)
        per_epoch = seconds_per_step(run, args.device) * (train_images // args.batch_size)
        epochs = epochs_for_budget(args.budget_min * 60, [per_epoch], [1])[0]
        print(f"budget {args.budget_min:g} min: {per_epoch:.1f} s per epoch -> {epochs} epochs", flush=True)
    return train_fn(model, epochs=epochs, progress=not args.no_progress, **kw), epochs


def _earlier_training(init: Path) -> list[dict]:
    """The training an initial checkpoint went through, from its manifest (earliest first)."""
    m = ckpt.read_manifest(init)
    return [*m.get("earlier_training", []),
            {k: m.get(k) for k in ("command", "distill", "test_accuracy", "mean_payload_bytes")}
            | {"model_id": model_id_of(init)}]


def train_one(args: argparse.Namespace, value: float, teacher: Classifier, train, test, path: Path,
              init: Path | None = None) -> dict:
    """Train one rate level (from ``init`` when given), save it, and return the manifest fields."""
    from hecsb_ros.core.training.distill import DistillConfig, Distiller

    facts: dict = {}
    if args.kind == "svb":
        from hecsb_ros.core.baselines.svb import SvbBottleneck, SvbSplit, load_svb, save_svb, svb_config_for
        from hecsb_ros.core.models.student_tail import load_tail

        cfg = DistillConfig(beta=value, stage1_epochs=args.stage1_epochs, stage2_epochs=args.stage2_epochs,
                            batch_size=args.batch_size, lr1=args.lr1, lr2=args.lr2,
                            stage2_rate_weight=args.stage2_rate_weight, seed=args.seed, ema=args.ema,
                            alpha=args.alpha, train_tail=args.train_tail, tail_lr_scale=args.tail_lr_scale)
        tail = None
        if init is not None:
            start, start_meta = load_svb(init)
            if start_meta.get("teacher_model_id") != teacher.model_id:
                raise SystemExit(f"{init} was trained for teacher {start_meta.get('teacher_model_id')}, "
                                 f"not {teacher.model_id}")
            config = start.config
            tail = load_tail(init, teacher.model.tail)  # a fine-tuned one, or the teacher's
            facts["earlier_training"] = _earlier_training(init)
            print(f"starting from {init} ({config})", flush=True)
        else:
            config = svb_config_for(teacher, args.latent_channels)
            start = SvbBottleneck(config)
        distiller = Distiller(start, teacher, train, cfg, None, progress=not args.no_progress, device=args.device,
                              tail=tail)
        if args.budget_min:
            cfg = distiller.fit_budget(args.budget_min)
        model = distiller.run()
        tail = distiller.tail
        facts = {"beta": value, "distill": cfg.__dict__, **facts,
                 "tail": "teacher" if tail is teacher.model.tail else "fine-tuned"}
        save_svb(path, model, teacher.model_id, facts, tail=None if tail is teacher.model.tail else tail)
        split = SvbSplit(path, teacher)
        encode = lambda xb: [split.entropy_encode(v) for v in split.latent(xb)]  # noqa: E731
    elif args.kind == "crbq":
        from hecsb_ros.core.baselines.crbq import CrbqBottleneck, CrbqSplit, crbq_config_for, head_distill, save_crbq

        config = crbq_config_for(teacher, int(value))
        model, epochs = _fit_and_train(args, head_distill, CrbqBottleneck(config), len(train), teacher=teacher,
                                       train=train, batch_size=args.batch_size, seed=args.seed, device=args.device)
        facts = {"channels": int(value), "epochs": epochs}
        save_crbq(path, model, teacher.model_id, facts)
        split = CrbqSplit(path, teacher)
        encode = split.encode
    else:
        from hecsb_ros.core.baselines.neural import NeuralConfig, NeuralInputSplit, build, save_neural, train_rd

        config = NeuralConfig(args.kind, args.N, args.M, teacher.spec.in_channels, tuple(teacher.spec.input_size))
        model, epochs = _fit_and_train(args, train_rd, build(config), len(train), config=config,
                                       images=PixelSource(train, teacher.spec), lmbda=value, batch_size=args.batch_size,
                                       seed=args.seed, device=args.device)
        facts = {"lmbda": value, "epochs": epochs}
        save_neural(path, model, config, teacher.model_id, facts)
        codec = NeuralInputSplit(path, args.kind, teacher)

        class _Server:  # server half: decode the image, run the whole teacher
            @staticmethod
            def decode(data: bytes) -> torch.Tensor:
                return codec.classify(codec.decode_pixels(data))[0]

        split = _Server
        encode = lambda xb: [codec.encode_pixels(px[None]) for px in codec.to_pixels(xb)]  # noqa: E731
    acc, sizes = evaluate_split(split, test.x, test.y, encode)
    return {**facts, "config": config.to_dict(), "test_accuracy": round(acc, 4),
            "mean_payload_bytes": round(float(sizes.mean()), 2), "p95_payload_bytes": float(np.percentile(sizes, 95))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name, values, ascending = _settings(args)
    if not values:
        raise SystemExit(f"{args.kind} needs --{name}")
    if args.init is not None and (args.kind != "svb" or len(args.init) != len(values)):
        raise SystemExit(f"--init takes one svb checkpoint per --{name} value ({len(values)})")
    inits = dict(zip(values, args.init or []))
    set_threads(args.threads)
    teacher = load_teacher(args)
    augment = Augment(pad=2, hflip=True) if args.kind in ("svb", "crbq") else None
    train, test, _ = data_sources(args, teacher, augment)
    dataset = "resnet50" if teacher.spec.backbone == "resnet50" else "fmnist"
    teacher_acc = evaluate(teacher.model, test.x, test.y)
    command = "python -m hecsb_ros.cli.train_baselines " + shlex.join(argv if argv is not None else sys.argv[1:])
    print(f"teacher {teacher.model_id}: {teacher_acc:.4f} on {len(test)} test images")
    args.out.mkdir(parents=True, exist_ok=True)
    for value, level in sorted(zip(values, _levels(values, ascending, args.levels)), key=lambda t: t[1]):
        set_seed(args.seed)
        path = ckpt.level_path(args.kind, level, args.out, dataset)
        start = time.time()
        fields = train_one(args, value, teacher, train, test, path, inits.get(value))
        fields = {"kind": args.kind, "rate_level": level, **fields, "teacher_accuracy": round(teacher_acc, 4),
                  "teacher_model_id": teacher.model_id, "test_images": len(test), "train_images": len(train),
                  "train_minutes": round((time.time() - start) / 60, 1), "torch_threads": torch.get_num_threads(),
                  "train_device": str(args.device),
                  "command": command}
        ckpt.write_manifest(path, fields)
        print(f"{args.kind} level {level} ({name} {value:g}): accuracy {fields['test_accuracy']:.4f} "
              f"(teacher {teacher_acc:.4f}), {fields['mean_payload_bytes']:.1f} B/image, "
              f"{fields['train_minutes']} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
