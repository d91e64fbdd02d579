"""The benchmark's --quick mode end to end (what `make bench-quick` runs), in a temporary
folder."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hecsb_ros.core.bench.points import LEARNED, learned_levels
from hecsb_ros.core.teachers import default_teacher_path

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_every_output(tmp_path, missing_data):
    if not default_teacher_path().exists():
        missing_data("shipped teacher checkpoint missing")
    out = tmp_path / "bench"
    # --quick on fewer images than its 500 + 300: every rate point, output and claim, on 100 + 60
    # images
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hecsb_ros.cli.bench",
            "--quick",
            "--limit",
            "100",
            "--pick-images",
            "60",
            "--out-dir",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = list(csv.DictReader((out / "rate_accuracy.csv").open()))
    doc = json.loads((out / "results.json").read_text())
    teacher = doc["teacher_accuracy"]
    assert doc["test_images"] == 100
    shipped = {c: len(learned_levels(c)) for c in LEARNED}
    expected = {"jpeg": 3, "webp": 3, "png": 1, **{c: n for c, n in shipped.items() if n}}
    got: dict[str, int] = {}
    for r in rows:
        got[r["codec"]] = got.get(r["codec"], 0) + 1
        assert float(r["bytes_mean"]) > 0 and 0.0 <= float(r["accuracy"]) <= 1.0
        assert float(r["edge_ms"]) > 0 and float(r["server_ms"]) > 0
    assert got == expected
    png = next(r for r in rows if r["codec"] == "png")
    assert float(png["accuracy"]) == pytest.approx(
        teacher
    )  # lossless: exactly the teacher's predictions
    webp_lossless = next(r for r in rows if r["codec"] == "webp" and r["quality"] == "101")
    assert float(webp_lossless["accuracy"]) == pytest.approx(teacher)
    assert (out / "fig8_rate_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "table2_latency.md").read_text()
    assert all(p in table for p in ("4G / 12.0 Mbps", "Wi-Fi / 54.0 Mbps", "5G / 66.9 Mbps"))
    assert len(doc["latency_computed"]) == 3 * len(expected)
    assert (
        len(doc["claims"]) == 5 and "latency_ros" not in doc
    )  # claim 2 against SVB and against the teacher
    assert (out / "README.md").read_text().count("|") > 20
    # operating points are chosen on held-out training images, not on the test rows
    from hecsb_ros.core.bench.compare import operating_point

    assert doc["pick_images"] == 60 and 0.5 < doc["pick_teacher_accuracy"] <= 1.0
    for codec, point in doc["operating"].items():
        mine = [r for r in doc["rows"] if r["codec"] == codec]
        assert (
            operating_point(
                [(r["pick_bytes_mean"], r["pick_accuracy"], r["setting"]) for r in mine],
                doc["pick_teacher_accuracy"],
            )
            == point["setting"]
        )
    assert "held-out" in table or "no learned codec trained on" in table


def test_eval_workers_measure_the_same_points_as_one_process(tmp_path, missing_data):
    if not default_teacher_path().exists():
        missing_data("shipped teacher checkpoint missing")
    docs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "hecsb_ros.cli.bench",
                "--quick",
                "--limit",
                "60",
                "--pick-images",
                "30",
                "--codecs",
                "hecsb",
                "jpeg",
                "--timing-rounds",
                "3",
                "--bootstrap",
                "20",
                "--eval-workers",
                str(workers),
                "--out-dir",
                str(out),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        docs.append(json.loads((out / "results.json").read_text()))
    one, two = docs
    assert len(one["rows"]) == len(two["rows"]) > 3
    fields = (
        "codec",
        "quality",
        "accuracy",
        "bytes_mean",
        "bytes_max",
        "pick_accuracy",
        "pick_bytes_mean",
    )
    assert [[r[f] for f in fields] for r in one["rows"]] == [
        [r[f] for f in fields] for r in two["rows"]
    ]
    assert one["pick_images"] == two["pick_images"] == 30
    assert {c: o["setting"] for c, o in one["operating"].items()} == {
        c: o["setting"] for c, o in two["operating"].items()
    }  # timings differ run to run; the choice must not
