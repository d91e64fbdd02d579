"""Command-line tool for the compressed-sensing experiment (section 4.1, Fig. 7; issue 5).

Example (the full run)::

    python -m hecsb_ros.cli.cs_experiment --out benchmarks/cs --threads 2

The methods are three LASSO decoders with the same random Gaussian ``A`` (sparse in pixels, sparse
in the 2-D DCT, sparse in the DCT around the mean training image), the VAE prior of Bora et al. and
HECSA. ``--quick`` runs a small version (subsets, few epochs) for CI. Writes ``results.csv``,
``fig7_errors.png``, ``reconstructions_m25.png`` and ``run.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from hecsb_ros.core.cs.experiment import (
    LASSO_VARIANTS,
    METHODS,
    CSConfig,
    config_dict,
    format_table,
    hecsa_losses,
    run_experiment,
    write_csv,
)
from hecsb_ros.core.cs.plots import plot_errors, plot_reconstructions

OMNIGLOT_NOTE = (
    "Note: the paper uses MNIST and Omniglot; Omniglot cannot be had offline here, "
    "so Fashion-MNIST stands in for it."
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hecsb cs-experiment",
        description="Compressed sensing y = W x + eps: LASSO (pixel and DCT bases), VAE (Bora et "
        "al.) "
        "and HECSA (learned W, ||W||_F <= k) over m; reproduces Fig. 7 of the seed "
        "paper.",
    )
    p.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        choices=["mnist", "fashion-mnist"],
        help="data sets (default: mnist fashion-mnist)",
    )
    p.add_argument(
        "--m",
        nargs="+",
        type=int,
        default=None,
        dest="ms",
        help="numbers of measurements (default: 2 5 10 25 50 100)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        choices=[*METHODS, "lasso"],
        help="methods to run (default: all); 'lasso' stands for every LASSO variant",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        help="measurement-noise std, training and test (default 0.1)",
    )
    p.add_argument(
        "--quick", action="store_true", help="small subsets and few epochs (CI; < 3 min)"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/cs"), help="output folder")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: 1 with --quick, else 2)"
    )
    p.add_argument(
        "--train-subset", type=int, default=None, help="use the first N training images"
    )
    p.add_argument(
        "--test-subset",
        type=int,
        default=None,
        help="score all methods on the first N test images (default 1000; quick 100)",
    )
    p.add_argument("--hecsa-epochs", type=int, default=None)
    p.add_argument(
        "--hecsa-noise-samples",
        type=int,
        default=None,
        help="noise draws per image and step in HECSA training",
    )
    p.add_argument("--vae-epochs", type=int, default=None)
    p.add_argument("--vae-steps", type=int, default=None, help="Adam steps of the latent search")
    p.add_argument("--vae-restarts", type=int, default=None)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def config_from_args(args: argparse.Namespace) -> CSConfig:
    """Defaults (or the quick defaults) overridden by the flags that were given."""
    cfg = CSConfig.quick() if args.quick else CSConfig()
    overrides: dict[str, object] = {}
    mapping = {
        "datasets": "datasets",
        "ms": "ms",
        "methods": "methods",
        "sigma": "sigma",
        "seed": "seed",
        "train_subset": "train_subset",
        "test_subset": "test_subset",
        "hecsa_epochs": "hecsa_epochs",
        "hecsa_noise_samples": "hecsa_noise_samples",
        "vae_epochs": "vae_epochs",
        "vae_steps": "vae_steps",
        "vae_restarts": "vae_restarts",
    }
    for arg, key in mapping.items():
        value = getattr(args, arg)
        if value is not None:
            overrides[key] = tuple(value) if isinstance(value, list) else value
    if "methods" in overrides:
        expanded = [
            v
            for meth in overrides["methods"]  # type: ignore[union-attr]
            for v in (LASSO_VARIANTS if meth == "lasso" else (meth,))
        ]
        overrides["methods"] = tuple(meth for meth in METHODS if meth in expanded)
    if any(m <= 0 or m >= 784 for m in overrides.get("ms", cfg.ms)):  # type: ignore[union-attr]
        raise SystemExit("every m must satisfy 0 < m < n = 784")
    return replace(cfg, **overrides)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Run the experiment, write CSV, figures and ``run.json``, print the table."""
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    threads = args.threads if args.threads is not None else (1 if args.quick else 2)
    torch.set_num_threads(max(1, threads))
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    print(OMNIGLOT_NOTE)
    test_note = f"the first {cfg.test_subset}" if cfg.test_subset else "all"
    print(
        f"All methods are scored on {test_note} test images of each data set, with the same "
        "noise "
        f"realisation (sigma = {cfg.sigma:g}) on each image; torch threads: {threads}."
    )
    if "hecsa" in cfg.methods and 0 < cfg.hecsa_epochs:
        print(
            "HECSA: Bernoulli likelihood p(x|y) (sigmoid decoder), k = ||A||_F of the Gaussian A."
        )
    start = time.perf_counter()
    result = run_experiment(cfg, progress=not args.no_progress)
    wall = time.perf_counter() - start

    csv_path = out_dir / "results.csv"
    write_csv(result.rows, csv_path)
    plot_errors(result.rows, out_dir / "fig7_errors.png", sigma=cfg.sigma)
    grid_path = None
    if result.grid_m is not None and any(len(ex) > 1 for ex in result.examples.values()):
        grid_path = out_dir / f"reconstructions_m{result.grid_m}.png"
        plot_reconstructions(result.examples, grid_path, result.grid_m)
    command = "python -m hecsb_ros.cli.cs_experiment " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    run_info = {
        "command": command.strip(),
        "wall_seconds": round(wall, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, torch threads "
        f"{threads}",
        "torch": torch.__version__,
        "note": OMNIGLOT_NOTE,
        "config": config_dict(cfg),
        "references": result.references,
        "histories": {k: v for k, v in result.histories.items()},
    }
    (out_dir / "run.json").write_text(json.dumps(run_info, indent=1, default=float) + "\n")

    print()
    print(format_table(result.rows))
    losses = hecsa_losses(result.rows)
    if losses:
        print(
            "HECSA does NOT have the lowest mean error at: "
            + ", ".join(f"{d} m={m} (best: {w})" for d, m, w in losses)
        )
    elif "hecsa" in cfg.methods and len(cfg.methods) > 1:
        print("HECSA has the lowest mean error at every m on every data set.")
    print(
        f"\nWrote {csv_path}, {out_dir / 'fig7_errors.png'}"
        + (f", {grid_path}" if grid_path else "")
        + f", {out_dir / 'run.json'}"
    )
    print(f"Wall time: {wall:.1f} s")
    print(OMNIGLOT_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
