"""Which runtime to run the codecs' networks in: PyTorch native kernels, PyTorch oneDNN, ONNX
Runtime.

    python -m hecsb_ros.cli.onnx_bench                    # writes benchmarks/backend_onnx/
    python -m hecsb_ros.cli.onnx_bench --rounds 5 --out-dir runs/onnx_bench

One process, 1 thread: every learned codec's edge and server network (default rate level) and the
whole teacher, at camera scale (EfficientNet-Lite0, 224 x 224) and on Fashion-MNIST, batch 1 and 8,
timed interleaved (:mod:`hecsb_ros.core.bench.runtimes`); medians and the ratios PyTorch / ONNX
Runtime measured in the same run. Writes results.csv, README.md and runtimes.png. This is what the
``backend`` setting's default rests on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

#: (scale label, teacher setting)
SCALES = {"camera": "efficientnet_lite0", "fmnist": ""}
KINDS = ("hecsb", "svb", "crbq", "factorized", "hyperprior")


def _plot(rows: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    scales = sorted({r["scale"] for r in rows})
    fig, axes = plt.subplots(len(scales), 1, figsize=(12, 4.2 * len(scales)), squeeze=False)
    for ax, scale in zip(axes[:, 0], scales):
        sel = [r for r in rows if r["scale"] == scale]
        labels = [f"{r['model']}\n{r['half']} b{r['batch']}" for r in sel]
        xs = range(len(sel))
        width = 0.27
        for i, (key, name) in enumerate(
            (
                ("torch_native_ms", "PyTorch native"),
                ("torch_onednn_ms", "PyTorch oneDNN"),
                ("onnxruntime_ms", "ONNX Runtime"),
            )
        ):
            ax.bar([x + (i - 1) * width for x in xs], [r[key] for r in sel], width, label=name)
        ax.set_yscale("log")
        ax.set_ylabel("ms per call (median, 1 thread)")
        ax.set_title(f"{scale}: network run time per runtime")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _markdown(
    rows: list[dict], args: argparse.Namespace, machine: dict, minutes: float, versions: dict
) -> str:
    lines = [
        "# Network runtimes: PyTorch native, PyTorch oneDNN, ONNX Runtime",
        "",
        f"`python -m hecsb_ros.cli.onnx_bench --rounds {args.rounds}`: one process, 1 "
        "thread, every learned "
        "codec's edge network (normalised image -> latent) and server network (decoded "
        "latent -> logits) at "
        "its default rate level, and the whole teacher, batch 1 and 8; all calls interleaved "
        "(each round times "
        "every network, batch and runtime once, runtimes in rotating order); medians over "
        f"{args.rounds} rounds. Entropy coding is not timed (the same Python code for every "
        "runtime). "
        "Ratio = PyTorch time / ONNX Runtime time (above 1: ONNX Runtime is faster).",
        "",
    ]
    for scale in sorted({r["scale"] for r in rows}):
        lines += [
            f"## {scale}",
            "",
            "| network | half | batch | PyTorch native ms | PyTorch "
            "oneDNN ms | ONNX Runtime ms | "
            "native / ORT | oneDNN / ORT |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            if r["scale"] == scale:
                lines.append(
                    f"| {r['model']} | {r['half']} | {r['batch']} | "
                    f"{r['torch_native_ms']:.3f} | "
                    f"{r['torch_onednn_ms']:.3f} | {r['onnxruntime_ms']:.3f} | "
                    f"{r['native_over_ort']:.2f} | "
                    f"{r['onednn_over_ort']:.2f} |"
                )
        lines.append("")
    lines += [
        f"Machine: {machine['cpu']}, {machine['cores']} cores (shared with other work), "
        f"{machine['os']}; "
        f"torch {versions['torch']}, ONNX Runtime {versions['onnxruntime']}, onnx "
        f"{versions['onnx']}; "
        f"{machine['date_utc']}; load average at the end {machine['load_average_1_5_15']}; "
        f"{minutes:.1f} min.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hecsb bench onnx", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--rounds", type=int, default=12, help="timed calls per network, batch and runtime"
    )
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--scales", nargs="+", choices=tuple(SCALES), default=list(SCALES))
    p.add_argument("--kinds", nargs="+", default=list(KINDS), help="learned codecs")
    p.add_argument(
        "--onnx-cache",
        default="",
        help="ONNX cache folder ('' = a temporary folder: exported afresh)",
    )
    p.add_argument("--out-dir", type=Path, default=Path("benchmarks/backend_onnx"))
    args = p.parse_args(argv)
    from hecsb_ros.core.bench.report import machine_description, write_csv
    from hecsb_ros.core.bench.runtimes import networks_for, summarise, time_networks
    from hecsb_ros.core.onnx_export import versions
    from hecsb_ros.core.onnx_runtime import require_onnxruntime

    try:
        require_onnxruntime()
    except ImportError as exc:
        print(f"onnx_bench: {exc}", file=sys.stderr)
        return 2

    def log(text: str) -> None:
        print(f"[onnx_bench] {text}", file=sys.stderr, flush=True)

    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.onnx_cache or tmp
        nets = []
        for scale in args.scales:
            nets += networks_for(SCALES[scale], list(args.kinds), cache, scale)
            log(f"{scale}: {len(nets)} networks loaded and exported")
        times = time_networks(nets, tuple(args.batches), args.rounds, log=log)
    rows = summarise(times)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out_dir / "results.csv")
    _plot(rows, args.out_dir / "runtimes.png")
    text = _markdown(rows, args, machine_description(), (time.time() - start) / 60, versions())
    (args.out_dir / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
