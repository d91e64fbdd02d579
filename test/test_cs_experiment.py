"""Tests of the compressed-sensing experiment (issue 5; seed paper sections 3.1-3.2, 4.1)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from hecsb_ros.core.cs.data import mean_and_sem, measurement_noise, stream_seed
from hecsb_ros.core.cs.experiment import (
    CSV_COLUMNS,
    METHODS,
    format_table,
    hecsa_losses,
    read_csv,
    write_csv,
)
from hecsb_ros.core.cs.hecsa import HECSA, train_hecsa
from hecsb_ros.core.cs.lasso import (
    DEFAULT_ALPHAS,
    LassoVariant,
    alpha_at_grid_edge,
    dct_basis,
    lasso_path_at,
    lasso_reconstruct,
    select_alpha,
)
from hecsb_ros.core.cs.vae import VAE, latent_objective, train_vae, vae_reconstruct
from hecsb_ros.core.datasets import DatasetNotFound, load_dataset
from hecsb_ros.core.measurement import MeasurementOperator, gaussian_measurement_matrix

pytestmark = [pytest.mark.slow]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _structured_data(n_images: int, n: int = 64, latent: int = 3, seed: int = 0) -> torch.Tensor:
    """Images in [0, 1] on a low-dimensional manifold: ``sigmoid(U z + b)``."""
    gen = torch.Generator().manual_seed(seed)
    U = torch.randn(n, latent, generator=gen) * 2.0
    b = torch.randn(n, generator=gen)
    z = torch.randn(n_images, latent, generator=gen)
    return torch.sigmoid(z @ U.t() + b)


def test_gaussian_measurement_matrix_scale() -> None:
    A = gaussian_measurement_matrix(50, 784, torch.Generator().manual_seed(0))
    assert A.shape == (50, 784)
    assert abs(float(A.var()) - 1 / 50) < 0.002
    assert abs(float(A.norm()) - math.sqrt(784)) < 0.05 * math.sqrt(784)


def test_noise_is_reproducible_and_scaled() -> None:
    a = measurement_noise(2000, 10, 0.1, seed=stream_seed(0, 1, 10, 4))
    b = measurement_noise(2000, 10, 0.1, seed=stream_seed(0, 1, 10, 4))
    c = measurement_noise(2000, 10, 0.1, seed=stream_seed(0, 1, 25, 4))
    assert torch.equal(a, b) and not torch.equal(a, c[:, :10])
    assert abs(float(a.std()) - 0.1) < 0.005


def test_mean_and_sem() -> None:
    mean, sem = mean_and_sem(np.array([1.0, 2.0, 3.0, 4.0]))
    assert mean == pytest.approx(2.5)
    assert sem == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)


def _dct_sparse_images(
    n_images: int, side: int, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``x = Psi s`` with ``k`` non-zero DCT coefficients each (and the codes ``s``)."""
    rng = np.random.default_rng(seed)
    n = side * side
    S = np.zeros((n_images, n))
    for row in S:
        support = rng.choice(n, k, replace=False)
        row[support] = rng.choice([-1.0, 1.0], k) * rng.uniform(1.0, 2.0, k)
    return S @ dct_basis(side).T, S


def test_dct_basis_is_orthonormal_2d_idct() -> None:
    from scipy.fft import dctn, idctn

    psi = dct_basis(28)
    assert psi.shape == (784, 784)
    np.testing.assert_allclose(psi.T @ psi, np.eye(784), atol=1e-12)
    s = np.random.default_rng(0).standard_normal(784)
    np.testing.assert_allclose(psi @ s, idctn(s.reshape(28, 28), norm="ortho").ravel(), atol=1e-12)
    np.testing.assert_allclose(
        psi.T @ s, dctn(s.reshape(28, 28), norm="ortho").ravel(), atol=1e-12
    )
    np.testing.assert_allclose(psi[:, 0], 1 / 28)  # the DC atom is the constant image


def test_lasso_recovers_exactly_sparse_vector() -> None:
    rng = np.random.default_rng(0)
    n, m, s = 200, 80, 5
    X = np.zeros((3, n))
    for row in X:
        row[rng.choice(n, s, replace=False)] = rng.uniform(1.0, 2.0, s)
    A = gaussian_measurement_matrix(m, n, torch.Generator().manual_seed(1)).numpy()
    x_hat = lasso_reconstruct(A, X @ A.T, alpha=1e-4)
    assert x_hat.shape == X.shape
    assert np.linalg.norm(x_hat - X, axis=1).max() < 0.05 * np.linalg.norm(X, axis=1).min()


def test_lasso_path_solutions_satisfy_optimality_conditions() -> None:
    """LARS-lasso gives the exact minimiser of 1/(2m)||y - B s||^2 + alpha ||s||_1 (subgradient
    test)."""
    rng = np.random.default_rng(3)
    m, n = 30, 120
    B = rng.standard_normal((m, n)) / math.sqrt(m)
    y = B @ np.where(
        rng.random(n) < 0.1, rng.standard_normal(n), 0.0
    ) + 0.05 * rng.standard_normal(m)
    alphas = (1e-4, 3e-3, 0.05, 0.2, 50.0)
    S = lasso_path_at(B, y, alphas)
    for alpha, s in zip(alphas, S):
        # Optimality: grad = alpha sign(s) on the support, |grad| <= alpha off it.
        grad = B.T @ (y - B @ s) / m
        on = s != 0
        assert np.all(np.abs(grad) <= alpha * (1 + 1e-6) + 1e-10)
        np.testing.assert_allclose(grad[on], alpha * np.sign(s[on]), rtol=1e-5, atol=1e-9)
    assert not S[-1].any()  # above alpha_max = ||B^T y||_inf / m the solution is zero


def test_lasso_dct_recovers_dct_sparse_signal_far_better_than_pixels() -> None:
    side, m, k = 16, 80, 6
    X, _ = _dct_sparse_images(4, side, k, seed=1)
    A = gaussian_measurement_matrix(m, side * side, torch.Generator().manual_seed(2)).numpy()
    Y = X @ A.T  # noiseless
    rel_dct = np.linalg.norm(
        lasso_reconstruct(A, Y, 1e-5, variant=LassoVariant("dct")) - X, axis=1
    ) / np.linalg.norm(X, axis=1)
    rel_pix = np.linalg.norm(
        lasso_reconstruct(A, Y, 1e-5, variant=LassoVariant("pixels")) - X, axis=1
    ) / np.linalg.norm(X, axis=1)
    assert rel_dct.max() < 0.02
    assert rel_pix.min() > 0.3 and rel_pix.mean() > 20 * rel_dct.mean()


def test_mean_centred_lasso_returns_the_mean_for_large_alpha() -> None:
    rng = np.random.default_rng(4)
    mu = rng.uniform(0, 1, 64)
    A = gaussian_measurement_matrix(10, 64, torch.Generator().manual_seed(3)).numpy()
    Y = rng.standard_normal((3, 10))
    x_hat, s_hat = lasso_reconstruct(
        A, Y, 1e3, variant=LassoVariant("dct", centred=True), mean=mu, return_coefficients=True
    )
    np.testing.assert_allclose(x_hat, np.tile(mu, (3, 1)))
    assert not s_hat.any()
    assert not lasso_reconstruct(A, Y, 1e3, variant=LassoVariant("dct")).any()
    with pytest.raises(ValueError):
        lasso_reconstruct(A, Y, 0.1, variant=LassoVariant("dct", centred=True))


def test_lasso_alpha_selection_picks_an_interior_alpha() -> None:
    """Noisy DCT-sparse signals: too small an alpha fits the noise, too large shrinks to zero."""
    side, m, k, sigma = 16, 60, 5, 0.1
    X, _ = _dct_sparse_images(12, side, k, seed=5)
    A = gaussian_measurement_matrix(m, side * side, torch.Generator().manual_seed(6)).numpy()
    noise = sigma * np.random.default_rng(7).standard_normal((12, m))
    alpha, scores = select_alpha(A, X, noise, DEFAULT_ALPHAS, variant=LassoVariant("dct"))
    assert alpha in DEFAULT_ALPHAS and scores[alpha] == min(scores.values())
    assert alpha_at_grid_edge(alpha, DEFAULT_ALPHAS) == ""
    grid = sorted(scores)
    assert scores[grid[0]] > 1.25 * scores[alpha] and scores[grid[-1]] > 1.25 * scores[alpha]
    assert (
        alpha_at_grid_edge(grid[0], grid) == "low" and alpha_at_grid_edge(grid[-1], grid) == "high"
    )


def test_hecsa_uses_shared_operator_and_respects_norm_constraint() -> None:
    torch.manual_seed(0)
    X = _structured_data(512, n=64)
    model = HECSA(64, 8, max_norm=1.5, sigma=0.1, hidden=32)
    assert isinstance(model.encoder, MeasurementOperator)
    assert model.frobenius_norm() <= 1.5 + 1e-5
    # A large learning rate pushes W outwards (a bigger W beats the noise); projection must hold
    # it.
    history = train_hecsa(
        model, X, epochs=3, batch_size=64, lr=0.05, noise_samples=2, progress=False
    )
    assert all(h["w_norm"] <= 1.5 + 1e-4 for h in history)
    assert model.frobenius_norm() <= 1.5 + 1e-4
    assert model.encoder.weight.shape == (8, 64)
    assert not any(name.endswith("bias") for name, _ in model.encoder.named_parameters())


def test_hecsa_beats_mean_image_predictor() -> None:
    torch.manual_seed(0)
    X = _structured_data(3000, n=64, seed=3)
    X_train, X_test = X[:2500], X[2500:]
    m = 6
    model = HECSA(64, m, max_norm=math.sqrt(64), sigma=0.1, hidden=64)
    history = train_hecsa(
        model, X_train, epochs=10, batch_size=64, lr=3e-3, seed=1, progress=False
    )
    assert history[-1]["nll"] < history[0]["nll"]
    noise = measurement_noise(X_test.shape[0], m, 0.1, seed=5)
    with torch.no_grad():
        x_hat = model.reconstruct(model.measure(X_test, noise=noise))
    err = (X_test - x_hat).norm(dim=1).mean()
    baseline = (X_test - X_train.mean(0)).norm(dim=1).mean()
    assert float(err) < 0.6 * float(baseline)


def test_vae_latent_optimisation_reduces_measurement_residual() -> None:
    torch.manual_seed(0)
    X = _structured_data(600, n=64, seed=4)
    vae = VAE(n=64, latent=4, hidden=32)
    history = train_vae(vae, X[:500], epochs=15, batch_size=50, lr=3e-3, seed=0, progress=False)
    assert len(history) == 15 and all(np.isfinite(history)) and history[-1] < history[0]
    A = gaussian_measurement_matrix(10, 64, torch.Generator().manual_seed(7))
    Y = X[500:540] @ A.t() + measurement_noise(40, 10, 0.1, seed=8)
    z0 = torch.randn(40, 4, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = latent_objective(vae, A, Y, z0, lam=0.1)
    x_hat, after = vae_reconstruct(vae, A, Y, lam=0.1, restarts=3, steps=60, lr=0.05, seed=1)
    assert x_hat.shape == (40, 64)
    assert float(after.mean()) < 0.8 * float(before.mean())
    residual = (Y - x_hat @ A.t()).norm(dim=1)
    assert float(residual.mean()) < float(
        (Y - vae.generate(z0).detach() @ A.t()).norm(dim=1).mean()
    )
    assert all(p.requires_grad for p in vae.parameters())


def test_csv_roundtrip_table_and_losses(tmp_path) -> None:
    rows = []
    for method, err in (("lasso-pixels", 9.0), ("lasso-dct", 8.0), ("vae", 6.0), ("hecsa", 5.0)):
        for m in (2, 25):
            rows.append(
                {
                    "dataset": "mnist",
                    "method": method,
                    "m": m,
                    "sigma": 0.1,
                    "n_test": 10,
                    "mean_l2": err if not (method == "vae" and m == 2) else 4.0,
                    "sem_l2": 0.1,
                    "hyperparameter": "",
                    "nonzeros": 3.5 if method.startswith("lasso") else "",
                    "w_frobenius": 27.0 if method == "hecsa" else "",
                    "a_frobenius": 28.0,
                    "norm_ratio": 27 / 28 if method == "hecsa" else "",
                    "seconds": 1.0,
                }
            )
    write_csv(rows, tmp_path / "r.csv")
    back = read_csv(tmp_path / "r.csv")
    assert len(back) == 8 and back[0]["m"] == 2 and back[0]["nonzeros"] == 3.5
    assert hecsa_losses(back) == [("mnist", 2, "vae")]
    table = format_table(back, markdown=True)
    assert "HECSA" in table and "m=25" in table and "0.964" in table
    assert "LASSO (pixels)" in table and "LASSO (DCT)" in table


def _datasets_available() -> bool:
    try:
        load_dataset("mnist", "test")
        load_dataset("fashion-mnist", "test")
    except DatasetNotFound:
        return False
    return True


def test_quick_cli_end_to_end(tmp_path, capsys, missing_data) -> None:
    if not _datasets_available():
        missing_data("MNIST / Fashion-MNIST not installed")
    from hecsb_ros.cli.cs_experiment import main

    out = tmp_path / "cs"
    # --quick on two m of its grid, half its test images and fewer training epochs: every method,
    # data set, output and check of the command (the methods' own quality is tested above, on small
    # problems)
    assert (
        main(
            [
                "--quick",
                "--m",
                "25",
                "100",
                "--test-subset",
                "50",
                "--hecsa-epochs",
                "3",
                "--vae-epochs",
                "2",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    with (out / "results.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    ms = (25, 100)
    methods = ("lasso-pixels", "lasso-dct", "lasso-dct-centred", "vae", "hecsa")
    assert METHODS == methods
    assert len(rows) == 2 * len(methods) * len(ms)
    keys = {(r["dataset"], r["method"], int(r["m"])) for r in rows}
    assert keys == {
        (d, meth, m) for d in ("mnist", "fashion-mnist") for meth in methods for m in ms
    }
    for r in rows:
        assert float(r["mean_l2"]) > 0 and float(r["sem_l2"]) >= 0 and r["n_test"] == "50"
        if r["method"] == "hecsa":
            assert 0 < float(r["norm_ratio"]) <= 1.0 + 1e-3
        if r["method"].startswith("lasso"):
            assert r["hyperparameter"].startswith("alpha=") and 0 <= float(r["nonzeros"]) <= 784
    err = {(r["dataset"], r["method"], int(r["m"])): float(r["mean_l2"]) for r in rows}
    # On Fashion-MNIST the DCT basis beats the pixel basis at m = 100 (dense images, compact DCT).
    assert err[("fashion-mnist", "lasso-dct", 100)] < err[("fashion-mnist", "lasso-pixels", 100)]
    for name in ("fig7_errors.png", "reconstructions_m25.png", "run.json"):
        assert (out / name).stat().st_size > 1000
    printed = capsys.readouterr().out
    assert (
        "Fashion-MNIST stands in for" in printed
        and "HECSA" in printed
        and "LASSO (DCT)" in printed
    )
    run = json.loads((out / "run.json").read_text())
    assert set(run["references"]) == {"mnist", "fashion-mnist"}
    assert "fashion-mnist/lasso-dct/m=100" in run["histories"]
