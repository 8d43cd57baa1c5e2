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
    """ValueError naming the first column (last axes flattened) that holds a NaN or an inf."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    flat = bad.reshape(len(arr), -1) if arr.ndim > 1 else bad.reshape(-1, 1)
    rows, cols = np.nonzero(flat)
    col = int(cols.min())
    row = int(rows[cols == col][0])
    what = "NaN" if np.isnan(arr.reshape(len(arr), -1)[row, col] if arr.ndim > 1 else arr[row]) else "inf"
    where = f"column {col}" if arr.ndim > 1 else "the values"
    count = int(flat[:, col].sum())
    raise ValueError(f"[{fn}] {name} has {count} non-finite value(s) in {where} "
                     f"(first at row {row}: {what}); clean or impute them before training")
