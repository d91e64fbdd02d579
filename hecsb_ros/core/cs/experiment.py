"""The compressed-sensing experiment of section 4.1 (Fig. 7): LASSO, VAE and HECSA over ``m``.

LASSO comes in three variants (:data:`LASSO_VARIANTS`): sparse in pixels, sparse in the 2-D DCT,
and sparse in the DCT around the mean training image. For every data set and ``m`` one random
Gaussian ``A`` (entries N(0, 1/m)) serves all LASSO variants and the VAE,
and HECSA's learned ``W`` is constrained to ``||W||_F <= k = ||A||_F``, the norm of that very
matrix, so the learned and random encoders measure with the same energy. The test noise
``eps ~ N(0, sigma^2 I_m)`` is drawn once per (data set, ``m``, image) and added to ``A x`` and to
``W x`` alike; all methods are scored on the same test images by ``||x - x_hat||_2``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hecsb_ros.core.cs.data import (
    DISPLAY_NAMES,
    CSData,
    l2_errors,
    load_cs_data,
    mean_and_sem,
    measurement_noise,
    stream_seed,
)
from hecsb_ros.core.cs.hecsa import HECSA, train_hecsa
from hecsb_ros.core.cs.lasso import (
    DEFAULT_ALPHAS,
    LassoVariant,
    alpha_at_grid_edge,
    lasso_reconstruct,
    select_alpha,
)
from hecsb_ros.core.cs.vae import VAE, train_vae, vae_reconstruct
from hecsb_ros.core.measurement import gaussian_measurement_matrix

#: The LASSO decoders: ``x = mu + Psi s`` with sparse ``s`` (see :mod:`.lasso`).
LASSO_VARIANTS: dict[str, LassoVariant] = {
    "lasso-pixels": LassoVariant(basis="pixels"),
    "lasso-dct": LassoVariant(basis="dct"),
    "lasso-dct-centred": LassoVariant(basis="dct", centred=True),
}
METHODS: tuple[str, ...] = (*LASSO_VARIANTS, "vae", "hecsa")
METHOD_LABELS: dict[str, str] = {
    "lasso-pixels": "LASSO (pixels)",
    "lasso-dct": "LASSO (DCT)",
    "lasso-dct-centred": "LASSO (DCT, mean-centred)",
    "vae": "VAE",
    "hecsa": "HECSA",
}
CSV_COLUMNS: tuple[str, ...] = (
    "dataset",
    "method",
    "m",
    "sigma",
    "n_test",
    "mean_l2",
    "sem_l2",
    "hyperparameter",
    "nonzeros",
    "w_frobenius",
    "a_frobenius",
    "norm_ratio",
    "seconds",
)


@dataclass(frozen=True)
class CSConfig:
    """Settings of one run; :meth:`quick` gives the small CI configuration."""

    datasets: tuple[str, ...] = ("mnist", "fashion-mnist")
    ms: tuple[int, ...] = (2, 5, 10, 25, 50, 100)
    methods: tuple[str, ...] = METHODS
    sigma: float = 0.1
    seed: int = 0
    train_subset: int | None = None
    val_size: int = 1000
    test_subset: int | None = 1000
    lasso_val_images: int = 100
    lasso_alphas: tuple[float, ...] = DEFAULT_ALPHAS
    vae_epochs: int = 10
    vae_restarts: int = 5
    vae_steps: int = 200
    vae_lr: float = 0.1
    vae_lambda: float = 0.1
    hecsa_epochs: int = 12
    hecsa_batch: int = 128
    hecsa_lr: float = 1e-3
    hecsa_noise_samples: int = 1
    grid_m: int = 25
    grid_images: int = 8

    @classmethod
    def quick(cls, **overrides: object) -> "CSConfig":
        """Small subsets and few epochs: the whole grid in well under three minutes."""
        base = cls(
            train_subset=3000,
            val_size=500,
            test_subset=100,
            lasso_val_images=30,
            vae_epochs=5,
            vae_restarts=3,
            vae_steps=100,
            hecsa_epochs=8,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]


@dataclass
class CSOutput:
    """Result rows (one per data set, method and ``m``), example reconstructions and logs."""

    config: CSConfig
    rows: list[dict[str, object]] = field(default_factory=list)
    examples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    histories: dict[str, object] = field(default_factory=dict)
    references: dict[str, dict[str, float]] = field(default_factory=dict)
    grid_m: int | None = None


def _row(
    cfg: CSConfig,
    dataset: str,
    method: str,
    m: int,
    errors: np.ndarray,
    seconds: float,
    a_norm: float,
    hyper: str = "",
    w_norm: float | None = None,
    nonzeros: float | None = None,
) -> dict[str, object]:
    mean, sem = mean_and_sem(errors)
    return {
        "dataset": dataset,
        "method": method,
        "m": m,
        "sigma": cfg.sigma,
        "n_test": len(errors),
        "mean_l2": round(mean, 5),
        "sem_l2": round(sem, 5),
        "hyperparameter": hyper,
        "nonzeros": "" if nonzeros is None else round(nonzeros, 2),
        "w_frobenius": "" if w_norm is None else round(w_norm, 4),
        "a_frobenius": round(a_norm, 4),
        "norm_ratio": "" if w_norm is None else round(w_norm / a_norm, 4),
        "seconds": round(seconds, 2),
    }


def run_dataset(
    cfg: CSConfig,
    index: int,
    data: CSData,
    out: CSOutput,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> None:
    """All methods and all ``m`` on one data set; appends to ``out``."""
    name, n = data.name, data.n
    X_test = data.test
    n_test = X_test.shape[0]
    grid_m = out.grid_m
    mean_image = data.train.double().mean(dim=0)
    zeros_mean, _ = mean_and_sem(l2_errors(X_test, torch.zeros_like(X_test)))
    mean_mean, _ = mean_and_sem(l2_errors(X_test, mean_image.expand_as(X_test)))
    out.references[name] = {"zeros": round(zeros_mean, 5), "mean_image": round(mean_mean, 5)}
    log(
        f"[{name}] reference predictions on the test images: all zeros {zeros_mean:.3f}, "
        f"mean training image {mean_mean:.3f}"
    )
    vae: VAE | None = None
    if "vae" in cfg.methods:
        t0 = time.perf_counter()
        torch.manual_seed(stream_seed(cfg.seed, index, 0, 1))
        vae = VAE(n=n)
        hist = train_vae(
            vae,
            data.train,
            epochs=cfg.vae_epochs,
            seed=stream_seed(cfg.seed, index, 0, 2),
            progress=progress,
            desc=f"{name}: VAE training",
        )
        out.histories[f"{name}/vae"] = hist
        log(
            f"[{name}] VAE trained in {time.perf_counter() - t0:.1f}s (final -ELBO {hist[-1]:.1f})"
            if hist
            else f"[{name}] VAE not trained (0 epochs)"
        )
    if grid_m is not None:
        out.examples[name] = {"original": X_test[: cfg.grid_images].numpy().copy()}
    for m in cfg.ms:
        gen = torch.Generator().manual_seed(stream_seed(cfg.seed, index, m, 3))
        A = gaussian_measurement_matrix(m, n, generator=gen)
        a_norm = float(A.norm())
        noise = measurement_noise(n_test, m, cfg.sigma, stream_seed(cfg.seed, index, m, 4))
        Y = X_test @ A.t() + noise
        recon: dict[str, torch.Tensor] = {}
        X_val = data.val[: cfg.lasso_val_images]
        noise_val = measurement_noise(
            X_val.shape[0], m, cfg.sigma, stream_seed(cfg.seed, index, m, 5)
        )
        for method, variant in LASSO_VARIANTS.items():
            if method not in cfg.methods:
                continue
            t0 = time.perf_counter()
            alpha, scores = select_alpha(
                A, X_val, noise_val, cfg.lasso_alphas, variant=variant, mean=mean_image
            )
            x_np, s_np = lasso_reconstruct(
                A, Y, alpha, variant=variant, mean=mean_image, return_coefficients=True
            )
            x_hat = torch.from_numpy(x_np).float()
            recon[method] = x_hat
            out.histories[f"{name}/{method}/m={m}"] = scores
            edge = alpha_at_grid_edge(alpha, cfg.lasso_alphas)
            hyper = f"alpha={alpha:g}" + (f" (grid end: {edge})" if edge else "")
            if edge:
                log(
                    f"[{name}] m={m} {METHOD_LABELS[method]}: the chosen alpha {alpha:g} is at "
                    "the "
                    f"{edge} end of the grid"
                )
            nonzeros = float((np.abs(s_np) > 0).sum(axis=1).mean())
            out.rows.append(
                _row(
                    cfg,
                    name,
                    method,
                    m,
                    l2_errors(X_test, x_hat),
                    time.perf_counter() - t0,
                    a_norm,
                    hyper=hyper,
                    nonzeros=nonzeros,
                )
            )
        if vae is not None:
            t0 = time.perf_counter()
            x_hat, _ = vae_reconstruct(
                vae,
                A,
                Y,
                lam=cfg.vae_lambda,
                restarts=cfg.vae_restarts,
                steps=cfg.vae_steps,
                lr=cfg.vae_lr,
                seed=stream_seed(cfg.seed, index, m, 6),
                progress=progress,
                desc=f"{name} m={m}: VAE-CS",
            )
            recon["vae"] = x_hat
            out.rows.append(
                _row(
                    cfg,
                    name,
                    "vae",
                    m,
                    l2_errors(X_test, x_hat),
                    time.perf_counter() - t0,
                    a_norm,
                    hyper=f"lambda={cfg.vae_lambda:g},restarts={cfg.vae_restarts}",
                )
            )
        if "hecsa" in cfg.methods:
            t0 = time.perf_counter()
            torch.manual_seed(stream_seed(cfg.seed, index, m, 7))
            model = HECSA(n, m, max_norm=a_norm, sigma=cfg.sigma)
            hist = train_hecsa(
                model,
                data.train,
                epochs=cfg.hecsa_epochs,
                batch_size=cfg.hecsa_batch,
                lr=cfg.hecsa_lr,
                noise_samples=cfg.hecsa_noise_samples,
                seed=stream_seed(cfg.seed, index, m, 8),
                X_val=data.val,
                progress=progress,
                desc=f"{name} m={m}: HECSA",
            )
            out.histories[f"{name}/hecsa/m={m}"] = hist
            with torch.no_grad():
                x_hat = model.reconstruct(model.measure(X_test, noise=noise))
            recon["hecsa"] = x_hat
            w_norm = model.frobenius_norm()
            out.rows.append(
                _row(
                    cfg,
                    name,
                    "hecsa",
                    m,
                    l2_errors(X_test, x_hat),
                    time.perf_counter() - t0,
                    a_norm,
                    hyper=f"epochs={cfg.hecsa_epochs}",
                    w_norm=w_norm,
                )
            )
        if m == grid_m:
            for method, x_hat in recon.items():
                out.examples[name][method] = x_hat[: cfg.grid_images].numpy().copy()
        summary = ", ".join(
            f"{METHOD_LABELS[r['method']]} {r['mean_l2']:.3f}"
            for r in out.rows
            if r["dataset"] == name and r["m"] == m
        )
        log(f"[{name}] m={m}: {summary}")


def run_experiment(
    cfg: CSConfig, progress: bool = True, log: Callable[[str], None] = print
) -> CSOutput:
    """Run every data set of ``cfg``; the reconstruction grid uses the ``m`` closest to
    ``grid_m``."""
    unknown = set(cfg.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {list(METHODS)}")
    grid_m = min(cfg.ms, key=lambda m: (abs(m - cfg.grid_m), m)) if cfg.ms else None
    out = CSOutput(config=cfg, grid_m=grid_m)
    for index, name in enumerate(cfg.datasets):
        data = load_cs_data(
            name, train_subset=cfg.train_subset, val_size=cfg.val_size, test_subset=cfg.test_subset
        )
        log(
            f"[{name}] {DISPLAY_NAMES.get(name, name)}: {data.train.shape[0]} training, "
            f"{data.val.shape[0]} validation, {data.test.shape[0]} test images (n = {data.n})"
        )
        run_dataset(cfg, index, data, out, progress=progress, log=log)
    return out


def write_csv(rows: list[dict[str, object]], path: Path | str) -> None:
    """Write the result rows with :data:`CSV_COLUMNS`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})


def read_csv(path: Path | str) -> list[dict[str, object]]:
    """Read rows written by :func:`write_csv` (``m`` as int, errors and norms as float)."""
    rows: list[dict[str, object]] = []
    with Path(path).open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, object] = dict(raw)
            row["m"] = int(raw["m"])
            for key in ("mean_l2", "sem_l2", "sigma", "a_frobenius"):
                row[key] = float(raw[key])
            for key in ("w_frobenius", "norm_ratio", "nonzeros"):
                row[key] = float(raw[key]) if raw.get(key) else ""
            rows.append(row)
    return rows


def format_table(rows: list[dict[str, object]], markdown: bool = False) -> str:
    """Mean (+- s.e.) ``||x - x_hat||_2`` per data set and method (rows) and ``m`` (columns)."""
    ms = sorted({int(r["m"]) for r in rows})
    keys = list(dict.fromkeys((str(r["dataset"]), str(r["method"])) for r in rows))
    lookup = {(r["dataset"], r["method"], int(r["m"])): r for r in rows}
    header = ["data set", "method"] + [f"m={m}" for m in ms]
    body = []
    for dataset, method in keys:
        cells = []
        for m in ms:
            r = lookup.get((dataset, method, m))
            cells.append(
                "" if r is None else f"{float(r['mean_l2']):.2f} ± {float(r['sem_l2']):.2f}"
            )
        body.append([dataset, METHOD_LABELS.get(method, method)] + cells)
    ratios = [r for r in rows if r["method"] == "hecsa" and r["norm_ratio"] != ""]
    by_ds = list(dict.fromkeys(str(r["dataset"]) for r in ratios))
    for dataset in by_ds:
        cells = [
            f"{float(lookup[(dataset, 'hecsa', m)]['norm_ratio']):.3f}"
            if (dataset, "hecsa", m) in lookup
            else ""
            for m in ms
        ]
        body.append([dataset, "‖W‖F/‖A‖F"] + cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
        + [fmt.format(*row) for row in body]
    )


def hecsa_losses(rows: list[dict[str, object]]) -> list[tuple[str, int, str]]:
    """``(data set, m, winner)`` wherever another method has a lower mean error than HECSA."""
    lookup: dict[tuple[str, int], dict[str, float]] = {}
    for r in rows:
        lookup.setdefault((str(r["dataset"]), int(r["m"])), {})[str(r["method"])] = float(
            r["mean_l2"]
        )
    losses = []
    for (dataset, m), errs in lookup.items():
        if "hecsa" in errs and len(errs) > 1:
            winner = min(errs, key=errs.__getitem__)
            if winner != "hecsa":
                losses.append((dataset, m, winner))
    return losses


def config_dict(cfg: CSConfig) -> dict[str, object]:
    """The configuration as plain JSON-able values."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
