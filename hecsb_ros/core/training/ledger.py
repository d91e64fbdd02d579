"""The training ledger: one CSV row per trained level (core-hours, device minutes, samples seen,
the pool's version, the commit, accuracy and bytes), appended as each level finishes
(:func:`~hecsb_ros.core.training.levels.train_levels` with a ledger); ``hecsb train ledger``
renders it."""

from __future__ import annotations

import csv
import datetime
import subprocess
from pathlib import Path

from hecsb_ros.core.training.recipes import get_recipe

LEDGER_FIELDS = (
    "finished",
    "kind",
    "rate_level",
    "setting",
    "value",
    "init",
    "core_hours",
    "device_minutes",
    "samples_seen",
    "train_pool",
    "teacher_classes_seen",
    "val_accuracy",
    "test_accuracy",
    "mean_payload_bytes",
    "commit",
)


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def append_ledger(path: Path, manifest: dict, init: Path | None) -> None:
    """Append the ledger's row (:data:`LEDGER_FIELDS`) of the level ``manifest`` describes, trained
    from ``init`` (None: from scratch), to the CSV ``path``."""
    setting = get_recipe(manifest["kind"]).setting
    row = {
        "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "kind": manifest["kind"],
        "rate_level": manifest["rate_level"],
        "setting": setting,
        "value": manifest.get(setting),
        "init": init.name if init else "",
        "commit": _commit(),
        **{k: manifest.get(k, "") for k in LEDGER_FIELDS[6:-1]},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LEDGER_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
