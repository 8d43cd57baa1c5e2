"""Op table, part 4: the fused attention and layer-norm kernels of _core as autograd ops.
scaled_dot_product_attention(q, k, v, key_mask, bias, scale) runs one flash-style kernel (only the
per-row log-sum-exp is kept for the backward); layer_norm keeps the row mean and 1/std.
Shapes: q (B,H,Lq,D), k and v (B,H,Lk,D), key_mask (B,Lk) bool with True = a real key (the
kernel's convention; nn.functional converts torch's key_padding_mask), bias (B,1|H,Lq,Lk).
"""
import math

import numpy as np

from . import _backend, _core
from ._ops_kernel import _contig, _xp
from .autograd import _mode, constant, result_n
from .tensor import Tensor

_OP = "scaled_dot_product_attention"


def _arr(t):
    return None if t is None else (t.data if isinstance(t, Tensor) else t)


def attention(q, k, v, key_mask=None, bias=None, scale=None):
    """softmax(scale * q @ k^T + bias, keys with key_mask False removed) @ v in one kernel.

    q (B,H,Lq,D), k and v (B,H,Lk,D) Tensors; key_mask an array (B,Lk) of bool (True = attend)
    or None; bias a Tensor (B,1,Lq,Lk) or (B,H,Lq,Lk) (its gradient flows) or None; scale
    defaults to 1/sqrt(D). NOTE: a query whose keys are all masked gets zeros, not NaN.

    Example:
        >>> import hepnn
        >>> from hepnn._ops_attention import attention
        >>> q = hepnn.randn(2, 4, 5, 8)
        >>> attention(q, q, q).shape
        (2, 4, 5, 8)
    """
    qd, kd, vd = _contig(q.data), _contig(k.data), _contig(v.data)
    if qd.ndim != 4:
        raise ValueError(f"[{_OP}] q must be (B, H, Lq, D), got shape {tuple(qd.shape)}")
    md = _arr(key_mask)
    if md is not None:
        md = _contig(md)
        if md.dtype != np.bool_:
            raise TypeError(f"[{_OP}] key_mask must be bool, got {md.dtype}")
    bd = None if bias is None else _contig(bias.data)
    if scale is None:
        scale = 1.0 / math.sqrt(qd.shape[-1]) if qd.shape[-1] > 0 else 1.0
    scale = float(scale)
    xp = _xp(qd)
    B, H, Lq = qd.shape[:3]
    out = xp.empty(qd.shape, dtype=qd.dtype)
    lse = xp.empty((B, H, Lq), dtype=qd.dtype)
    _core.attention_forward(qd, kd, vd, md, bd, out, lse, scale, _backend.stream_of(qd))
    if not (_mode.enabled and any(t is not None and t._rg for t in (q, k, v, bias))):
        return constant(out)
    return result_n(out, _attention_bw, (q, k, v, bias), (qd, kd, vd, md, bd, out, lse, scale))


def _attention_bw(node, g):
    qd, kd, vd, md, bd, out, lse, scale = node._saved
    gq, gk, gv, gb = node._parents
    xp = _xp(qd)
    dq, dk, dv = xp.empty_like(qd), xp.empty_like(kd), xp.empty_like(vd)
    db = xp.empty_like(bd) if gb is not None else None
    _core.attention_backward(qd, kd, vd, md, bd, out, lse, _contig(g), dq, dk, dv, db, scale,
                             _backend.stream_of(qd))
    return (dq if gq is not None else None, dk if gk is not None else None,
            dv if gv is not None else None,
            None if db is None else db.reshape(gb.data.shape))


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis in one kernel.

    Example:
        >>> import hepnn
        >>> from hepnn._ops_attention import layer_norm
        >>> [round(v, 3) for v in layer_norm(hepnn.tensor([[1.0, 3.0]])).tolist()[0]]
        [-1.0, 1.0]
    """
    xd = _contig(x.data)
    wd = None if weight is None else _contig(weight.data)
    bd = None if bias is None else _contig(bias.data)
    xp = _xp(xd)
    y = xp.empty_like(xd)
    rows = xd.size // xd.shape[-1] if xd.ndim and xd.shape[-1] else 0
    grad = _mode.enabled and any(t is not None and t._rg for t in (x, weight, bias))
    mean = xp.empty((rows,), dtype=xd.dtype) if grad else None
    rstd = xp.empty((rows,), dtype=xd.dtype) if grad else None
    _core.layer_norm_forward(xd, wd, bd, y, mean, rstd, float(eps), _backend.stream_of(xd))
    if not grad:
        return constant(y)
    return result_n(y, _layer_norm_bw, (x, weight, bias), (xd, wd, mean, rstd))


def _layer_norm_bw(node, g):
    xd, wd, mean, rstd = node._saved
    gx, gw, gb = node._parents
    xp = _xp(xd)
    dx = xp.empty_like(xd) if gx is not None else None
    dw = xp.empty_like(wd) if gw is not None else None
    db = xp.empty((xd.shape[-1],), dtype=xd.dtype) if gb is not None else None
    _core.layer_norm_backward(xd, wd, mean, rstd, _contig(g), dx, dw, db, _backend.stream_of(xd))
    return dx, dw, db
