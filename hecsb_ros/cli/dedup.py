"""Keep evaluation photos out of a training pool.

    python -m hecsb_ros.cli.dedup /data/photos/imagenet-sample-images --against /data/imagen/imagen

Removes from the training folder (searched recursively) every photo that is the same picture as one
under ``--against`` (average hash within ``--max-distance`` of 256 bits: the same photo re-encoded
or resized), and lists what it removed. ``--dry-run`` only lists. Run it on every pool folder that
may share photos with the evaluation set (a public collection drawn from the same source, a robot's
footage that a test set was cut from).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hecsb_ros.core.training.photos import list_media, near_duplicates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hecsb data dedup", description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="training photos to clean (searched recursively)")
    ap.add_argument(
        "--against", type=Path, nargs="+", required=True, help="evaluation photo folders"
    )
    ap.add_argument(
        "--max-distance", type=int, default=4, help="bits of 256 (0: identical hashes only)"
    )
    ap.add_argument("--dry-run", action="store_true", help="list the duplicates, remove nothing")
    args = ap.parse_args(argv)
    for path in (args.folder, *args.against):
        if not path.is_dir():
            print(f"{ap.prog}: {path} is not a folder", file=sys.stderr)
            return 2
    candidates, _ = list_media([args.folder])
    references, _ = list_media(args.against)
    found = near_duplicates(candidates, references, args.max_distance)
    for path, ref, distance in found:
        print(
            f"{'would remove' if args.dry_run else 'removed'} {path} (same photo as {ref}, "
            f"{distance} bits apart)"
        )
        if not args.dry_run:
            path.unlink()
    print(f"{args.folder}: {len(found)} of {len(candidates)} photos duplicate the evaluation set")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
