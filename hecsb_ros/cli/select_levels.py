"""Choose the rate levels to ship from trained candidates, on held-out training images only.

    python -m hecsb_ros.cli.select_levels runs/camera/hecsb runs/camera/svb ... \\
        --teacher efficientnet_lite0 --data photos <pool ...> --val-images 300 --cache runs/cache
        \\ --ship hecsb_ros/checkpoints --report benchmarks/camera/selection.md

Every candidate checkpoint (``*.safetensors`` with its manifest, in the folders given) is run
through the real entropy coder on the held-out images the training runs set aside
(``--val-images``, the same split): mean payload bytes and agreement with the teacher. Per codec a
level is kept unless it collapsed (agreement no better than always answering the held-out images'
most frequent teacher class, or ``--min-agreement``) or another level of the same codec is at least
as accurate with no more bytes (not on the Pareto front); a codec whose every level collapsed ships
its most accurate one, marked so (``--no-keep-one``: none). Each codec's default level (the one its
nodes run when no ``quality`` is set) is the kept level with the fewest held-out bytes whose
agreement is within ``--default-within`` of the codec's most accurate kept level. The test set is
never read. Kept levels are copied with their manifests (``selection`` added: held-out bytes,
agreement, the rule) into ``--ship``, replacing the levels shipped there before for the same codecs
and teachers, and its SHA256SUMS rewritten; the table of every candidate goes to ``--report``
(Markdown) and the CSV beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from hecsb_ros.cli.benchutil import markdown_table, write_csv
from hecsb_ros.cli.options import add_data_options, data_options, usage_error
from hecsb_ros.core.learned.split import Split
from hecsb_ros.core.store import write_checksums
from hecsb_ros.core.training import set_threads
from hecsb_ros.core.training.config import DataOptions
from hecsb_ros.core.training.data import fashion_mnist_source
from hecsb_ros.core.training.evaluation import evaluate_split
from hecsb_ros.core.training.photos import IMAGE_SUFFIXES, PhotoCrops
from hecsb_ros.core.training.sources import hold_out, load_run_teacher, pool_split

FIELDS = (
    "codec",
    "level",
    "setting",
    "val_bytes_mean",
    "val_agreement",
    "test_top1",
    "kept",
    "default",
    "why",
    "file",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hecsb select", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "folders", type=Path, nargs="+", help="folders of candidate checkpoints and manifests"
    )
    add_data_options(p)
    p.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        help="a level agreeing with the teacher on no more held-out images than this "
        "collapsed "
        "(default: the share of the held-out images' most frequent teacher class, "
        "what a "
        "level that always answers that class gets)",
    )
    p.add_argument(
        "--keep-one",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a codec whose every level collapsed still ships its most accurate one "
        "(so that the "
        "benchmark compares with it), its manifest saying so",
    )
    p.add_argument(
        "--default-within",
        type=float,
        default=0.01,
        help="default level: the fewest held-out bytes within this much agreement of "
        "the codec's "
        "most accurate kept level",
    )
    p.add_argument(
        "--ship",
        type=Path,
        default=None,
        help="copy the kept levels here (and rewrite SHA256SUMS)",
    )
    p.add_argument(
        "--held-out-list",
        type=Path,
        default=None,
        help="photos: also write the held-out photo files (not video frames) as a "
        "file,class_index CSV "
        "(-1: no label), for bench --pick-list (operating points chosen on them, "
        "not the test photos)",
    )
    p.add_argument(
        "--report",
        type=Path,
        required=True,
        help="Markdown table of every candidate (CSV beside it)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the training runs' --seed (photos: part of the cache key)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per network call")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not args.val_images:
        p.error("--val-images is required: levels are chosen on held-out training images")
    return args


def candidates(folders: list[Path]) -> list[tuple[Path, dict]]:
    out = []
    for folder in folders:
        for path in sorted(folder.glob("*.safetensors")):
            manifest = path.with_suffix(".json")
            if not manifest.is_file():
                raise SystemExit(f"{path}: no manifest {manifest.name} beside it")
            out.append((path, json.loads(manifest.read_text())))
    if not out:
        raise SystemExit(f"no candidate checkpoints in {', '.join(map(str, folders))}")
    return out


def choose(rows: list[dict], min_agreement: float, keep_one: bool = True) -> None:
    """Mark each row ``kept`` / ``why`` (per codec: not collapsed, on the Pareto front of bytes and
    agreement; with ``keep_one``, a codec whose every level collapsed keeps its most accurate one).
    """
    for row in rows:
        peers = [r for r in rows if r["codec"] == row["codec"] and r is not row]
        better = [
            r
            for r in peers
            if r["val_bytes_mean"] <= row["val_bytes_mean"]
            and r["val_agreement"] >= row["val_agreement"]
            and (r["val_bytes_mean"], r["val_agreement"])
            != (row["val_bytes_mean"], row["val_agreement"])
        ]
        if min_agreement > 0 and row["val_agreement"] <= min_agreement:
            row["kept"], row["why"] = False, f"collapsed (agreement <= {min_agreement:.3g})"
        elif better:
            b = min(better, key=lambda r: r["val_bytes_mean"])
            row["kept"], row["why"] = False, f"dominated by r{b['level']}"
        else:
            row["kept"], row["why"] = True, "Pareto front"
    for codec in {r["codec"] for r in rows}:
        mine = [r for r in rows if r["codec"] == codec]
        # the benchmark still compares with this codec
        if keep_one and not any(r["kept"] for r in mine):
            best = max(mine, key=lambda r: (r["val_agreement"], -r["val_bytes_mean"]))
            best["kept"], best["why"] = (
                True,
                "every level collapsed: the most accurate one, for the benchmark",
            )


def choose_defaults(rows: list[dict], within: float) -> None:
    """Mark ``default`` per codec: among its kept levels, the fewest held-out bytes whose agreement
    is within ``within`` of the most accurate kept level's."""
    for codec in {r["codec"] for r in rows}:
        kept = [r for r in rows if r["codec"] == codec and r["kept"]]
        for r in rows:
            if r["codec"] == codec:
                r["default"] = False
        if kept:
            top = max(r["val_agreement"] for r in kept)
            min(
                (r for r in kept if r["val_agreement"] >= top - within),
                key=lambda r: (r["val_bytes_mean"], -r["val_agreement"]),
            )["default"] = True


def shipped_for(folder: Path, rows: list[dict]) -> list[Path]:
    """Checkpoints and manifests in ``folder`` of the codecs and teachers the candidates are for
    (``{kind}_{tag}_r{LEVEL}.*``, the prefix of each candidate's file name)."""
    prefixes = {re.sub(r"_r\d+$", "", Path(r["file"]).stem) for r in rows}
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in (".safetensors", ".json")
        and re.sub(r"_r\d+$", "", p.stem) in prefixes
        and re.search(r"_r\d+$", p.stem)
    )


def held_out(data: DataOptions, teacher, batch_size: int) -> tuple[object, object]:
    """(training rest, held-out images) split as the training runs split them; the test set is not
    opened."""
    if data.kind == "photos":
        crops = PhotoCrops(
            data.paths,
            teacher,
            data.cache,
            data.crops,
            data.video_every,
            data.seed,
            batch_size=batch_size,
            progress=data.progress,
        )
        return crops.split(data.val_images)
    if data.kind == "pool":
        return pool_split(data, teacher, batch_size=batch_size)
    if data.kind == "fashion-mnist":
        train = fashion_mnist_source("train", teacher.spec, data.limit_train, None)
        return hold_out(train, data.val_images)
    raise ValueError(
        "--data photos DIR..., pool DIR... or fashion-mnist (an imagenet-folder run "
        "has --val-folder)"
    )


def write_held_out_list(val, path: Path) -> None:
    """The held-out photos (image files; video sources are skipped) as ``file,class_index`` rows,
    -1 each."""
    if not hasattr(val, "sources"):
        raise SystemExit("--held-out-list needs --data photos")
    files = sorted({s for s in val.sources() if Path(s).suffix.lower() in IMAGE_SUFFIXES})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("file,class_index\n" + "".join(f"{f},-1\n" for f in files))
    print(f"wrote {len(files)} held-out photos to {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    try:
        data = data_options(args)
        teacher = load_run_teacher(data)
        _, val = held_out(data, teacher, args.batch_size)
    except ValueError as exc:
        return usage_error("hecsb select", exc)
    if args.held_out_list is not None:
        write_held_out_list(val, args.held_out_list)
    rows = []
    for path, manifest in tqdm(
        candidates(args.folders), desc="candidates", file=sys.stderr, disable=args.no_progress
    ):
        split = Split.load(path, teacher)
        kind = split.model.kind
        # inference mode inside
        m = evaluate_split(split, val.x, val.y, batch_size=args.batch_size)
        setting = type(split.model).rate_setting
        rows.append(
            {
                "codec": kind,
                "level": int(manifest["rate_level"]),
                "setting": f"{setting}={manifest.get(setting)}",
                "val_bytes_mean": round(m["mean_payload_bytes"], 1),
                "val_agreement": round(m["test_accuracy"], 4),
                "test_top1": manifest.get("test_accuracy"),
                "file": str(path),
                "_manifest": manifest,
            }
        )
        print(
            f"{path.name}: {m['mean_payload_bytes']:.1f} B, agreement {m['test_accuracy']:.4f} "
            f"on {len(val)} "
            "held-out images",
            flush=True,
        )
    counts = torch.bincount(val.y)
    majority = float(counts.max()) / len(val.y)
    min_agreement = majority if args.min_agreement is None else args.min_agreement
    print(
        f"collapsed: agreement <= {min_agreement:.4f} (the most frequent teacher class is "
        f"{100 * majority:.1f}% of the held-out images)",
        flush=True,
    )
    choose(rows, min_agreement, args.keep_one)
    choose_defaults(rows, args.default_within)
    rows.sort(key=lambda r: (r["codec"], r["level"]))
    if args.ship is not None:
        args.ship.mkdir(parents=True, exist_ok=True)
        # the kept levels replace what was shipped of these codecs
        for stale in shipped_for(args.ship, rows):
            stale.unlink()
        for r in rows:
            if not r["kept"]:
                continue
            src = Path(r["file"])
            shutil.copy2(src, args.ship / src.name)
            manifest = dict(
                r["_manifest"],
                selection={
                    "held_out_images": len(val),
                    "val_bytes_mean": r["val_bytes_mean"],
                    "val_agreement": r["val_agreement"],
                    "collapsed": r["why"].startswith("every level collapsed"),
                    "default": r["default"],
                    "default_rule": "fewest held-out bytes within "
                    f"{args.default_within:g} "
                    "agreement of the codec's most accurate kept level",
                    "rule": f"not collapsed (agreement > {min_agreement:.4f}) "
                    "and on the codec's Pareto front of held-out bytes and agreement",
                },
            )
            (args.ship / src.with_suffix(".json").name).write_text(
                json.dumps(manifest, indent=2) + "\n"
            )
        write_checksums(args.ship)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, FIELDS, args.report.with_suffix(".csv"))
    command = "python -m hecsb_ros.cli.select_levels " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    cols = [
        ("codec", "codec"),
        ("level", "level"),
        ("setting", "setting"),
        ("val_bytes_mean", "held-out B mean"),
        ("val_agreement", "held-out agreement"),
        ("kept", "shipped"),
        ("default", "default"),
        ("why", "why"),
    ]
    lines = [
        "# Rate levels chosen on held-out training images",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Every candidate through the real entropy coder on the {len(val)} held-out training "
        "images (no run trained "
        "on them): mean payload bytes and top-1 agreement with the "
        f"teacher. Kept: not collapsed (agreement > {min_agreement:.4f}"
        + (
            f", the share of the most frequent teacher class, {100 * majority:.1f}%"
            if args.min_agreement is None
            else ""
        )
        + ") and on its codec's Pareto front. "
        "Default: per codec, the kept level with the fewest held-out bytes within "
        f"{args.default_within:g} "
        "agreement of its most accurate kept level. The test images were not read.",
        "",
        *markdown_table(
            rows, cols, lambda k, v: ("yes" if v else "no") if k in ("kept", "default") else str(v)
        ),
        "",
    ]
    args.report.write_text("\n".join(lines))
    print(
        f"kept {sum(r['kept'] for r in rows)} of {len(rows)} levels; wrote {args.report}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
