"""Which CPU convolution backend to run the codecs with: oneDNN against PyTorch's native kernels.

    python -m hecsb_ros.cli.backend_bench            # writes benchmarks/backend/
    python -m hecsb_ros.cli.backend_bench --rounds 40 --out-dir runs/backend

Each backend runs in its own process (the setting is process-wide), alternating A B A B so that
drift in the machine's load hits both alike. A process loads every codec below with that backend
and times the edge half and the server half of each, calls interleaved per frame (as
``hecsb_ros.cli.bench`` does), 1 thread, batch 1. Reported: the median over all of a backend's
rounds per codec and the ratio native / oneDNN. This is what the ``onednn`` codec setting's default
(off) rests on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

POINTS = (
    ("hecsb", 4),
    ("hecsb", 5),
    ("svb", 3),
    ("svb", 5),
    ("crbq", -1),
    ("factorized", -1),
    ("hyperprior", -1),
    ("jpeg", 90),
    ("webp", 90),
    ("png", 9),
)
BACKENDS = ("onednn", "native")


def _worker(backend: str, rounds: int, limit: int) -> dict[str, dict[str, list[float]]]:
    """Times of every point's edge and server half (us), one list per point and half."""
    import torch

    from hecsb_ros.core.bench.rate_accuracy import time_samples
    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.core.datasets import load_fashion_mnist

    images = load_fashion_mnist("test").images[:limit]
    codecs = {
        f"{n} {q}": create_codec(
            n, CodecSettings(quality=q, threads=1, onednn=backend == "onednn")
        )
        for n, q in POINTS
    }
    assert torch.backends.mkldnn.enabled == (backend == "onednn")
    samples = time_samples(codecs, images, rounds)
    return {
        k: {half: [ms * 1e3 for ms in parts[half]] for half in ("edge", "server")}
        for k, parts in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hecsb bench backend", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=150, help="timed frames per codec and process")
    p.add_argument("--repeats", type=int, default=2, help="processes per backend (alternating)")
    p.add_argument("--limit", type=int, default=200, help="test images cycled through")
    p.add_argument("--out-dir", type=Path, default=Path("benchmarks/backend"))
    p.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        json.dump(_worker(args.worker, args.rounds, args.limit), sys.stdout)
        return 0
    merged: dict[str, dict[str, dict[str, list[float]]]] = {b: {} for b in BACKENDS}
    start = time.time()
    for rep in range(args.repeats):
        for backend in BACKENDS:
            print(
                f"[backend_bench] {backend} process {rep + 1}/{args.repeats}",
                file=sys.stderr,
                flush=True,
            )
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "hecsb_ros.cli.backend_bench",
                    "--worker",
                    backend,
                    "--rounds",
                    str(args.rounds),
                    "--limit",
                    str(args.limit),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for key, halves in json.loads(out).items():
                for half, values in halves.items():
                    merged[backend].setdefault(key, {}).setdefault(half, []).extend(values)
    rows = []
    for key in merged["native"]:
        row = {"codec": key}
        for half in ("edge", "server"):
            on, nat = (float(np.median(merged[b][key][half])) for b in BACKENDS)
            row.update(
                {
                    f"{half}_onednn_us": round(on, 1),
                    f"{half}_native_us": round(nat, 1),
                    f"{half}_ratio": round(nat / on, 3),
                }
            )
        rows.append(row)
    from hecsb_ros.core.bench.report import machine_description, write_csv

    write_csv(rows, args.out_dir / "results.csv")

    m = machine_description()
    lines = [
        "# CPU convolution backend: oneDNN against PyTorch's native kernels",
        "",
        f"`python -m hecsb_ros.cli.backend_bench --rounds {args.rounds} --repeats "
        f"{args.repeats}`: each "
        f"backend in {args.repeats} processes (alternating), every codec's halves timed "
        "interleaved per frame "
        "on Fashion-MNIST test images, 1 thread, batch 1; medians of "
        f"{args.rounds * args.repeats} frames. "
        "Ratio = native / oneDNN (below 1: native is faster).",
        "",
        "| codec | edge oneDNN us | edge native us | edge ratio | server oneDNN us | server "
        "native us | "
        "server ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['codec']} | {r['edge_onednn_us']} | {r['edge_native_us']} | "
            f"{r['edge_ratio']} | "
            f"{r['server_onednn_us']} | {r['server_native_us']} | {r['server_ratio']} |"
        )
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['date_utc']}; "
        f"load average {m['load_average_1_5_15']}; {(time.time() - start) / 60:.1f} min.",
        "",
    ]
    (args.out_dir / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
