"""Op table, batch normalisation: the autograd op over _core.batchnorm_forward / _backward for
inputs (N, C, *points), training (batch statistics, running stats updated in place) or eval
(running statistics), with an optional (N, *points) mask of valid points.
"""
import numpy as np

from . import _backend, _core
from .autograd import _mode, constant, result_n
from .tensor import Tensor

_OP = "batch_norm"


def _xp(arr):
    return np if type(arr) is np.ndarray else _backend.xp_of(arr)


def _contig(arr):
    return arr if arr.flags.c_contiguous else _xp(arr).ascontiguousarray(arr)


def _mask_array(mask, x):
    """The mask as a contiguous bool array on x's device (bool / uint8 / 0-1 integers accepted)."""
    m = mask.data if isinstance(mask, Tensor) else mask
    if _backend.device_of(m) != x.device:
        m = _backend.to_device(m, x.device)
    m = _xp(x.data).asarray(m)
    if m.dtype.kind not in "bui":
        raise TypeError(f"[{_OP}] mask must be bool (True = valid point), got dtype {m.dtype}")
    if m.dtype != np.bool_:
        m = m != 0
    return _contig(m)


def _valid_count(x, m):
    """Values per channel that enter the statistics."""
    if m is None:
        return x.shape[0] * int(np.prod(x.shape[2:], dtype=np.int64))
    return int(m.sum())


def batch_norm_op(x, running_mean, running_var, weight, bias, training, momentum, eps, mask=None):
    """y = batch norm of x (N, C, *points). running_mean / running_var are raw arrays (C,) or
    None, updated in place when training; weight / bias are Tensors (C,) or None."""
    xd = x.data
    if xd.dtype.kind != "f":
        raise TypeError(f"[{_OP}] input must be floating point, got {xd.dtype}")
    if xd.ndim < 2:
        raise ValueError(f"[{_OP}] input must be (N, C) or (N, C, *points), got shape {tuple(xd.shape)}")
    xd = _contig(xd)
    m = None if mask is None else _mask_array(mask, x)
    if training:
        count = _valid_count(xd, m)
        if count <= 1:
            raise ValueError(f"[{_OP}] expected more than 1 valid value per channel when training, "
                             f"got input size {tuple(xd.shape)}" +
                             (f" with {count} valid points" if m is not None else ""))
    wd = None if weight is None else weight.data
    bd = None if bias is None else bias.data
    C = xd.shape[1]
    xp = _xp(xd)
    y = xp.empty_like(xd)
    save_mean = xp.empty((C,), dtype=xd.dtype)
    save_invstd = xp.empty((C,), dtype=xd.dtype)
    _core.batchnorm_forward(xd, m, wd, bd, running_mean, running_var, bool(training),
                            float(momentum), float(eps), y, save_mean, save_invstd,
                            _backend.stream_of(xd))
    parents = (x, weight, bias)
    if not (_mode.enabled and any(p is not None and p._rg for p in parents)):
        return constant(y)
    return result_n(y, _batch_norm_bw, parents, (xd, m, wd, save_mean, save_invstd, bool(training)))


def _batch_norm_bw(node, g):
    xd, m, wd, save_mean, save_invstd, training = node._saved
    a, w, b = node._parents
    xp = _xp(xd)
    dx = xp.empty_like(xd) if a is not None else None
    dw = xp.empty_like(save_mean) if w is not None else None
    db = xp.empty_like(save_mean) if b is not None else None
    _core.batchnorm_backward(xd, m, wd, save_mean, save_invstd, _contig(g), training, dx, dw, db,
                             _backend.stream_of(xd))
    return dx, dw, db
