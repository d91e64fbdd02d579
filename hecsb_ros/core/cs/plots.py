"""Figures of the compressed-sensing experiment: Fig. 7 (error against ``m``) and
reconstructions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hecsb_ros.core.cs.data import DISPLAY_NAMES  # noqa: E402
from hecsb_ros.core.cs.experiment import METHOD_LABELS, METHODS  # noqa: E402

# The paper's colours: LASSO blue (here three shades/line styles, one per variant), VAE red,
# HECS-B green (Fig. 7).
STYLES: dict[str, dict[str, str]] = {
    "lasso-pixels": {"color": "tab:blue", "linestyle": ":", "marker": "s"},
    "lasso-dct": {"color": "tab:cyan", "linestyle": "--", "marker": "^"},
    "lasso-dct-centred": {"color": "navy", "linestyle": "-.", "marker": "v"},
    "vae": {"color": "tab:red", "linestyle": "-", "marker": "o"},
    "hecsa": {"color": "tab:green", "linestyle": "-", "marker": "o"},
}


def plot_errors(
    rows: list[dict[str, object]], path: Path | str, sigma: float | None = None
) -> None:
    """Fig. 7: mean ``||x - x_hat||_2`` (error bars: standard error) against ``m``, a panel per
    data set."""
    datasets = list(dict.fromkeys(str(r["dataset"]) for r in rows))
    fig, axes = plt.subplots(
        1, max(1, len(datasets)), figsize=(5.2 * max(1, len(datasets)), 4.2), squeeze=False
    )
    for ax, dataset in zip(axes[0], datasets):
        for method in METHODS:
            sel = sorted(
                (r for r in rows if r["dataset"] == dataset and r["method"] == method),
                key=lambda r: int(r["m"]),
            )
            if not sel:
                continue
            ms = [int(r["m"]) for r in sel]
            ax.errorbar(
                ms,
                [float(r["mean_l2"]) for r in sel],
                yerr=[float(r["sem_l2"]) for r in sel],
                capsize=3,
                label=METHOD_LABELS[method],
                **STYLES[method],
            )
        ms_all = sorted({int(r["m"]) for r in rows if r["dataset"] == dataset})
        ax.set_xscale("log")
        ax.set_xticks(ms_all)
        ax.set_xticklabels([str(m) for m in ms_all])
        ax.minorticks_off()
        ax.set_xlabel("number of measurements m")
        ax.set_ylabel(r"$\ell_2$ reconstruction error $\|x - \hat{x}\|_2$")
        ax.set_title(DISPLAY_NAMES.get(dataset, dataset))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if sigma is not None:
        fig.suptitle(f"Test-set reconstruction error, measurement noise sigma = {sigma:g}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reconstructions(
    examples: dict[str, dict[str, np.ndarray]], path: Path | str, m: int
) -> None:
    """Image grid: for each data set, rows original / each LASSO variant / VAE / HECSA at ``m``."""
    order = ["original"] + [k for k in METHODS]
    panels = [(ds, row) for ds, ex in examples.items() for row in order if row in ex]
    if not panels:
        raise ValueError("no reconstructions to plot")
    cols = max(ex["original"].shape[0] for ex in examples.values())
    fig, axes = plt.subplots(
        len(panels), cols, figsize=(1.0 * cols + 1.6, 1.0 * len(panels) + 0.6), squeeze=False
    )
    for r, (ds, row) in enumerate(panels):
        images = examples[ds][row]
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < images.shape[0]:
                ax.imshow(np.clip(images[c].reshape(28, 28), 0, 1), cmap="gray", vmin=0, vmax=1)
            for spine in ax.spines.values():
                spine.set_visible(False)
        name = "MNIST" if ds == "mnist" else ("Fashion-MNIST" if ds == "fashion-mnist" else ds)
        label = METHOD_LABELS.get(row, row.capitalize()).replace(" (", "\n(")
        axes[r][0].set_ylabel(f"{name}\n{label}", fontsize=7)
    fig.suptitle(
        f"Reconstructions from m = {m} noisy measurements (Fashion-MNIST stands in for Omniglot)",
        fontsize=9,
    )
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
