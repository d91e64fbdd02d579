"""LASSO decoding with a random Gaussian measurement matrix (section 4.1, the classical baseline).

The measurements are ``y = A x + eps`` (eq. 1 and 3 with ``f_psi`` the identity, ``A`` i.i.d.
N(0, 1/m)). The image is modelled as ``x = mu + Psi s`` with a sparse coefficient vector ``s``:

* pixel basis: ``Psi = I``, ``mu = 0`` (the baseline of section 4.1);
* DCT basis: ``Psi`` the orthonormal 2-D inverse DCT of the ``28 x 28`` image (:func:`dct_basis`);
  natural images are far sparser in the DCT than in pixels;
* mean-centred: ``mu`` the mean training image, so only the deviation from it must be sparse.

and decoded by

    ``s_hat = argmin_s 1/(2m) ||(y - A mu) - A Psi s||_2^2 + alpha ||s||_1``,  ``x_hat = mu + Psi
    s_hat``.

The LASSO is solved exactly with the LARS-lasso homotopy (:func:`sklearn.linear_model.lars_path`):
the solution path is piecewise linear in ``alpha`` with at most a few times ``m`` kinks, so the
exact solution at every ``alpha`` of a grid comes from one path per image, without the iteration
cap of coordinate descent (which, for ``m << n`` and small ``alpha``, stops far from the optimum
and then behaves like an early-stopped, implicitly regularised solver). ``alpha`` is picked on
held-out validation images (:func:`select_alpha`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from scipy.fft import idctn
from sklearn.linear_model import lars_path


def _alpha_grid(low_exp: int = -5, high_exp: int = 2, per_decade: int = 4) -> tuple[float, ...]:
    """Log-spaced ``alpha`` values ``10^low_exp .. 10^high_exp``, rounded to 3 significant
    digits."""
    count = (high_exp - low_exp) * per_decade + 1
    return tuple(float(f"{a:.3g}") for a in np.logspace(low_exp, high_exp, count))


# : 1e-5 .. 100, four values per decade (29). The top lies above ``alpha_max = ||(A Psi)^T y||_inf
# / m`` : of every image here, so "return ``mu``" (all-zero ``s``) is always among the candidates.
DEFAULT_ALPHAS: tuple[float, ...] = _alpha_grid()

Array = torch.Tensor | np.ndarray


@dataclass(frozen=True)
class LassoVariant:
    """One LASSO decoder: sparsity basis (``"pixels"`` or ``"dct"``) and whether ``x`` is
    mean-centred."""

    basis: str = "pixels"
    centred: bool = False

    def __post_init__(self) -> None:
        if self.basis not in ("pixels", "dct"):
            raise ValueError(f"unknown basis {self.basis!r}; use 'pixels' or 'dct'")


def dct_basis(side: int = 28) -> np.ndarray:
    """The orthonormal 2-D inverse DCT of ``side x side`` images as an ``(n, n)`` matrix, ``n =
    side^2``.

    Column ``k`` is ``idctn(e_k)`` (type-II DCT, ``norm="ortho"``), so ``x = Psi s`` is the image
    with DCT coefficients ``s`` (row-major flattening), ``Psi^T x`` its DCT and ``Psi^T Psi = I``.
    """
    return _dct_basis_cached(side).copy()


@lru_cache(maxsize=4)
def _dct_basis_cached(side: int) -> np.ndarray:
    n = side * side
    units = np.eye(n).reshape(n, side, side)
    psi = np.ascontiguousarray(idctn(units, axes=(1, 2), norm="ortho").reshape(n, n).T)
    psi.setflags(write=False)
    return psi


def _basis_matrix(variant: LassoVariant, n: int) -> np.ndarray | None:
    if variant.basis == "pixels":
        return None
    side = int(round(np.sqrt(n)))
    if side * side != n:
        raise ValueError(f"the DCT basis needs square images, n = {n}")
    return _dct_basis_cached(side)


def _as_f64(a: Array) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def lasso_path_at(
    B: np.ndarray, y: np.ndarray, alphas: Sequence[float], positive: bool = False
) -> np.ndarray:
    """Exact LASSO solutions ``argmin_s 1/(2m)||y - B s||^2 + alpha ||s||_1`` at each ``alpha``.

    One LARS-lasso path down to ``min(alphas)``, evaluated by linear interpolation between its
    kinks (the path is piecewise linear, so this is exact). Returns ``(len(alphas), n)``.
    """
    B = np.asarray(B, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    grid = np.asarray(alphas, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or np.any(grid <= 0):
        raise ValueError("alphas must be a non-empty sequence of positive values")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate-regressor notices near the end of the path
        path_alphas, _, coefs = lars_path(
            B, y, method="lasso", alpha_min=float(grid.min()), max_iter=100_000, positive=positive
        )
    # path_alphas decreases from alpha_max (coefs all zero) to max(alpha_min, ~0).
    rev_a = path_alphas[::-1]
    rev_c = coefs[:, ::-1]
    out = np.empty((grid.size, B.shape[1]), dtype=np.float64)
    for j, a in enumerate(grid):
        if a >= rev_a[-1]:
            out[j] = 0.0
        elif a <= rev_a[0]:
            out[j] = rev_c[:, 0]
        else:
            k = int(np.searchsorted(rev_a, a))  # rev_a[k-1] < a <= rev_a[k]
            lo, hi = rev_a[k - 1], rev_a[k]
            w = (a - lo) / (hi - lo) if hi > lo else 1.0
            out[j] = rev_c[:, k - 1] + w * (rev_c[:, k] - rev_c[:, k - 1])
    return out


def _design(
    A: Array, variant: LassoVariant, mean: Array | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(A, Psi or None, mu)`` in float64; ``mu`` is zero unless the variant is centred."""
    A = _as_f64(A)
    n = A.shape[1]
    psi = _basis_matrix(variant, n)
    if variant.centred:
        if mean is None:
            raise ValueError("a mean-centred LASSO needs the mean image")
        mu = _as_f64(mean).reshape(n)
    else:
        mu = np.zeros(n)
    return A, psi, mu


def _solve(
    A: np.ndarray, psi: np.ndarray | None, mu: np.ndarray, Y: np.ndarray, alphas: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """``x_hat = mu + Psi s_hat`` and ``s_hat`` for every alpha and row of ``Y``: ``(len(alphas),
    N, n)``."""
    if Y.ndim != 2 or Y.shape[1] != A.shape[0]:
        raise ValueError(f"Y must be (N, {A.shape[0]}), got {Y.shape}")
    B = A if psi is None else A @ psi
    Yc = Y - A @ mu
    S = (
        np.stack([lasso_path_at(B, y, alphas) for y in Yc], axis=1)
        if len(Yc)
        else np.zeros((len(alphas), 0, A.shape[1]))
    )
    X = S if psi is None else S @ psi.T
    return X + mu, S


def lasso_reconstruct(
    A: Array,
    Y: Array,
    alpha: float,
    variant: LassoVariant = LassoVariant(),
    mean: Array | None = None,
    return_coefficients: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Decode each row of ``Y`` ``(N, m)`` measured with ``A`` ``(m, n)``; returns ``x_hat`` ``(N,
    n)``.

    With ``return_coefficients`` also the sparse codes ``s_hat`` ``(N, n)`` (to count non-zeros).
    """
    A64, psi, mu = _design(A, variant, mean)
    Y64 = _as_f64(Y)
    X_hat, S_hat = _solve(A64, psi, mu, Y64, [alpha])
    return (X_hat[0], S_hat[0]) if return_coefficients else X_hat[0]


def select_alpha(
    A: Array,
    X_val: Array,
    noise_val: Array,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    variant: LassoVariant = LassoVariant(),
    mean: Array | None = None,
) -> tuple[float, dict[float, float]]:
    """Pick ``alpha`` with the lowest mean ``||x - x_hat||_2`` on validation images.

    ``y = A x + eps`` with the given noise (eq. 1, 3). Ties (e.g. several ``alpha`` above every
    image's ``alpha_max``, all returning ``mu``) go to the smallest ``alpha``. Returns the best
    ``alpha`` and the mean validation error of every candidate.
    """
    A64, psi, mu = _design(A, variant, mean)
    X = _as_f64(X_val)
    Y = X @ A64.T + _as_f64(noise_val)
    grid = sorted(float(a) for a in alphas)
    X_hat, _ = _solve(A64, psi, mu, Y, grid)
    errors = np.linalg.norm(X[None] - X_hat, axis=2).mean(axis=1)
    scores = {a: float(e) for a, e in zip(grid, errors)}
    best = grid[int(np.argmin(errors))]
    return best, scores


def alpha_at_grid_edge(alpha: float, alphas: Sequence[float]) -> str:
    """``"low"`` / ``"high"`` if ``alpha`` is the smallest / largest candidate, else ``""``."""
    if float(alpha) <= min(alphas):
        return "low"
    if float(alpha) >= max(alphas):
        return "high"
    return ""
