"""Op table, part 4: convolution and pooling ops (NCHW, 4-D arrays) running in _core kernels,
each forward next to its backward rule: conv2d (bias + activation fused), conv_transpose2d,
max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d. Hyper-parameters arrive
normalised to (h, w) pairs (nn/_functional_conv.py does the torch-style argument handling).
"""
import numpy as np

from . import _backend, _core
from .autograd import _mode, constant, result, result_n
from ._ops_kernel import _contig, _xp


def _needs_grad(*tensors):
    return _mode.enabled and any(t is not None and t._rg for t in tensors)


def _require_4d(op, x):
    if x.data.ndim != 4:
        raise ValueError(f"[{op}] input must be 4-D (B, C, H, W), got shape {tuple(x.data.shape)}")


def _out_len(n, k, s, p, d):
    return max(0, (n + 2 * p - d * (k - 1) - 1) // s + 1)


# ---- conv2d ----
def conv2d(x, w, b, stride, padding, dilation, groups, act="none", alpha=0.0):
    """y = act(conv2d(x, w) + b) in one kernel; x (B, C, H, W), w (O, C/groups, KH, KW)."""
    _require_4d("conv2d", x)
    if w.data.ndim != 4:
        raise ValueError(f"[conv2d] weight must be 4-D (out, in/groups, kH, kW), got shape {tuple(w.data.shape)}")
    xd, wd = _contig(x.data), _contig(w.data)
    bd = None if b is None else b.data
    B, _, H, W = xd.shape
    O, _, KH, KW = wd.shape
    OH = _out_len(H, KH, stride[0], padding[0], dilation[0])
    OW = _out_len(W, KW, stride[1], padding[1], dilation[1])
    xp = _xp(xd)
    y = xp.empty((B, O, OH, OW), dtype=xd.dtype)
    grad = _needs_grad(x, w, b)
    z = xp.empty_like(y) if grad and _core.act_needs_preactivation(act) else None
    hyper = (tuple(stride), tuple(padding), tuple(dilation), int(groups))
    _core.conv2d_forward(xd, wd, bd, y, z, *hyper, act, float(alpha), _backend.stream_of(xd))
    if not grad:
        return constant(y)
    return result_n(y, _conv2d_bw, (x, w, b), (xd, wd, z, y, hyper, act, float(alpha)))


def _conv2d_bw(node, g):
    xd, wd, z, y, hyper, act, alpha = node._saved
    a, w, b = node._parents
    xp = _xp(y)
    dx = xp.empty_like(xd) if a is not None else None
    dw = xp.empty_like(wd)
    db = xp.empty((wd.shape[0],), dtype=y.dtype) if b is not None else None
    _core.conv2d_backward(xd, wd, z, y, _contig(g), dx, dw, db, *hyper, act, alpha, _backend.stream_of(y))
    return dx, (dw if w is not None else None), db


# ---- conv_transpose2d ----
def conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """The adjoint of conv2d (a learned upsampling); x (B, Cin, H, W), w (Cin, Cout/groups, KH, KW)."""
    _require_4d("conv_transpose2d", x)
    if w.data.ndim != 4:
        raise ValueError(f"[conv_transpose2d] weight must be 4-D (in, out/groups, kH, kW), got shape {tuple(w.data.shape)}")
    xd, wd = _contig(x.data), _contig(w.data)
    bd = None if b is None else b.data
    hyper = (tuple(stride), tuple(padding), tuple(output_padding), tuple(dilation), int(groups))
    shape = _core.conv_transpose2d_output_size(list(xd.shape), list(wd.shape), *hyper)
    y = _xp(xd).empty(tuple(max(0, n) for n in shape), dtype=xd.dtype)
    _core.conv_transpose2d_forward(xd, wd, bd, y, *hyper, _backend.stream_of(xd))
    if not _needs_grad(x, w, b):
        return constant(y)
    return result_n(y, _conv_transpose2d_bw, (x, w, b), (xd, wd, hyper))


def _conv_transpose2d_bw(node, g):
    xd, wd, hyper = node._saved
    a, w, b = node._parents
    xp = _xp(xd)
    dx = xp.empty_like(xd) if a is not None else None
    dw = xp.empty_like(wd)
    db = xp.empty((g.shape[1],), dtype=xd.dtype) if b is not None else None
    _core.conv_transpose2d_backward(xd, wd, _contig(g), dx, dw, db, *hyper, _backend.stream_of(xd))
    return dx, (dw if w is not None else None), db


# ---- pooling ----
def _pool_out(op, x, kernel, stride, padding, dilation):
    _require_4d(op, x)
    B, C, H, W = x.data.shape
    return (B, C, _out_len(H, kernel[0], stride[0], padding[0], dilation[0]),
            _out_len(W, kernel[1], stride[1], padding[1], dilation[1]))


def max_pool2d(x, kernel, stride, padding, dilation, want_indices=True):
    """(y, indices): window maxima and their flat indices in each input plane (int64); indices is
    None when neither wanted nor needed for a gradient."""
    shape = _pool_out("max_pool2d", x, kernel, stride, padding, dilation)
    xd = _contig(x.data)
    xp = _xp(xd)
    y = xp.empty(shape, dtype=xd.dtype)
    # Inference skips the indices (8 bytes per output) unless the caller asks for them.
    idx = xp.empty(shape, dtype=np.int64) if want_indices or _needs_grad(x) else None
    _core.max_pool2d_forward(xd, y, idx, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation),
                             _backend.stream_of(xd))
    return result(y, _max_pool_bw, x, (idx, xd.shape)), (None if idx is None else constant(idx))


def _max_pool_bw(node, g):
    idx, shape = node._saved
    dx = _xp(idx).empty(shape, dtype=g.dtype)
    _core.max_pool_backward(_contig(g), idx, dx, _backend.stream_of(dx))
    return (dx,)


def avg_pool2d(x, kernel, stride, padding, count_include_pad):
    """Window means (zero padding counted in the divisor when count_include_pad)."""
    shape = _pool_out("avg_pool2d", x, kernel, stride, padding, (1, 1))
    xd = _contig(x.data)
    y = _xp(xd).empty(shape, dtype=xd.dtype)
    hyper = (tuple(kernel), tuple(stride), tuple(padding), bool(count_include_pad))
    _core.avg_pool2d_forward(xd, y, *hyper, _backend.stream_of(xd))
    return result(y, _avg_pool_bw, x, (xd.shape, hyper))


def _avg_pool_bw(node, g):
    shape, hyper = node._saved
    dx = _xp(g).empty(shape, dtype=g.dtype)
    _core.avg_pool2d_backward(_contig(g), dx, *hyper, _backend.stream_of(dx))
    return (dx,)


def adaptive_avg_pool2d(x, out_hw):
    """Average pooling to an (OH, OW) output whatever the input plane."""
    _require_4d("adaptive_avg_pool2d", x)
    xd = _contig(x.data)
    y = _xp(xd).empty(xd.shape[:2] + tuple(out_hw), dtype=xd.dtype)
    _core.adaptive_avg_pool2d_forward(xd, y, _backend.stream_of(xd))
    return result(y, _adaptive_avg_pool_bw, x, xd.shape)


def _adaptive_avg_pool_bw(node, g):
    dx = _xp(g).empty(node._saved, dtype=g.dtype)
    _core.adaptive_avg_pool2d_backward(_contig(g), dx, _backend.stream_of(dx))
    return (dx,)


def adaptive_max_pool2d(x, out_hw):
    """(y, indices) of max pooling to an (OH, OW) output; (1, 1) is global max pooling."""
    _require_4d("adaptive_max_pool2d", x)
    xd = _contig(x.data)
    xp = _xp(xd)
    shape = xd.shape[:2] + tuple(out_hw)
    y = xp.empty(shape, dtype=xd.dtype)
    idx = xp.empty(shape, dtype=np.int64)
    _core.adaptive_max_pool2d_forward(xd, y, idx, _backend.stream_of(xd))
    return result(y, _max_pool_bw, x, (idx, xd.shape)), constant(idx)


def conv2d_maxpool2d(x, w, b, stride, padding, dilation, groups, act, alpha, pool):
    """Inference only (no graph): max_pool2d(act(conv2d(x, w) + b)) in one kernel call; pool is
    (kernel, stride, padding, dilation). The conv output stays in cache, never in memory."""
    _require_4d("conv2d_maxpool2d", x)
    xd, wd = _contig(x.data), _contig(w.data)
    B, _, H, W = xd.shape
    O, _, KH, KW = wd.shape
    OH = _out_len(H, KH, stride[0], padding[0], dilation[0])
    OW = _out_len(W, KW, stride[1], padding[1], dilation[1])
    k, s, p, d = pool
    y = _xp(xd).empty((B, O, _out_len(OH, k[0], s[0], p[0], d[0]), _out_len(OW, k[1], s[1], p[1], d[1])),
                      dtype=xd.dtype)
    _core.conv2d_maxpool2d_forward(xd, wd, None if b is None else b.data, y, tuple(stride), tuple(padding),
                                   tuple(dilation), int(groups), act, float(alpha), tuple(k), tuple(s), tuple(p),
                                   tuple(d), _backend.stream_of(xd))
    return constant(y)
