"""Input conversion shared by the data tools: NumPy arrays, hepnn Tensors (CUDA ones are copied to
the host) and array-likes become NumPy arrays, with errors that name the calling function.
"""
import numpy as np


def to_numpy(fn, name, x):
    """`x` as a NumPy array (no copy for NumPy input or CPU Tensors)."""
    from ..tensor import Tensor

    if isinstance(x, Tensor):
        x = x.detach().cpu().data
    elif type(x).__module__.startswith("cupy"):
        x = x.get()
    elif type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"[{fn}] {name} cannot be converted to an array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"[{fn}] {name} must hold numbers, got dtype {arr.dtype}")
    return arr


def check_finite_columns(fn, name, arr):
    """ValueError naming the first column (trailing axes flattened) that holds a NaN or an inf."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return
    flat = arr.reshape(len(arr), -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return
    col = int(np.flatnonzero(bad.any(axis=0))[0])
    row = int(np.flatnonzero(bad[:, col])[0])
    what = "NaN" if np.isnan(flat[row, col]) else "inf"
    where = f"column {col}" if arr.ndim > 1 else "the values"
    raise ValueError(f"[{fn}] {name} has {int(bad[:, col].sum())} non-finite value(s) in {where} "
                     f"(first at row {row}: {what}); clean or impute them before training")
