"""Training samples per second at camera scale, per codec and stage, for the training set-ups
compared.

    hecsb bench train-speed --photos /work/data/photos/pacs-photo --out-dir benchmarks/train_speed

Set-ups (each timed in the same process, interleaved round by round, one thread, medians):

- ``cached``: the first recipe: fixed crops with the teacher's outputs cached on disk
  (:class:`~hecsb_ros.core.training.photos.PhotoCrops`), the student in the default memory layout
  (the tail already channels-last);
- ``fresh``: a fresh random view per draw (:class:`~hecsb_ros.core.training.pool.PhotoPool`) with
  the teacher run on it, default layout for the student and the teacher;
- ``fresh+cl``: the same with the student and the teacher channels-last (what training runs now).

Per codec (HECS-B with its stem trained, SVB with its stem frozen) and stage (1: head distillation,
2: knowledge distillation, every other batch mixed in the fresh set-ups as the recipe does). A
sample is one image of a batch of ``--batch-size``. Writes ``results.csv`` and ``README.md``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

SETUPS = ("cached", "fresh", "fresh+cl")


def _build(kind: str, teacher):
    from hecsb_ros.core.learned.hecsb import HecsbBottleneck
    from hecsb_ros.core.learned.stem import load_stem_
    from hecsb_ros.core.learned.svb import SvbBottleneck, svb_config_for
    from hecsb_ros.core.training.recipes import hecsb_config

    if kind == "hecsb":
        model = HecsbBottleneck(hecsb_config(teacher))
        load_stem_(model.f_psi.stem, teacher.model.head, model.config.stem, log=lambda s: None)
    else:
        model = SvbBottleneck(svb_config_for(teacher, 12, stem=True))
        load_stem_(model.g_a[0], teacher.model.head, model.config.stem, log=lambda s: None)
    return model


def _distiller(kind: str, setup: str, teacher, sources: dict, batch_size: int):
    from hecsb_ros.core.training.distill import DistillConfig, Distiller

    cfg = DistillConfig(
        beta=3e-4,
        batch_size=batch_size,
        freeze_stem=kind == "svb",
        mixup=0.0 if setup == "cached" else 0.5,
    )
    d = Distiller(
        _build(kind, teacher),
        teacher,
        sources["cached" if setup == "cached" else "fresh"],
        cfg,
        progress=False,
        log=lambda s: None,
    )
    # undo the channels-last layout the distiller chose (the tail keeps it, as before)
    if setup != "fresh+cl":
        d.model.to(memory_format=torch.contiguous_format)
        teacher.model.head.to(memory_format=torch.contiguous_format)
    else:
        teacher.model.to(memory_format=torch.channels_last)
    return d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hecsb bench train-speed", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--photos", type=Path, nargs="+", required=True, help="photo folders for the views"
    )
    p.add_argument(
        "--cache", type=Path, default=Path("runs/cache"), help="folder of the cached crops"
    )
    p.add_argument("--codecs", nargs="+", default=["hecsb", "svb"], choices=["hecsb", "svb"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--steps", type=int, default=2, help="steps timed per round, set-up, codec and stage"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--limit",
        type=int,
        default=320,
        help="photos used (the cached set-up caches one crop of each)",
    )
    p.add_argument("--out-dir", type=Path, default=Path("benchmarks/train_speed"))
    args = p.parse_args(argv)
    from hecsb_ros.core.teachers import load_teacher
    from hecsb_ros.core.training.distill import _optimisers
    from hecsb_ros.core.training.photos import PhotoCrops, list_media
    from hecsb_ros.core.training.pool import PhotoPool

    torch.set_num_threads(1)
    teacher = load_teacher("efficientnet_lite0")
    files = list_media(args.photos)[0][: args.limit]
    sources = {
        "cached": PhotoCrops(files, teacher, args.cache, crops_per_image=1, progress=False),
        "fresh": PhotoPool(args.photos, teacher.spec).first(args.limit),
    }
    times: dict[tuple[str, str, int], list[float]] = {}
    runs = {
        (kind, setup): _distiller(kind, setup, teacher, sources, args.batch_size)
        for kind in args.codecs
        for setup in SETUPS
    }
    start = time.time()
    for r in range(args.rounds):
        for (kind, setup), d in runs.items():
            teacher.model.to(
                memory_format=torch.channels_last
                if setup == "fresh+cl"
                else torch.contiguous_format
            )
            teacher.model.tail.to(memory_format=torch.channels_last)  # the distillers' tail layout
            for stage in (1, 2):
                model = copy.deepcopy(d.model)
                saved, d.model = d.model, model
                opt, sched, aux = _optimisers(d.model, stage, d.cfg, 100, d.tail)
                d._epoch(stage, opt, sched, aux, None, max_steps=1)  # warm-up
                t0 = time.perf_counter()
                d._epoch(stage, opt, sched, aux, None, max_steps=args.steps)
                per_sample = (time.perf_counter() - t0) / (args.steps * args.batch_size)
                d.model = saved
                times.setdefault((kind, setup, stage), []).append(per_sample)
        print(
            f"round {r + 1}/{args.rounds} done ({time.time() - start:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    rows = []
    for (kind, setup, stage), ts in times.items():
        med = statistics.median(ts)
        base = statistics.median(times[(kind, "cached", stage)])
        rows.append(
            {
                "codec": kind,
                "setup": setup,
                "stage": stage,
                "ms_per_sample": round(1000 * med, 1),
                "samples_per_s": round(1 / med, 2),
                "vs_cached": round(base / med, 2),
            }
        )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = "\n".join(
        f"| {r['codec']} | {r['stage']} | {r['setup']} | {r['ms_per_sample']} | "
        f"{r['samples_per_s']} | "
        f"{r['vs_cached']} |"
        for r in sorted(rows, key=lambda r: (r["codec"], r["stage"]))
    )
    command = "hecsb bench train-speed " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out_dir / "README.md").write_text(f"""# Camera-scale training speed per stage

`{command}` ({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, torch
{torch.__version__}, 1 thread, batch {args.batch_size}, medians of {args.rounds} interleaved rounds
of {args.steps} steps; the machine was shared, so read the ratios). `cached`: fixed crops with the
teacher's outputs cached (the first recipe); `fresh`: a fresh view per draw with the teacher run on
it (half of the stage-2 batches mixed); `fresh+cl`: the same, student and teacher channels-last
(the recipe now). HECS-B trains its stem (the teacher's layers to stride 8); SVB's stem is frozen.

| codec | stage | set-up | ms per sample | samples/s | speed vs cached |
|---|---:|---|---:|---:|---:|
{table}
""")
    print((args.out_dir / "README.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
