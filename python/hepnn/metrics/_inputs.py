"""Input checks shared by the metrics: 1-D arrays of one length, binary labels, finite scores and
weights. Errors name the calling function.
"""
import numpy as np

from ..data._arrays import to_numpy


def vector(fn, name, x, n=None):
    arr = to_numpy(fn, name, x)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]  # a (N, 1) network output is a score per event
    if arr.ndim != 1:
        raise ValueError(f"[{fn}] {name} must be 1-D (one value per event), got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"[{fn}] {name} has {len(arr)} entries but y_true has {n}")
    return arr


def binary_inputs(fn, y_true, score, sample_weight=None):
    """(y as bool, score as float64, weights as float64 or None), validated."""
    y = vector(fn, "y_true", y_true)
    if len(y) == 0:
        raise ValueError(f"[{fn}] y_true is empty")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"[{fn}] y_true contains NaN")
    if y.dtype.kind != "b":
        values = np.unique(y)
        if not np.isin(values, (0, 1)).all():
            shown = values[:5].tolist()
            raise ValueError(f"[{fn}] labels must be binary (0 = background, 1 = signal), "
                             f"found values {shown}{' ...' if len(values) > 5 else ''}")
        y = y == 1
    s = vector(fn, "score", score, len(y)).astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise ValueError(f"[{fn}] score contains {int(np.isnan(s).sum())} NaN value(s)")
    w = None
    if sample_weight is not None:
        w = vector(fn, "sample_weight", sample_weight, len(y)).astype(np.float64, copy=False)
        if not np.isfinite(w).all():
            raise ValueError(f"[{fn}] sample_weight contains NaN or inf")
    return y, s, w
