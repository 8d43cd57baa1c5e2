"""One-dimensional distances between a reference and a generated sample of one observable: the
histogram separation power of the CaloChallenge (triangular discriminator) and the exact
1-Wasserstein distance from the sorted samples, both with optional event weights. NumPy only.
"""
import numpy as np

from ._inputs import vector


def _sample(fn, name, x, wname, w):
    x = vector(fn, name, x).astype(np.float64, copy=False)
    if len(x) == 0:
        raise ValueError(f"[{fn}] {name} is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"[{fn}] {name} contains NaN or inf")
    if w is not None:
        w = vector(fn, wname, w, len(x)).astype(np.float64, copy=False)
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"[{fn}] {wname} must be finite and non-negative")
        if not w.sum() > 0:
            raise ValueError(f"[{fn}] {wname} must have a positive sum")
    return x, w


def separation_power(a, b, bins=50, weights_a=None, weights_b=None):
    """0.5 * sum_i (p_i - q_i)^2 / (p_i + q_i) over histogram bins, p and q the (weighted)
    fractions of `a` and `b` in each bin: 0 for identical histograms, 1 for disjoint ones.

    `bins` is a number of equal bins spanning both samples, or an array of edges (entries
    outside the edges are not counted; each histogram is normalised to the entries inside).

    Example:
        >>> import numpy as np, hepnn.metrics as M
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=5000)
        >>> M.separation_power(x, x, bins=20), M.separation_power(x, x + 100.0, bins=20)
        (0.0, 1.0)
    """
    fn = "separation_power"
    a, wa = _sample(fn, "a", a, "weights_a", weights_a)
    b, wb = _sample(fn, "b", b, "weights_b", weights_b)
    if np.ndim(bins) == 0:
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"[{fn}] bins must be a positive integer or an array of edges, got {bins!r}")
        lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or len(edges) < 2 or not (np.diff(edges) > 0).all():
            raise ValueError(f"[{fn}] bin edges must be a strictly increasing 1-D array of >= 2 values")
    p, _ = np.histogram(a, edges, weights=wa)
    q, _ = np.histogram(b, edges, weights=wb)
    for name, h in (("a", p), ("b", q)):
        if not h.sum() > 0:
            raise ValueError(f"[{fn}] no entry of {name} falls inside the bin edges "
                             f"[{edges[0]:g}, {edges[-1]:g}]")
    p, q = p / p.sum(), q / q.sum()
    s = p + q
    nz = s > 0
    return float(0.5 * np.sum((p[nz] - q[nz]) ** 2 / s[nz]))


def wasserstein1(a, b, weights_a=None, weights_b=None):
    """The 1-Wasserstein (earth mover's) distance between the (weighted) empirical distributions
    of `a` and `b`: the integral of |F_a(x) - F_b(x)| dx, exact (no binning), in the units of x.
    Equal to scipy.stats.wasserstein_distance.

    Example:
        >>> import hepnn.metrics as M
        >>> M.wasserstein1([0.0, 1.0, 3.0], [5.0, 6.0, 8.0])
        5.0
        >>> M.wasserstein1([0.0, 1.0], [0.0, 1.0], weights_b=[3.0, 1.0])
        0.25
    """
    fn = "wasserstein1"
    a, wa = _sample(fn, "a", a, "weights_a", weights_a)
    b, wb = _sample(fn, "b", b, "weights_b", weights_b)
    grid = np.sort(np.concatenate([a, b]))
    cdfs = []
    for x, w in ((a, wa), (b, wb)):
        order = np.argsort(x, kind="stable")
        cum = np.r_[0.0, np.cumsum(np.ones(len(x)) if w is None else w[order])]
        # F(t) on each gap [grid[i], grid[i+1]): the weight of the values <= grid[i].
        cdfs.append(cum[np.searchsorted(x[order], grid[:-1], side="right")] / cum[-1])
    return float(np.sum(np.abs(cdfs[0] - cdfs[1]) * np.diff(grid)))
