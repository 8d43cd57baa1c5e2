"""Op table, part 3: the ops that run in _core kernels (C++ / CUDA): matmul through _core.gemm
(the backward uses the kernel's transpose flags, never a transposed copy), elementwise
activations, softmax and log_softmax. Output buffers are allocated here, inputs made contiguous.
"""
import numpy as np

from . import _backend, _core
from .autograd import constant, result, result2, unbroadcast
from .tensor import Tensor
from ._ops_shape import _norm_dim, reshape, squeeze, unsqueeze

_ndarray = np.ndarray


def _xp(arr):
    return np if type(arr) is _ndarray else _backend.xp_of(arr)


def _contig(arr):
    if arr.flags.c_contiguous:
        return arr
    return _xp(arr).ascontiguousarray(arr)


def _gemm(a, b, out, trans_a=False, trans_b=False):
    _core.gemm(a, b, out, trans_a, trans_b, 1.0, 0.0, _backend.stream_of(out))
    return out


# ---- matmul ----
def matmul(a, b):
    """Matrix product with torch's rules: 1-D operands are promoted (and the added dim removed),
    inputs with more than 2 dims are batches of matrices whose batch dims broadcast.

    Example:
        >>> import hepnn
        >>> a = hepnn.ones(2, 3, requires_grad=True)
        >>> (a @ hepnn.ones(3, 4)).shape
        (2, 4)
    """
    if not isinstance(b, Tensor):
        b = constant(_backend.to_device(b, a.device))
    ad, bd = a.data, b.data
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError("[matmul] both operands need at least 1 dimension, "
                         f"got shapes {tuple(ad.shape)} and {tuple(bd.shape)}")
    if ad.ndim == 1 and bd.ndim == 1:
        return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, -1)), ())
    if ad.ndim == 1:
        return squeeze(matmul(unsqueeze(a, 0), b), -2)
    if bd.ndim == 1:
        return squeeze(matmul(a, unsqueeze(b, -1)), -1)
    if ad.shape[-1] != bd.shape[-2]:
        raise ValueError(f"[matmul] shapes {tuple(ad.shape)} and {tuple(bd.shape)} do not "
                         f"match: {ad.shape[-1]} != {bd.shape[-2]}")
    if a.device != b.device:
        raise RuntimeError(f"[matmul] operands are on different devices: {a.device} and {b.device}")
    if ad.dtype != bd.dtype:
        raise TypeError(f"[matmul] operands have different dtypes: {ad.dtype} and {bd.dtype}")
    xp = _xp(ad)
    if ad.dtype.kind != "f":
        return constant(xp.matmul(ad, bd))
    ad, bd = _contig(ad), _contig(bd)
    M, K, N = ad.shape[-2], ad.shape[-1], bd.shape[-1]
    if bd.ndim == 2:
        # (..., M, K) @ (K, N): one 2-D product over all rows of a.
        a2 = ad.reshape(-1, K)
        out = _gemm(a2, bd, xp.empty((a2.shape[0], N), dtype=ad.dtype))
        return result2(out.reshape(ad.shape[:-1] + (N,)), _matmul_bw, a, b, ("flat", a2, bd))
    batch = np.broadcast_shapes(ad.shape[:-2], bd.shape[:-2])
    if ad.ndim == 2:
        b3 = bd.reshape(-1, K, N)
        out = _gemm(ad, b3, xp.empty((b3.shape[0], M, N), dtype=ad.dtype))
        return result2(out.reshape(batch + (M, N)), _matmul_bw, a, b, ("bcast_a", ad, b3))
    if ad.shape[:-2] != batch:
        ad = xp.ascontiguousarray(xp.broadcast_to(ad, batch + (M, K)))
    if bd.shape[:-2] != batch:
        bd = xp.ascontiguousarray(xp.broadcast_to(bd, batch + (K, N)))
    a3, b3 = ad.reshape(-1, M, K), bd.reshape(-1, K, N)
    out = _gemm(a3, b3, xp.empty((a3.shape[0], M, N), dtype=ad.dtype))
    return result2(out.reshape(batch + (M, N)), _matmul_bw, a, b, ("batched", a3, b3))


def _matmul_bw(node, g):
    a, b = node._parents
    mode, x, w = node._saved
    xp = _xp(g)
    g = _contig(g)
    ga = gb = None
    if mode == "flat":  # x (R, K), w (K, N), g (..., N) seen as (R, N)
        g2 = g.reshape(x.shape[0], -1)
        if a is not None:
            ga = _gemm(g2, w, xp.empty(x.shape, dtype=g.dtype), trans_b=True)
        if b is not None:
            gb = _gemm(x, g2, xp.empty(w.shape, dtype=g.dtype), trans_a=True)
    elif mode == "bcast_a":  # x (M, K) shared by every matrix of w (B, K, N)
        g3 = g.reshape(w.shape[0], x.shape[0], w.shape[2])
        if a is not None:
            per = _gemm(g3, w, xp.empty((w.shape[0],) + x.shape, dtype=g.dtype), trans_b=True)
            ga = per.sum(axis=0)
        if b is not None:
            gb = _gemm(x, g3, xp.empty(w.shape, dtype=g.dtype), trans_a=True)
    else:  # batched: x (B, M, K), w (B, K, N)
        g3 = g.reshape(x.shape[0], x.shape[1], w.shape[2])
        if a is not None:
            ga = _gemm(g3, w, xp.empty(x.shape, dtype=g.dtype), trans_b=True)
        if b is not None:
            gb = _gemm(x, g3, xp.empty(w.shape, dtype=g.dtype), trans_a=True)
    batch = g.shape[:-2]
    if ga is not None:
        ga = (unbroadcast(ga.reshape(batch + x.shape[1:]), a.data.shape) if mode == "batched"
              else ga.reshape(a.data.shape))
    if gb is not None:
        gb = (gb.reshape(b.data.shape) if mode == "flat"
              else unbroadcast(gb.reshape(batch + w.shape[1:]), b.data.shape))
    return ga, gb


def rmatmul(a, b):
    """b @ a for a non-Tensor b."""
    return matmul(constant(_backend.to_device(b, a.device)), a)


# ---- activations (_core.act_forward / act_backward) ----
def activation(x, act, alpha=0.0):
    """y = act(x) elementwise through the _core kernel; act is a _core activation name."""
    xd = _contig(x.data)
    y = _xp(xd).empty_like(xd)
    _core.act_forward(act, xd, y, alpha, _backend.stream_of(xd))
    return result(y, _act_bw, x, (act, xd, y, alpha))


def _act_bw(node, g):
    act, xd, y, alpha = node._saved
    dx = _xp(y).empty_like(y)
    _core.act_backward(act, xd, y, _contig(g), dx, alpha, _backend.stream_of(y))
    return (dx,)


def relu(x):
    """max(x, 0) elementwise.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([-1.0, 2.0]).relu().tolist()
        [0.0, 2.0]
    """
    return activation(x, "relu")


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).sigmoid().tolist()
        [0.5]
    """
    return activation(x, "sigmoid")


def tanh(x):
    """Hyperbolic tangent elementwise.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).tanh().tolist()
        [0.0]
    """
    return activation(x, "tanh")


# ---- softmax (_core.softmax_forward / softmax_backward) ----
def softmax(x, dim=-1, log=False):
    """softmax (or log_softmax when log=True) along `dim`.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([[0.0, 0.0]]).softmax(dim=1).tolist()
        [[0.5, 0.5]]
    """
    xd = _contig(x.data)
    if xd.dtype.kind != "f":
        raise TypeError(f"[softmax] needs a floating point tensor, got {xd.dtype}")
    if xd.ndim == 0:
        raise ValueError("[softmax] needs at least 1 dimension")
    axis = _norm_dim(dim, xd.ndim, "softmax")
    y = _xp(xd).empty_like(xd)
    _core.softmax_forward(xd, y, axis, log, _backend.stream_of(xd))
    return result(y, _softmax_bw, x, (y, axis, log))


def _softmax_bw(node, g):
    y, axis, log = node._saved
    dx = _xp(y).empty_like(y)
    _core.softmax_backward(y, _contig(g), dx, axis, log, _backend.stream_of(y))
    return (dx,)


def log_softmax(x, dim=-1):
    """log(softmax(x)) along `dim`, computed stably in one kernel.

    Example:
        >>> import hepnn
        >>> round(hepnn.tensor([0.0, 0.0]).log_softmax(0)[0].item(), 4)
        -0.6931
    """
    return softmax(x, dim, log=True)

