"""The training ledger as a table: finished levels, levels in progress and each family's totals.

    hecsb train ledger                                   # training/camera, printed
    hecsb train ledger training/camera --out training/camera/LEDGER.md

Finished levels come from ``ledger.csv`` (one row per level, written by the training commands'
``--ledger``); levels in progress from their ``*.train_state.pt`` files (the work counted so far:
core-hours, samples, device minutes, epochs done of the fitted schedule).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import torch


def in_progress(folder: Path) -> list[dict]:
    """One row per ``*.train_state.pt`` under ``folder``: what that unfinished level has done so
    far."""
    rows = []
    for path in sorted(folder.rglob("*.train_state.pt")):
        state = torch.load(path, map_location="cpu", weights_only=True)
        work, cfg = state.get("work", {}), state.get("config", {})
        top1 = state.get("teacher_top1")
        rows.append(
            {
                "file": str(path.relative_to(folder)),
                "kind": path.parent.name,
                "beta": cfg.get("beta"),
                "epochs": f"{state.get('epoch', 0)} of "
                f"{cfg.get('stage1_epochs', 0) + cfg.get('stage2_epochs', 0)}",
                "core_hours": round(work.get("cpu_seconds", 0.0) / 3600, 3),
                "device_minutes": round(work.get("device_seconds", 0.0) / 60, 1),
                "samples_seen": int(work.get("samples", 0)),
                "teacher_classes_seen": int((top1 > 0).sum()) if top1 is not None else "",
            }
        )
    return rows


def render(folder: Path) -> str:
    finished = (
        list(csv.DictReader((folder / "ledger.csv").open()))
        if (folder / "ledger.csv").exists()
        else []
    )
    running = in_progress(folder)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in finished + running:
        for key in ("core_hours", "device_minutes", "samples_seen"):
            totals[r["kind"]][key] += float(r[key] or 0)
    out = [f"# Training ledger of `{folder}`", ""]
    out += [
        "## Totals per family (finished and in progress)",
        "",
        "| family | core-hours | device minutes | samples seen |",
        "|---|---:|---:|---:|",
    ]
    out += [
        f"| {k} | {v['core_hours']:.2f} | {v['device_minutes']:.1f} | {int(v['samples_seen']):,} |"
        for k, v in sorted(totals.items())
    ] or ["| (none yet) | | | |"]
    out += ["", "## Finished levels", ""]
    if finished:
        cols = list(finished[0])
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(r[c] for c in cols) + " |" for r in finished]
    else:
        out.append("None yet.")
    out += ["", "## In progress (from the committed training state)", ""]
    if running:
        cols = list(running[0])
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in running]
    else:
        out.append("Nothing.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hecsb train ledger", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "folder",
        type=Path,
        nargs="?",
        default=Path("training/camera"),
        help="the training output folder (ledger.csv and the families' folders)",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown to this file")
    args = p.parse_args(argv)
    if not args.folder.is_dir():
        print(
            f"hecsb train ledger: {args.folder} is not a folder (scripts/train_camera.sh writes "
            "training/camera)",
            file=sys.stderr,
        )
        return 2
    text = render(args.folder)
    if args.out is not None:
        args.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
