"""hecsb-frames-folder: photos of an evaluation list as a folder of camera frames for the ROS benchmarks.

    python -m hecsb_ros.cli.frames_folder DATA/imagen/labels.csv --out runs/fading_frames --count 300 --labelled-only

Writes ``--count`` photos of the list (``file,class_index`` CSV, as ``hecsb_ros.cli.image_list`` writes
it), spread evenly over it, as ``--frame-size`` PNG frames (``frame_0000.png``, ...; resized as
``bench`` resizes its evaluation photos) with their classes in the folder's ``labels.csv``, which the
camera source's folder mode reads (``--source folder --path DIR`` of ``fading_bench`` and
``fleet_bench``).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hecsb-frames-folder", description=__doc__.split("\n")[0])
    ap.add_argument("list", type=Path, help="CSV of file,class_index (-1 = no label), paths relative to it")
    ap.add_argument("--out", type=Path, required=True, help="folder to write the frames and labels.csv to")
    ap.add_argument("--count", type=int, default=100, help="frames to write, spread evenly over the list")
    ap.add_argument("--labelled-only", action="store_true", help="only photos with a class (class_index >= 0)")
    ap.add_argument("--frame-size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    args = ap.parse_args(argv)
    import cv2

    from hecsb_ros.core.sources import LABELS_FILE

    with open(args.list, newline="") as fh:
        rows = [(args.list.parent / r["file"], int(r["class_index"])) for r in csv.DictReader(fh)]
    if args.labelled_only:
        rows = [r for r in rows if r[1] >= 0]
    if not rows or args.count < 1:
        print(f"hecsb-frames-folder: no photos to write from {args.list} (count {args.count})", file=sys.stderr)
        return 1
    picks = np.unique(np.linspace(0, len(rows) - 1, min(args.count, len(rows))).round().astype(int))
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["file,class_index"]
    w, h = args.frame_size
    for i, k in enumerate(picks):
        path, label = rows[k]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            print(f"hecsb-frames-folder: cannot read {path}", file=sys.stderr)
            return 1
        name = f"frame_{i:04d}.png"
        cv2.imwrite(str(args.out / name), cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        lines.append(f"{name},{label}")
    (args.out / LABELS_FILE).write_text("\n".join(lines) + "\n")
    labelled = sum(int(line.rsplit(",", 1)[1]) >= 0 for line in lines[1:])
    print(f"{args.out}: {len(picks)} frames of {w}x{h} ({labelled} labelled) from {args.list}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
