"""Photos of an evaluation list as a folder of camera frames for the ROS benchmarks.

    python -m hecsb_ros.cli.frames_folder DATA/imagen/labels.csv --out runs/fading_frames --count
    300 --labelled-only

Writes ``--count`` photos of the list (``file,class_index`` CSV, as ``hecsb_ros.cli.image_list``
writes it), spread evenly over it, as ``--frame-size`` PNG frames (``frame_0000.png``, ...; resized
as ``bench`` resizes its evaluation photos) with their classes in the folder's ``labels.csv``,
which the camera source's folder mode reads (``--source folder --path DIR`` of ``fading_bench`` and
``fleet_bench``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hecsb data frames-folder", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "list", type=Path, help="CSV of file,class_index (-1 = no label), paths relative to it"
    )
    ap.add_argument(
        "--out", type=Path, required=True, help="folder to write the frames and labels.csv to"
    )
    ap.add_argument(
        "--count", type=int, default=100, help="frames to write, spread evenly over the list"
    )
    ap.add_argument(
        "--labelled-only", action="store_true", help="only photos with a class (class_index >= 0)"
    )
    ap.add_argument("--frame-size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    args = ap.parse_args(argv)
    from hecsb_ros.core.sources import photo_frame, write_frames_folder

    with open(args.list, newline="") as fh:
        rows = [(args.list.parent / r["file"], int(r["class_index"])) for r in csv.DictReader(fh)]
    if args.labelled_only:
        rows = [r for r in rows if r[1] >= 0]
    if not rows or args.count < 1:
        print(
            f"{ap.prog}: no photos to write from {args.list} (count {args.count})", file=sys.stderr
        )
        return 1
    picks = [
        rows[k]
        for k in np.unique(
            np.linspace(0, len(rows) - 1, min(args.count, len(rows))).round().astype(int)
        )
    ]
    try:
        count = write_frames_folder(
            args.out,
            (photo_frame(path, args.frame_size) for path, _ in picks),
            [label for _, label in picks],
        )
    except ValueError as exc:
        print(f"{ap.prog}: {exc}", file=sys.stderr)
        return 1
    labelled = sum(label >= 0 for _, label in picks)
    w, h = args.frame_size
    print(f"{args.out}: {count} frames of {w}x{h} ({labelled} labelled) from {args.list}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
