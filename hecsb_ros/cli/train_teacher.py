"""Train the default Fashion-MNIST classifier (the "teacher" that HECS-B splits and distills).

    python -m hecsb_ros.cli.train_teacher --epochs 15 --threads 2 \
        --out hecsb_ros/checkpoints/teacher_fmnist.safetensors

SGD with Nesterov momentum and a one-cycle learning rate, random crop (zero padding 2) and
horizontal flips, fixed seed. The test accuracy on the 10,000 test images, the seed and the
epochs are stored in the checkpoint's metadata and in a JSON manifest beside it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from hecsb_ros.core.datasets import load_fashion_mnist
from hecsb_ros.core.store import model_id_of, sha256_of
from hecsb_ros.core.teachers import (
    build_model,
    default_teacher_path,
    fmnist_spec,
    images_to_tensor,
    save_checkpoint,
)
from hecsb_ros.core.training import (
    Augment,
    evaluate,
    set_seed,
    set_threads,
    train_classifier_epoch,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hecsb train teacher", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--lr", type=float, default=0.1, help="peak learning rate of the one-cycle schedule"
    )
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--widths", type=int, nargs=3, default=(16, 32, 64), help="channels of the 3 stages"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=default_teacher_path())
    p.add_argument(
        "--data-root", type=Path, default=None, help="folder of the Fashion-MNIST IDX files"
    )
    p.add_argument(
        "--limit-train", type=int, default=None, help="use only the first N training images"
    )
    p.add_argument(
        "--limit-test", type=int, default=None, help="evaluate on the first N test images"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    gen = set_seed(args.seed)
    spec = fmnist_spec()
    train = load_fashion_mnist("train", args.data_root).subset(args.limit_train)
    test = load_fashion_mnist("test", args.data_root).subset(args.limit_test)
    x_train = images_to_tensor(train.images[..., None], spec)
    y_train = torch.from_numpy(train.labels)
    x_test = images_to_tensor(test.images[..., None], spec)
    y_test = torch.from_numpy(test.labels)

    arch = {"widths": list(args.widths)}
    model = build_model(spec, **arch)
    steps = len(x_train) // args.batch_size
    if steps == 0:
        raise SystemExit(f"need at least --batch-size ({args.batch_size}) training images")
    opt = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps, pct_start=0.25
    )
    augment = Augment(pad=2, hflip=True)
    start = time.time()
    with tqdm(total=args.epochs * steps, desc="teacher", unit="batch", file=sys.stderr) as bar:
        for epoch in range(args.epochs):
            loss = train_classifier_epoch(
                model, x_train, y_train, opt, sched, gen, args.batch_size, augment, progress=bar
            )
            bar.write(f"epoch {epoch + 1}/{args.epochs}: train loss {loss:.4f}")
    train_s = time.time() - start
    acc = evaluate(model, x_test, y_test)
    print(f"test accuracy {acc:.4f} on {len(x_test)} images (training {train_s / 60:.1f} min)")

    command = "python -m hecsb_ros.cli.train_teacher " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    facts = {
        "test_accuracy": f"{acc:.4f}",
        "test_images": str(len(x_test)),
        "train_images": str(len(x_train)),
        "seed": str(args.seed),
        "epochs": str(args.epochs),
        "command": command,
    }
    save_checkpoint(args.out, model.state_dict(), spec, facts, arch=arch)
    manifest = {
        "file": args.out.name,
        "backbone": spec.backbone,
        "test_accuracy": round(acc, 4),
        "test_images": len(x_test),
        "seed": args.seed,
        "epochs": args.epochs,
        "arch": arch,
        "sha256": sha256_of(args.out),
        "model_id": model_id_of(args.out),
        "command": command,
        "train_minutes": round(train_s / 60, 1),
        "torch_threads": torch.get_num_threads(),
    }
    args.out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {args.out} (model id {manifest['model_id']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
