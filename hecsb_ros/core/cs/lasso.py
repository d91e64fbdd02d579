"""LASSO decoding with a random Gaussian measurement matrix (section 4.1, the classical baseline).

``x_hat = argmin_x 1/(2m) ||y - A x||_2^2 + alpha ||x||_1`` (scikit-learn's coordinate-descent
:class:`~sklearn.linear_model.Lasso`, no intercept), with ``A`` i.i.d. N(0, 1/m) and ``alpha``
picked on a validation split. Several images are solved in one call: scikit-learn treats the
columns of a 2-D target as independent problems sharing ``A``.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

DEFAULT_ALPHAS: tuple[float, ...] = (3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


def lasso_reconstruct(A: torch.Tensor | np.ndarray, Y: torch.Tensor | np.ndarray, alpha: float,
                      max_iter: int = 1000, tol: float = 1e-4, chunk: int = 250) -> np.ndarray:
    """Solve the LASSO for each row of ``Y`` ``(N, m)`` given ``A`` ``(m, n)``; returns ``(N, n)``.

    Convergence warnings of hard (small-``alpha``) problems are silenced; the iterate after
    ``max_iter`` sweeps is used.
    """
    A = np.asarray(A, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] != A.shape[0]:
        raise ValueError(f"Y must be (N, {A.shape[0]}), got {Y.shape}")
    out = np.empty((Y.shape[0], A.shape[1]), dtype=np.float64)
    model = Lasso(alpha=alpha, fit_intercept=False, max_iter=max_iter, tol=tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*[Oo]bjective did not converge.*")
        for start in range(0, Y.shape[0], chunk):
            block = Y[start:start + chunk]
            model.fit(A, block.T)
            coef = model.coef_
            out[start:start + chunk] = coef.reshape(block.shape[0], A.shape[1])
    return out


def select_alpha(A: torch.Tensor | np.ndarray, X_val: torch.Tensor | np.ndarray,
                 noise_val: torch.Tensor | np.ndarray, alphas: Sequence[float] = DEFAULT_ALPHAS,
                 max_iter: int = 1000) -> tuple[float, dict[float, float]]:
    """Pick ``alpha`` with the lowest mean ``||x - x_hat||_2`` on validation images.

    ``y = A x + eps`` with the given noise (eq. 1, 3). Returns the best ``alpha`` and the mean
    validation error of every candidate.
    """
    A = np.asarray(A, dtype=np.float64)
    X_val = np.asarray(X_val, dtype=np.float64)
    Y = X_val @ A.T + np.asarray(noise_val, dtype=np.float64)
    scores: dict[float, float] = {}
    for alpha in alphas:
        x_hat = lasso_reconstruct(A, Y, alpha, max_iter=max_iter)
        scores[float(alpha)] = float(np.linalg.norm(X_val - x_hat, axis=1).mean())
    best = min(scores, key=scores.__getitem__)
    return best, scores
