"""Write the evaluation list (CSV of file,synset,class_index) of a folder of ImageNet photos.

    python -m hecsb_ros.cli.image_list /data/imagen --out /data/imagen/labels.csv

A photo's synset is the WordNet id that starts its file name (``n01443537_11099_goldfish.jpg``, as
in the public ``ajschumacher/imagen`` collection) or names its folder (an ImageNet-style
``<synset>/<image>`` tree); its class index is the ImageNet-1k index (sorted synsets), -1 for a
synset outside the 1,000 classes or a photo without one. Paths in the CSV are relative to it.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from pathlib import Path

from hecsb_ros.core.teachers.imagenet import class_index
from hecsb_ros.core.training.photos import IMAGE_SUFFIXES

SYNSET = re.compile(r"^(n\d{8})")


def synset_of(path: Path) -> str:
    for name in (path.name, path.parent.name):
        m = SYNSET.match(name)
        if m:
            return m.group(1)
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hecsb data image-list", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("folder", type=Path, help="folder of photos (searched recursively)")
    ap.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = ap.parse_args(argv)
    files = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        print(f"{ap.prog}: no images under {args.folder}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    labelled = 0
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "synset", "class_index"])
        for f in files:
            synset = synset_of(f)
            index = class_index(synset) if synset else -1
            labelled += index >= 0
            writer.writerow([os.path.relpath(f, args.out.parent), synset, index])
    print(f"{args.out}: {len(files)} photos, {labelled} in the 1,000 ImageNet-1k classes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
