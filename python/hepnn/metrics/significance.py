"""Expected discovery significance of a counting experiment with s signal and b background events:
the simple s/sqrt(b) and the Asimov median significance, optionally with an absolute background
uncertainty sigma_b (G. Cowan et al., Eur. Phys. J. C 71 (2011) 1554). Vectorised over arrays.
"""
import numpy as np


def _prepare(fn, s, b, sigma_b=None):
    arrays = [np.asarray(s, dtype=np.float64), np.asarray(b, dtype=np.float64)]
    if sigma_b is not None:
        arrays.append(np.asarray(sigma_b, dtype=np.float64))
    for name, a in zip(("s", "b", "sigma_b"), arrays):
        if np.isnan(a).any():
            raise ValueError(f"[{fn}] {name} contains NaN")
    if (arrays[0] < 0).any():
        raise ValueError(f"[{fn}] s must be >= 0 (expected signal events)")
    if (arrays[1] <= 0).any():
        raise ValueError(f"[{fn}] b must be > 0 (expected background events); mask empty bins")
    if sigma_b is not None and (arrays[2] < 0).any():
        raise ValueError(f"[{fn}] sigma_b must be >= 0")
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError:
        raise ValueError(f"[{fn}] shapes do not broadcast: "
                         f"{[a.shape for a in arrays]}") from None


def _out(z):
    return float(z) if z.ndim == 0 else z


def significance(s, b):
    """s / sqrt(b): the naive significance, valid for s << b.

    Example:
        >>> import hepnn.metrics as M
        >>> M.significance(10.0, 100.0)
        1.0
    """
    s, b = _prepare("significance", s, b)
    return _out(s / np.sqrt(b))


def _asimov_sq(s, b):
    """2((s+b) ln(1+s/b) - s) without cancellation for small s/b."""
    x = s / b
    small = x < 1e-3
    xs = np.where(small, x, 0.0)
    # (1+x)ln(1+x) - x = x^2/2 - x^3/6 + x^4/12 - x^5/20 + ...
    series = b * xs * xs * (1.0 - xs / 3.0 + xs * xs / 6.0 - xs ** 3 / 10.0)
    full = 2.0 * ((s + b) * np.log1p(x) - s)
    return np.where(small, series, full)


def asimov_significance(s, b, sigma_b=None):
    """Median discovery significance from the Asimov data set.

    Without uncertainty: Z = sqrt(2((s+b) ln(1+s/b) - s)), which tends to s/sqrt(b) for s << b.
    With an absolute background uncertainty sigma_b (same units as b):
    Z = sqrt(2((s+b) ln[(s+b)(b+sigma_b^2) / (b^2+(s+b)sigma_b^2)]
               - (b^2/sigma_b^2) ln[1 + sigma_b^2 s / (b(b+sigma_b^2))])),
    which tends to the first form as sigma_b -> 0 and to s/sqrt(b+sigma_b^2) for s << b.

    Example:
        >>> import hepnn.metrics as M
        >>> round(M.asimov_significance(10.0, 100.0), 4), round(M.asimov_significance(10.0, 100.0, 10.0), 4)
        (0.984, 0.6902)
    """
    fn = "asimov_significance"
    if sigma_b is None:
        s, b = _prepare(fn, s, b)
        return _out(np.sqrt(np.maximum(_asimov_sq(s, b), 0.0)))
    s, b, sig = _prepare(fn, s, b, sigma_b)
    v = sig * sig
    with np.errstate(divide="ignore", invalid="ignore"):
        # ln[(s+b)(b+v)/(b^2+(s+b)v)] = ln(1 + s b/(b^2+(s+b)v)): log1p keeps small s accurate.
        t1 = (s + b) * np.log1p(s * b / (b * b + (s + b) * v))
        t2 = (b * b / v) * np.log1p(v * s / (b * (b + v)))
        z2 = np.where(v > 0, 2.0 * (t1 - t2), _asimov_sq(s, b))
    # Far below s ~ 1e-4 b the two terms cancel to rounding; the series to order s^3 is exact
    # to ~1e-8 there: Z^2 = s^2/(b+v) * (1 - s (b+2v) / (3 b (b+v))).
    series = s * s / (b + v) * (1.0 - s * (b + 2.0 * v) / (3.0 * b * (b + v)))
    z2 = np.where(s < 1e-4 * b, series, z2)
    return _out(np.sqrt(np.maximum(z2, 0.0)))
