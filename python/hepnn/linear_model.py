"""Closed-form least squares (normal equations, optional ridge) on the GEMM kernels: the exact
answer that a gradient-descent fit of a linear model should converge to."""
from __future__ import annotations

import numpy as np

from . import _core


def linear_regression(X, y, ridge: float = 0.0, fit_intercept: bool = True):
    """Solves min_w |X w + b - y|^2 + ridge |w|^2 exactly; returns (w, b).

    X (N, D), y (N,) or (N, K). X^T X and X^T y come from hepnn's GEMM (no transposed copy); the
    small D x D system is solved by Cholesky (falling back to least squares when singular). The
    intercept is not penalised.

    Example::

        >>> import numpy as np, hepnn
        >>> X = np.arange(10.0)[:, None]
        >>> w, b = hepnn.linear_regression(X, 2 * X[:, 0] + 1)
        >>> np.round([w[0], b], 6).tolist()
        [2.0, 1.0]
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"[linear_regression] X must be 2-D (events, features), got shape {X.shape}")
    squeeze = y.ndim == 1
    y2 = np.ascontiguousarray(y.reshape(len(y), -1))
    if len(y2) != len(X):
        raise ValueError(f"[linear_regression] X has {len(X)} rows but y has {len(y2)}")
    if not (np.isfinite(X).all() and np.isfinite(y2).all()):
        raise ValueError("[linear_regression] X or y contains NaN or infinity")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"[linear_regression] ridge must be finite and >= 0, got {ridge}")
    if fit_intercept:
        x_mean, y_mean = X.mean(axis=0), y2.mean(axis=0)
        X, y2 = np.ascontiguousarray(X - x_mean), np.ascontiguousarray(y2 - y_mean)
    d = X.shape[1]
    xtx = np.empty((d, d))
    xty = np.empty((d, y2.shape[1]))
    _core.gemm(X, X, xtx, trans_a=True)
    _core.gemm(X, y2, xty, trans_a=True)
    xtx[np.diag_indices(d)] += ridge
    try:
        chol = np.linalg.cholesky(xtx)
        w = np.linalg.solve(chol.T, np.linalg.solve(chol, xty))
    except np.linalg.LinAlgError:
        w = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    b = (y_mean - x_mean @ w) if fit_intercept else np.zeros(y2.shape[1])
    if squeeze:
        return w[:, 0], float(b[0])
    return w, b
