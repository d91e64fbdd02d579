"""Write or check the SHA256SUMS manifest of a checkpoints folder.

python -m hecsb_ros.cli.manifest hecsb_ros/checkpoints            # write SHA256SUMS
python -m hecsb_ros.cli.manifest hecsb_ros/checkpoints --check    # verify every listed file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hecsb_ros.core.store import (
    CHECKSUMS_NAME,
    ChecksumError,
    read_checksums,
    verify_checkpoint,
    write_checksums,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hecsb data manifest", description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="Checkpoints folder")
    ap.add_argument(
        "files", nargs="*", help="File names to list (default: every .safetensors and .pth)"
    )
    ap.add_argument(
        "--check", action="store_true", help="Verify the listed files instead of writing"
    )
    args = ap.parse_args(argv)
    if not args.check:
        path = write_checksums(args.folder, args.files or None)
        print(path.read_text(), end="")
        return 0
    try:
        names = read_checksums(args.folder / CHECKSUMS_NAME)
        for name in names:
            verify_checkpoint(args.folder / name, required=True)
            print(f"{name}: OK")
    except (ChecksumError, FileNotFoundError) as exc:
        print(f"{ap.prog}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
