"""Benchmark helpers: Pareto fronts, matched-accuracy interpolation, BD-rate, operating points,
the 'best everywhere' check, latency arithmetic, rate-point discovery, report outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hecsb_ros.core.bench import compare, report
from hecsb_ros.core.bench.latency import LatencyRow, computed_rows, transfer_ms
from hecsb_ros.core.bench.points import discover, learned_levels
from hecsb_ros.core.codecs import CodecSettings

pytestmark = [pytest.mark.slow]

CURVE = [(100.0, 0.80), (200.0, 0.88), (400.0, 0.90), (300.0, 0.85), (800.0, 0.905)]


def test_pareto_drops_dominated_points():
    assert compare.pareto(CURVE) == [(100.0, 0.80), (200.0, 0.88), (400.0, 0.90), (800.0, 0.905)]
    assert compare.pareto([(10, 0.5), (10, 0.6), (20, 0.55)]) == [(10.0, 0.6)]


def test_bytes_at_interpolates_log_linearly_without_extrapolating():
    assert compare.bytes_at(CURVE, 0.88) == pytest.approx(200.0)
    assert compare.bytes_at(CURVE, 0.89) == pytest.approx(math.sqrt(200 * 400))
    assert compare.bytes_at(CURVE, 0.80) == pytest.approx(100.0)
    assert compare.bytes_at(CURVE, 0.79) is None and compare.bytes_at(CURVE, 0.91) is None


def test_bd_rate_and_matched_ratio():
    half = [(b / 2, a) for b, a in CURVE]
    assert compare.bd_rate(half, CURVE) == pytest.approx(-0.5)
    assert compare.bd_rate(CURVE, CURVE) == pytest.approx(0.0)
    assert compare.matched_ratio(half, CURVE, 0.85) == pytest.approx(0.5)
    assert compare.matched_ratio(half, CURVE, 0.95) is None
    assert compare.bd_rate(CURVE, [(5.0, 0.1), (6.0, 0.2)]) is None  # no common range
    # shifted curve: a covers 0.85-0.905, b 0.80-0.88 -> common 0.85-0.88
    b = [(100.0, 0.80), (400.0, 0.88)]
    a = [(50.0, 0.85), (100.0, 0.905)]
    assert compare.overlap(a, b) == (0.85, 0.88)
    assert compare.bd_rate(a, b) < 0


def test_operating_point_rule():
    pts = [(100, 0.90, "a"), (50, 0.915, "b"), (30, 0.91, "c"), (200, 0.92, "d")]
    assert compare.operating_point(pts, 0.92) == "c"  # smallest within 1 pp
    assert compare.operating_point(pts, 0.95) == "d"  # none within 1 pp -> most accurate
    assert compare.operating_point([(10, 0.5, "x"), (5, 0.5, "y")], 0.9) == "y"


def test_best_everywhere_finds_violations():
    curves = {"h": [(20.0, 0.90), (40.0, 0.915)], "png": [(500.0, 0.92)], "webp": [(150.0, 0.80)]}
    holds, viol = compare.best_everywhere(curves, "h", 0.92)
    assert not holds and viol == [
        {"bytes": 500.0, "codec": "png", "accuracy": 0.92, "champion_accuracy": 0.915}
    ]
    holds, viol = compare.best_everywhere(curves, "h", 0.92, max_budget=40.0)
    assert holds and viol == []
    curves["h"].append((30.0, 0.93))
    assert compare.best_everywhere(curves, "h", 0.92)[0]


def test_transfer_and_computed_rows():
    assert transfer_ms(1500, "4g") == pytest.approx(1.0)  # 12,000 bit at 12 Mbit/s
    assert transfer_ms(669, "5g") == pytest.approx(669 * 8 / 66.9e3)
    rows = computed_rows(
        [
            {
                "codec": "png",
                "quality": 9,
                "setting": "level=9",
                "bytes_mean": 1500.0,
                "accuracy": 0.9,
                "edge_ms": 0.5,
                "server_ms": 2.0,
            }
        ]
    )
    assert [r.profile for r in rows] == ["4g", "wifi", "5g"]
    assert rows[0].total_ms == pytest.approx(3.5)
    md = report.latency_markdown(rows, measured=False)
    assert "4G / 12.0 Mbps" in md and "| 1.000 | 0.500 | 2.000 | 3.500 |" in md


def _rows():
    def mk(c, q, b, a, e, s):
        return {
            "codec": c,
            "quality": q,
            "setting": f"r{q}",
            "bytes_mean": b,
            "accuracy": a,
            "delta_pp": 0.0,
            "edge_ms": e,
            "server_ms": s,
            "edge_network_ms": e / 2,
            "edge_entropy_ms": e / 4,
        }

    return [
        mk("hecsb", 0, 20.0, 0.90, 0.2, 1.0),
        mk("hecsb", 1, 40.0, 0.915, 0.2, 1.0),
        mk("svb", 0, 50.0, 0.90, 1.0, 1.0),
        mk("svb", 1, 100.0, 0.915, 1.0, 1.0),
        mk("png", 9, 500.0, 0.92, 0.1, 1.5),
    ]


def test_claims_and_matched_table():
    rows = _rows()
    op = {"hecsb": rows[1], "svb": rows[3], "png": rows[4]}
    measured = [
        LatencyRow("4g", "hecsb", 1, "r1", 40, 0.9, 0.03, 0.2, 1.0, 3.0, 200),
        LatencyRow("4g", "png", 9, "l9", 500, 0.9, 0.4, 0.1, 1.5, 5.0, 200),
    ]
    cl = report.claims(rows, 0.92, op, measured)
    assert [c["holds"] for c in cl] == [True, True, False, False]
    assert cl[0]["figure"] == pytest.approx(0.4)
    assert cl[1]["figure"] == pytest.approx(0.2)
    assert cl[3]["figure"] == pytest.approx(0.6)
    # hecsb's total without its compute: 3.0 - 0.2 - 1.0 = 1.8 ms = 0.36x png's total
    assert "(link + DDS hops) is 1.800 ms, 0.36x" in cl[3]["note"]
    assert report.claims(rows, 0.92, op, None)[3]["holds"] is None
    matched = report.matched_accuracy(rows, 0.92)
    svb = next(m for m in matched if m["baseline"] == "svb")
    assert svb["ratio_at_-1pp"] == pytest.approx(0.4) and svb["bd_ratio"] == pytest.approx(
        0.4, abs=1e-3
    )
    assert "n/a" in report.matched_markdown(matched)  # neither reaches teacher -3 pp
    assert "| **yes** |" in report.claims_markdown(cl)


def test_plot_and_csv(tmp_path):
    rows = _rows()
    png = report.plot(rows, 0.92, tmp_path / "fig.png", "t")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    csv_path = report.write_csv(rows, tmp_path / "r.csv")
    assert csv_path.read_text().splitlines()[0].startswith("codec,quality,setting,bytes_mean")


def test_discover_reads_manifests(tmp_path):
    for lv, beta in ((0, 0.02), (1, 0.005)):
        (tmp_path / f"svb_fmnist_r{lv}.safetensors").write_bytes(b"")
        (tmp_path / f"svb_fmnist_r{lv}.json").write_text(json.dumps({"beta": beta}))
    assert [lv for lv, _ in learned_levels("svb", tmp_path)] == [0, 1]
    pts = discover(["svb", "png"], folder=tmp_path)
    assert [(p.codec, p.quality, p.setting) for p in pts] == [
        ("svb", 0, "r0 beta=0.02"),
        ("svb", 1, "r1 beta=0.005"),
        ("png", 1, "level=1"),
        ("png", 9, "level=9"),
    ]
    assert [p.quality for p in discover(["webp"], quick=True)] == [10, 75, 101]
    with pytest.raises(ValueError, match="not benchmarked"):
        discover(["nope"])


def test_edge_macs_count_the_arithmetic_layers():
    from compressai.layers import GDN
    from torch import nn

    from hecsb_ros.core.bench.macs import count_macs, edge_macs
    from hecsb_ros.core.codecs import create_codec
    from hecsb_ros.core.measurement import MeasurementOperator

    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        GDN(2),
        MeasurementOperator(2, 1, spatial=True),
        nn.ConvTranspose2d(1, 3, 4, 2, 1),
        nn.Flatten(),
        nn.Linear(3 * 8 * 8, 5),
    )
    macs, out = count_macs(net, torch.zeros(1, 1, 4, 4))
    assert out.shape == (1, 5)
    # conv 32 outputs x 9, GDN 32 x 2, W 16 x 2, transposed conv 16 inputs x 3 x 16, linear 5 x 192
    assert macs == 32 * 9 + 32 * 2 + 16 * 2 + 16 * 3 * 16 + 5 * 192
    image = np.zeros((28, 28), np.uint8)
    assert edge_macs(create_codec("jpeg"), image) == 0
    codec = create_codec("hecsb", CodecSettings(quality=4))
    (c1, c2), m = codec.split.model.config.acq_channels, codec.split.model.config.measurements
    assert edge_macs(codec, image) == 14 * 14 * c1 * 25 + 7 * 7 * c2 * c1 * 25 + 7 * 7 * m * c2
    # SVB's deployed GDN layers (FrozenGDN) count as GDN: conv 5x5 (4N), GDN, conv 5x5 (2N), GDN,
    # conv 3x3 (N)
    svb = create_codec("svb", CodecSettings(quality=0))
    n = svb.split.model.config.latent_channels
    want = (
        196 * 4 * n * 25
        + 196 * (4 * n) ** 2
        + 49 * 2 * n * 4 * n * 25
        + 49 * (2 * n) ** 2
        + 49 * n * 2 * n * 9
    )
    assert edge_macs(svb, image) == want


def test_backend_bench_compares_both_backends_in_separate_processes(tmp_path):
    from hecsb_ros.cli import backend_bench

    assert (
        backend_bench.main(
            ["--rounds", "1", "--repeats", "1", "--limit", "2", "--out-dir", str(tmp_path)]
        )
        == 0
    )
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].startswith("codec,edge_onednn_us,edge_native_us,edge_ratio")
    assert len(lines) == 1 + len(backend_bench.POINTS)
    for line in lines[1:]:
        values = [float(v) for v in line.split(",")[1:]]
        assert all(v > 0 for v in values)
    assert "| hecsb 5 |" in (tmp_path / "README.md").read_text()


def test_bd_rate_is_the_bjontegaard_fit_and_differs_from_the_mean_log_ratio():
    a = [(10.0, 0.5), (20.0, 0.7), (40.0, 0.8), (80.0, 0.85), (160.0, 0.87)]
    b = [(2 * x, y) for x, y in a]
    # a fit of the same shape: exactly half
    assert compare.bd_rate(a, b) == pytest.approx(-0.5, abs=1e-9)
    bent = [(10.0, 0.5), (30.0, 0.7), (35.0, 0.8), (200.0, 0.85), (210.0, 0.87)]
    assert compare.bd_rate(a, bent) != pytest.approx(compare.mean_log_ratio(a, bent), abs=1e-3)
    assert compare.bd_rate(a, [(5.0, 0.9)]) is None  # one point: no fit


def test_paired_bootstrap_intervals():
    from hecsb_ros.core.bench import intervals

    rng = np.random.default_rng(0)
    n = 2000
    teacher = (rng.random(n) < 0.9).astype(float)
    same = intervals.PerImage(teacher.copy(), np.full(n, 100.0))
    worse = intervals.PerImage(np.where(rng.random(n) < 0.1, 0.0, teacher), np.full(n, 50.0))
    idx = intervals.resample_indices(n, 300)
    # paired: no spread at all
    assert intervals.accuracy_delta_interval(same, teacher, idx) == (0.0, 0.0)
    lo, hi = intervals.accuracy_delta_interval(worse, teacher, idx)
    observed = 100 * (worse.correct.mean() - teacher.mean())  # about -9 pp
    assert lo < observed < hi < 0 and hi - lo < 3
    # bytes ratio at matched accuracy: a curve with the same accuracies at half the bytes
    cheap = [intervals.PerImage(p.correct, p.sizes / 2) for p in (worse, same)]
    r = intervals.matched_ratio_interval(cheap, [worse, same], teacher, idx, below_teacher_pp=1.0)
    assert r["lo"] == pytest.approx(0.5) and r["hi"] == pytest.approx(0.5) and r["undefined"] == 0
    unlabelled = intervals.PerImage(np.where(np.arange(n) % 2 == 0, np.nan, teacher), np.ones(n))
    assert intervals.accuracy_delta_interval(
        unlabelled, np.where(np.arange(n) % 2 == 0, np.nan, teacher), idx
    ) == (0.0, 0.0)


def test_null_codec_is_the_harness_floor():
    from hecsb_ros.core.codecs import create_codec

    codec = create_codec("null")
    frame = codec.encode(np.zeros((28, 28), np.uint8), "mono8")
    assert frame.data == b"\x00" and codec.decode(frame.data, ()).logits.shape == (10,)


def test_claims_summary_table():
    claims = [
        {
            "claim": "c1",
            "figure": 0.25,
            "threshold": "<= 0.5",
            "holds": True,
            "interval": [0.2, 0.3],
            "note": "",
        },
        {
            "claim": "c2",
            "figure": None,
            "threshold": "<= 0.4",
            "holds": None,
            "interval": None,
            "note": "ranges do not overlap",
        },
        {"claim": "c3", "figure": 1.3, "threshold": "<= 0.5", "holds": False, "note": "x"},
    ]
    table = report.claims_summary_markdown(claims)
    assert "| c1 | 0.250 (95%: 0.200-0.300) | <= 0.5 | yes |" in table
    assert "| c2 | n/a | <= 0.4 | n/a (ranges do not overlap) |" in table
    assert "| c3 | 1.300 | <= 0.5 | **no** |" in table
    from hecsb_ros.cli.bench_outputs import claims_page

    page = claims_page(claims, {"machine": {"date_utc": "2026-01-01 00:00 UTC"}})
    assert (
        page.index(table) < page.index("## Details") < page.index(report.claims_markdown(claims))
    )


def test_claim1_interval_falls_back_to_the_top_of_the_common_range():
    from hecsb_ros.core.bench import intervals

    rng = np.random.default_rng(0)
    n = 2000
    teacher = (rng.random(n) < 0.95).astype(float)

    def point(acc: float, size: float):
        return intervals.PerImage((rng.random(n) < acc).astype(float), np.full(n, size))

    # neither curve gets within 1 pp of the teacher's 95%
    a = [point(0.80, 10.0), point(0.85, 20.0)]
    b = [point(0.80, 40.0), point(0.84, 80.0)]
    idx = intervals.resample_indices(n, 200)
    at_teacher = intervals.matched_ratio_interval(a, b, teacher, idx)
    assert at_teacher["hi"] is None and at_teacher["undefined"] == 200
    out = intervals.claim1_interval(a, b, teacher, idx)
    assert (
        out["at"] == "common_top" and out["undefined"] == 0 and 0.1 < out["lo"] <= out["hi"] < 0.6
    )
    with pytest.raises(ValueError):
        intervals.matched_ratio_interval(a, b, teacher, idx, at="median")
