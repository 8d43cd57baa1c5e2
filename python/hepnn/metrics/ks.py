"""Two-sample Kolmogorov-Smirnov test with optional event weights, in NumPy: the overtraining
check compares classifier scores on training and test events. The p-value uses the asymptotic
Kolmogorov distribution with Stephens' small-sample correction and the effective event count.
"""
import numpy as np

from ._inputs import vector


def kolmogorov_sf(lam):
    """P(K > lam) for the Kolmogorov distribution K (scipy.stats.kstwobign.sf).

    Example:
        >>> import hepnn.metrics as M
        >>> round(M.kolmogorov_sf(1.36), 3)
        0.049
    """
    lam = np.asarray(lam, dtype=np.float64)
    k = np.arange(1, 101, dtype=np.float64).reshape((-1,) + (1,) * lam.ndim)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        # Two series of one function: the alternating one converges fast for large lam, the
        # Jacobi-theta form for small lam, where the first needs hundreds of terms.
        big = 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * lam * lam), axis=0)
        small = 1.0 - np.sqrt(2.0 * np.pi) / lam * np.sum(
            np.exp(-((2.0 * k - 1.0) ** 2) * np.pi ** 2 / (8.0 * lam * lam)), axis=0)
    q = np.where(lam < 1.0, small, big)
    q = np.clip(np.where(lam <= 0, 1.0, q), 0.0, 1.0)
    return float(q) if q.ndim == 0 else q


def _ecdf(sorted_x, cum_w, at):
    return cum_w[np.searchsorted(sorted_x, at, side="right")]


def ks_2samp(a, b, weights_a=None, weights_b=None):
    """Two-sample KS test: returns (D, p) for the hypothesis that `a` and `b` share a distribution.

    D is the largest distance between the two (weighted) empirical CDFs. The p-value is
    kolmogorov_sf((sqrt(n) + 0.12 + 0.11/sqrt(n)) D) with n = n_a n_b / (n_a + n_b), where with
    weights n_x = (sum w)^2 / sum w^2 (the effective count). Weights must have a positive sum;
    negative weights make the test approximate.

    Example:
        >>> import numpy as np, hepnn.metrics as M
        >>> rng = np.random.default_rng(0)
        >>> d, p = M.ks_2samp(rng.normal(size=2000), rng.normal(size=3000))
        >>> p > 0.01
        True
    """
    fn = "ks_2samp"
    xs = []
    for name, x, wname, w in (("a", a, "weights_a", weights_a), ("b", b, "weights_b", weights_b)):
        x = vector(fn, name, x).astype(np.float64, copy=False)
        if len(x) == 0:
            raise ValueError(f"[{fn}] {name} is empty")
        if np.isnan(x).any():
            raise ValueError(f"[{fn}] {name} contains NaN")
        if w is None:
            w = np.ones(len(x))
        else:
            w = vector(fn, wname, w, len(x)).astype(np.float64, copy=False)
            if not np.isfinite(w).all():
                raise ValueError(f"[{fn}] {wname} contains NaN or inf")
        total = w.sum()
        if not total > 0:
            raise ValueError(f"[{fn}] {wname} must have a positive sum, got {total:g}")
        order = np.argsort(x, kind="stable")
        cum = np.r_[0.0, np.cumsum(w[order])] / total
        xs.append((x[order], cum, total * total / np.sum(w * w)))
    (sa, ca, na), (sb, cb, nb) = xs
    at = np.concatenate([sa, sb])
    d = float(np.max(np.abs(_ecdf(sa, ca, at) - _ecdf(sb, cb, at))))
    n = na * nb / (na + nb)
    p = kolmogorov_sf((np.sqrt(n) + 0.12 + 0.11 / np.sqrt(n)) * d)
    return d, p
