"""Train HECS-B bottlenecks (one per rate level) for a frozen teacher, and save them with manifests.

Fashion-MNIST, the shipped teacher, five rate levels::

    python -m hecsb_ros.cli.train_hecsb --beta 1e-4 3e-5 1.5e-5 8e-6 4e-6 --threads 1

ImageNet-style folder with local torchvision ResNet-50 weights::

    python -m hecsb_ros.cli.train_hecsb --data imagenet-folder /data/imagenet/train \
        --resnet50-weights resnet50.pth --beta 1e-5 --prefix hecsb_resnet50 --out runs/hecsb

Rate level 0 is the largest beta (fewest bytes) unless ``--levels`` says otherwise. Each level
gets ``{prefix}_r{LEVEL}.safetensors`` and ``{prefix}_r{LEVEL}.json`` (beta, test accuracy, mean
payload bytes measured with the real entropy coder, model id). ``--resume`` continues an
interrupted run from the ``.train_state.pt`` files written after every epoch.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hecsb_ros.core.bottleneck.hecsb import DECODER_FIELDS
from hecsb_ros.core.bottleneck import HecsbBottleneck, HecsbConfig, HecsbSplit, load_bottleneck, save_bottleneck
from hecsb_ros.core.models.student_tail import load_tail
from hecsb_ros.core.models import CHECKPOINT_DIR, Classifier, model_id_of, sha256_of
from hecsb_ros.cli.options import add_data_options, add_device_options, data_sources, load_teacher
from hecsb_ros.core.training import Augment, accuracy, evaluate, set_seed, set_threads
from hecsb_ros.core.training.distill import DistillConfig, Distiller, rounded_rate_and_logits

FMNIST_ARCH = {"acq_channels": (16, 24), "measurements": 2, "decoder_channels": 128}
RESNET50_ARCH = {"acq_channels": (64, 96, 128), "measurements": 12, "decoder_channels": 256}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--beta", type=float, nargs="+", required=True, help="rate weights, one level each")
    p.add_argument("--levels", type=int, nargs="+", default=None, help="rate level of each beta")
    p.add_argument("--stage1-epochs", type=int, default=1)
    p.add_argument("--stage2-epochs", type=int, default=5)
    p.add_argument("--freeze-encoder", action="store_true", help="stage 2 trains only the decoder g_phi")
    p.add_argument("--stage2-rate-weight", type=float, default=100.0,
                   help="stage 2 adds weight * beta * rate when the encoder trains (0: plain eq. 11); the KD "
                        "loss per image is far more sensitive to the latent than the per-element feature "
                        "error of stage 1, hence the large default")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--tau", type=float, default=4.0)
    p.add_argument("--ema", type=float, default=0.0,
                   help="stage 2 keeps a moving average of the weights with this decay (e.g. 0.999) and saves it "
                        "(0: off)")
    p.add_argument("--mixup", type=float, default=0.0,
                   help="fraction of stage-2 batches whose images are mixed pairwise (lam ~ U(0, 1)); the "
                        "student matches the teacher on the mixed images (0: off)")
    p.add_argument("--train-tail", action="store_true",
                   help="stage 2 fine-tunes the teacher's tail too (the paper's 'all remaining layers'); the "
                        "checkpoint then carries that tail and the server runs it")
    p.add_argument("--tail-lr-scale", type=float, default=1.0,
                   help="with --train-tail: the tail's learning rate as a multiple of --lr2")
    p.add_argument("--val-images", type=int, default=0,
                   help="fashion-mnist: hold out this many training images (a fixed random subset) and report "
                        "the accuracy on them, to compare runs without looking at the test set")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr1", type=float, default=4e-3)
    p.add_argument("--lr2", type=float, default=2e-3)
    p.add_argument("--measurements", type=int, default=None, help="m, measurements per latent position")
    p.add_argument("--acq-channels", type=int, nargs="+", default=None, help="widths of f_psi (last = l)")
    p.add_argument("--decoder-channels", type=int, default=None, help="width of the decoder g_phi")
    p.add_argument("--decoder-blocks", type=int, default=None,
                   help="residual blocks of g_phi at the feature resolution (server side only)")
    p.add_argument("--max-norm", type=float, default=0.0, help="k of ||W||_F <= k (0: sqrt(l))")
    add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    add_device_options(p, "keeping the stage-1:stage-2 ratio")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", type=Path, nargs="+", default=None,
                   help="start from these bottleneck checkpoints (one per --beta) instead of from scratch, "
                        "e.g. to continue stage 2 with --stage1-epochs 0; with --decoder-channels or "
                        "--decoder-blocks other than the checkpoint's, only its encoder and prior are kept "
                        "and a new decoder is trained behind them; with a larger --measurements, the "
                        "trained model gets new rows of W (HecsbBottleneck.grown); with wider --acq-channels, f_psi "
                        "is widened without changing the latent (HecsbBottleneck.widened)")
    p.add_argument("--prefix", default="hecsb_fmnist")
    p.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="folder for checkpoints and manifests")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _config(args: argparse.Namespace, teacher: Classifier) -> HecsbConfig:
    spec = teacher.spec
    arch = dict(FMNIST_ARCH if spec.backbone == "fmnist_resnet" else RESNET50_ARCH)
    if args.measurements:
        arch["measurements"] = args.measurements
    if args.acq_channels:
        arch["acq_channels"] = tuple(args.acq_channels)
    if args.decoder_channels:
        arch["decoder_channels"] = args.decoder_channels
    if args.decoder_blocks is not None:
        arch["decoder_blocks"] = args.decoder_blocks
    channels, size = teacher.split_features()
    return HecsbConfig(spec.in_channels, spec.input_size, channels, size, max_norm=args.max_norm, **arch)


def _initial_model(args: argparse.Namespace, config: HecsbConfig, init: Path | None,
                   teacher: Classifier) -> HecsbBottleneck:
    """A fresh bottleneck, or the weights of ``init`` (which must belong to ``teacher``).

    When the command line asks for another decoder than ``init`` has, the encoder and prior of
    ``init`` are kept and the decoder starts fresh.
    """
    if init is None:
        return HecsbBottleneck(config)
    model, meta = load_bottleneck(init)
    if meta["teacher_model_id"] != teacher.model_id:
        raise SystemExit(f"{init} belongs to teacher {meta['teacher_model_id']}, not {teacher.model_id}")
    if args.measurements and args.measurements != model.config.measurements:
        print(f"starting from {init}, measurements per position {model.config.measurements} -> {args.measurements}")
        model = model.grown(args.measurements, torch.Generator().manual_seed(args.seed))
    if args.acq_channels and tuple(args.acq_channels) != model.config.acq_channels:
        print(f"starting from {init}, f_psi widened {model.config.acq_channels} -> {tuple(args.acq_channels)}")
        model = model.widened(tuple(args.acq_channels))
    decoder = {f: getattr(args, f) for f in DECODER_FIELDS if getattr(args, f) is not None}
    if any(getattr(model.config, k) != v for k, v in decoder.items()):
        fresh = HecsbBottleneck(replace(model.config, **decoder))
        fresh.load_edge_state_(model)
        print(f"starting from the encoder and prior of {init}, new decoder ({fresh.config})")
        return fresh.train()
    print(f"starting from {init} ({model.config})")
    return model.train()


def payload_sizes(split: HecsbSplit, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Real ``len(bytes)`` of every image's payload ``(N,)``."""
    sizes = []
    for i in range(0, len(x), batch_size):
        sizes += [len(b) for b in split.encode(x[i:i + batch_size])]
    return np.asarray(sizes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    device = args.device
    set_seed(args.seed)
    teacher = load_teacher(args)
    train, test, val = data_sources(args, teacher, Augment(pad=2, hflip=True), args.val_images)
    config = _config(args, teacher)
    levels = args.levels or [int(r) for r in np.argsort(np.argsort(-np.asarray(args.beta), kind="stable"))]
    if len(levels) != len(args.beta) or len(set(levels)) != len(levels):
        raise SystemExit("--levels needs one distinct level per --beta")
    inits = dict(zip(levels, args.init)) if args.init else {}
    if args.init and len(args.init) != len(args.beta):
        raise SystemExit("--init needs one checkpoint per --beta")
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m hecsb_ros.cli.train_hecsb " + shlex.join(argv if argv is not None else sys.argv[1:])
    teacher_acc = evaluate(teacher.model, test.x, test.y)
    print(f"teacher {teacher.model_id}: test accuracy {teacher_acc:.4f} on {len(test)} images; {config}")

    for beta, level in sorted(zip(args.beta, levels), key=lambda t: t[1]):
        set_seed(args.seed)
        cfg = DistillConfig(beta=beta, stage1_epochs=args.stage1_epochs, stage2_epochs=args.stage2_epochs,
                            batch_size=args.batch_size, lr1=args.lr1, lr2=args.lr2, alpha=args.alpha,
                            tau=args.tau, freeze_encoder=args.freeze_encoder,
                            stage2_rate_weight=args.stage2_rate_weight, seed=args.seed, ema=args.ema,
                            mixup=args.mixup, train_tail=args.train_tail, tail_lr_scale=args.tail_lr_scale)
        path = args.out / f"{args.prefix}_r{level}.safetensors"
        state_path = path.with_suffix(".train_state.pt")
        start = time.time()
        model = _initial_model(args, config, inits.get(level), teacher)
        tail = load_tail(inits[level], teacher.model.tail) if level in inits else None
        if val is not None and level in inits:
            before = accuracy(rounded_rate_and_logits(model, teacher, val.x, tail=tail)[1], val.y)
            print(f"level {level}: {inits[level]} has accuracy {before:.4f} on {len(val)} held-out training images")
            model.train()
        distiller = Distiller(model, teacher, train, cfg, state_path, progress=not args.no_progress, device=device,
                              tail=tail)
        if args.budget_min and not (args.resume and state_path.exists()):
            cfg = distiller.fit_budget(args.budget_min)
        model = distiller.run(resume=args.resume)
        minutes = (time.time() - start) / 60
        tail = distiller.tail
        bits, logits = rounded_rate_and_logits(model, teacher, test.x, tail=tail)
        acc = accuracy(logits, test.y)
        val_acc = accuracy(rounded_rate_and_logits(model, teacher, val.x, tail=tail)[1], val.y) if val is not None else None
        facts = {"beta": repr(beta), "rate_level": str(level), "test_accuracy": f"{acc:.4f}",
                 "teacher_accuracy": f"{teacher_acc:.4f}", "test_images": str(len(test)),
                 "estimated_bits_mean": f"{float(bits.mean()):.2f}", "distill_config": json.dumps(cfg.__dict__),
                 "command": command}
        if level in inits:  # record the training the initial weights went through
            _, init_meta = load_bottleneck(inits[level])
            earlier = json.loads(init_meta.get("earlier_training", "[]"))
            earlier.append({k: init_meta.get(k, "") for k in ("command", "distill_config", "test_accuracy",
                                                               "estimated_bits_mean")}
                           | {"model_id": model_id_of(inits[level])})
            facts["earlier_training"] = json.dumps(earlier)
        save_bottleneck(path, model, teacher.model_id, facts, tail=None if tail is teacher.model.tail else tail)
        split = HecsbSplit.load(path, teacher)
        sizes = payload_sizes(split, test.x)
        manifest = {"file": path.name, "rate_level": level, "beta": beta, "test_accuracy": round(acc, 4),
                    "teacher_accuracy": round(teacher_acc, 4), "test_images": len(test),
                    "mean_payload_bytes": round(float(sizes.mean()), 2),
                    "estimated_bytes_mean": round(float(bits.mean()) / 8, 2),
                    "model_id": model_id_of(path), "sha256": sha256_of(path),
                    "teacher_model_id": teacher.model_id, "config": json.loads(model.config.to_json()),
                    "tail": "teacher" if tail is teacher.model.tail else "fine-tuned",
                    "distill": cfg.__dict__, "train_minutes": round(minutes, 1), "train_device": str(device), "command": command,
                    "earlier_training": json.loads(facts.get("earlier_training", "[]"))}
        if val is not None:
            manifest["val_accuracy"], manifest["val_images"] = round(val_acc, 4), len(val)
        path.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
        state_path.unlink(missing_ok=True)
        if val is not None:
            print(f"level {level}: accuracy {val_acc:.4f} on {len(val)} held-out training images")
        print(f"level {level} beta {beta:g}: accuracy {acc:.4f} (teacher {teacher_acc:.4f}), "
              f"{sizes.mean():.2f} B/image (estimated {bits.mean() / 8:.2f} B), model id {manifest['model_id']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
