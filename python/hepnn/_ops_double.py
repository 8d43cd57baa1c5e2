"""Differentiable backward rules (for create_graph=True): the same gradients as the first-order
rules in _ops_math/_ops_shape/_ops_kernel, written in hepnn ops so that the backward pass is a
recorded graph. Each rule is registered against its first-order rule in DOUBLE; an op missing
here is refused under create_graph. The fused linear and the activations are in
_ops_double_nn.py. Rules take (node, g, need): node the op's output, g a Tensor, need[i] whether
parent i's gradient is wanted.
"""
import numpy as np

from . import _backend
from . import _ops_data as D
from . import _ops_kernel as K
from . import _ops_math as M
from . import _ops_shape as S
from ._autograd_graph import DOUBLE
from .autograd import broadcast_axes, constant, result


def register(bw):
    def deco(dbw):
        DOUBLE[bw] = dbw
        return dbw

    return deco


def operand(node, i, raw):
    """Parent i as a Tensor: the recorded parent when it requires grad (so its second
    derivative flows), else the saved raw value as a constant."""
    p = node._parents[i]
    return p if p is not None else constant(raw)


def unbroadcast(g, shape):
    """Tensor version of autograd.unbroadcast: sum g down to `shape`."""
    if g.shape == shape:
        return g
    axes = broadcast_axes(tuple(g.shape), shape)
    if axes:
        g = S.sum(g, dim=axes, keepdim=True)
    return S.reshape(g, shape)


def _shape(node, i):
    return node._parents[i].data.shape


# ---- arithmetic ----
@register(M._add_bw)
def _add_dbw(node, g, need):
    return (unbroadcast(g, _shape(node, 0)) if need[0] else None,
            unbroadcast(g, _shape(node, 1)) if need[1] else None)


@register(M._sub_bw)
def _sub_dbw(node, g, need):
    return (unbroadcast(g, _shape(node, 0)) if need[0] else None,
            unbroadcast(-g, _shape(node, 1)) if need[1] else None)


@register(M._rsub_bw)
def _rsub_dbw(node, g, need):
    return (unbroadcast(-g, _shape(node, 0)) if need[0] else None,
            unbroadcast(g, _shape(node, 1)) if need[1] else None)


@register(M._mul_bw)
def _mul_dbw(node, g, need):
    ad, bd = node._saved
    return (unbroadcast(g * operand(node, 1, bd), _shape(node, 0)) if need[0] else None,
            unbroadcast(g * operand(node, 0, ad), _shape(node, 1)) if need[1] else None)


@register(M._div_bw)
def _div_dbw(node, g, need):
    bd, _ = node._saved
    ga = g / operand(node, 1, bd)
    return (unbroadcast(ga, _shape(node, 0)) if need[0] else None,
            unbroadcast(-ga * node, _shape(node, 1)) if need[1] else None)


@register(M._rdiv_bw)
def _rdiv_dbw(node, g, need):
    ad, _ = node._saved
    gb = g / operand(node, 0, ad)
    return (unbroadcast(-gb * node, _shape(node, 0)) if need[0] else None,
            unbroadcast(gb, _shape(node, 1)) if need[1] else None)


@register(M._neg_bw)
def _neg_dbw(node, g, need):
    return (-g,)


@register(M._pow_bw)
def _pow_dbw(node, g, need):
    _, p = node._saved
    x = node._parents[0]
    if p == 2:
        return (g * (x * 2.0),)
    return (g * (x ** (p - 1) * float(p)),)


@register(M._pow_tt_bw)
def _pow_tt_dbw(node, g, need):
    xd, yd, _ = node._saved
    x, y = operand(node, 0, xd), operand(node, 1, yd)
    ga = gb = None
    if need[0]:
        ga = unbroadcast(g * (y * x ** (y - 1.0)), _shape(node, 0))
    if need[1]:
        # NOTE: as in the first-order rule, d(x**y)/dy is taken as 0 where x == 0.
        logx = M.log(M.where(constant(xd > 0), x, 1.0))
        gb = unbroadcast(g * node * logx, _shape(node, 1))
    return ga, gb


@register(M._rpow_bw)
def _rpow_dbw(node, g, need):
    return (g * node * node._saved[1],)


@register(M._exp_bw)
def _exp_dbw(node, g, need):
    return (g * node,)


@register(M._log_bw)
def _log_dbw(node, g, need):
    return (g / node._parents[0],)


@register(M._sqrt_bw)
def _sqrt_dbw(node, g, need):
    return (g * 0.5 / node,)


@register(M._abs_bw)
def _abs_dbw(node, g, need):
    x = node._saved
    return (g * constant(_backend.xp_of(x).sign(x)),)


@register(M._clamp_bw)
def _clamp_dbw(node, g, need):
    return (g * constant(M.clamp_mask(*node._saved)),)


@register(M._where_bw)
def _where_dbw(node, g, need):
    c = constant(node._saved)
    return (unbroadcast(g * c, _shape(node, 0)) if need[0] else None,
            unbroadcast(g * constant(~node._saved), _shape(node, 1)) if need[1] else None)


@register(D._identity_bw)
def _identity_dbw(node, g, need):
    return (g,)


# ---- shapes ----
@register(S._reshape_bw)
def _reshape_dbw(node, g, need):
    return (S.reshape(g, _shape(node, 0)),)


@register(S._transpose_bw)
def _transpose_dbw(node, g, need):
    d0, d1 = node._saved
    return (S.transpose(g, d0, d1),)


@register(S._permute_bw)
def _permute_dbw(node, g, need):
    return (S.permute(g, *[int(i) for i in np.argsort(node._saved)]),)


@register(S._expand_bw)
def _expand_dbw(node, g, need):
    return (unbroadcast(g, _shape(node, 0)),)


def _scatter(g, shape, idx, advanced):
    """zeros(shape) with g written (or scatter-added) at idx: the adjoint of getitem, recorded."""
    xp = _backend.xp_of(g.data)
    out = xp.zeros(shape, dtype=g.data.dtype)
    if advanced:
        _backend.scatter_add(xp, out, idx, g.data)
    else:
        out[idx] = g.data
    return result(out, _scatter_bw, g, (idx,))


def _scatter_bw(node, g):
    return (g[node._saved[0]],)


@register(_scatter_bw)
def _scatter_dbw(node, g, need):
    return (S.getitem(g, node._saved[0]),)


@register(S._getitem_bw)
def _getitem_dbw(node, g, need):
    idx, advanced = node._saved
    return (_scatter(g, _shape(node, 0), idx, advanced),)


@register(S._cat_bw)
def _cat_dbw(node, g, need):
    d, sizes = node._saved
    out, start = [], 0
    for m, n in zip(need, sizes):
        if m:
            sl = [slice(None)] * g.ndim
            sl[d] = slice(start, start + n)
            out.append(S.getitem(g, tuple(sl)))
        else:
            out.append(None)
        start += n
    return out


@register(S._stack_bw)
def _stack_dbw(node, g, need):
    d = node._saved
    return [S.getitem(g, (slice(None),) * d + (i,)) if m else None for i, m in enumerate(need)]


def _expand_grad(g, shape, axes):
    if axes is None:
        kept = (1,) * len(shape)
    else:
        kept = list(shape)
        for ax in axes:
            kept[ax] = 1
    return S.expand(S.reshape(g, tuple(kept)), *shape)


@register(S._sum_bw)
def _sum_dbw(node, g, need):
    return (_expand_grad(g, _shape(node, 0), node._saved),)


@register(S._mean_bw)
def _mean_dbw(node, g, need):
    axes, count = node._saved
    return (_expand_grad(g * (1.0 / count), _shape(node, 0), axes),)


# ---- matmul ----
@register(K._matmul_bw)
def _matmul_dbw(node, g, need):
    # Batch dims broadcast like elementwise ops, so the gradients are unbroadcast the same way.
    # The saved operands are the kernel's (flattened) views: reshaped back from the output shape.
    a, b = node._parents
    mode, xd, wd = node._saved
    K_ = xd.shape[-1]
    if mode == "flat":
        A = a if a is not None else constant(xd.reshape(node.shape[:-1] + (K_,)))
        B = b if b is not None else constant(wd)
    else:
        A = a if a is not None else constant(
            xd if xd.ndim == 2 else xd.reshape(node.shape[:-2] + xd.shape[1:]))
        B = b if b is not None else constant(wd.reshape(node.shape[:-2] + wd.shape[1:]))
    ga = gb = None
    if need[0]:
        ga = unbroadcast(K.matmul(g, S.transpose(B, -2, -1)), a.data.shape)
    if need[1]:
        if mode == "flat":  # every row of a against one weight matrix: one 2-D product
            gb = K.matmul(S.transpose(S.reshape(A, (-1, K_)), 0, 1),
                          S.reshape(g, (-1, g.shape[-1])))
        else:
            gb = unbroadcast(K.matmul(S.transpose(A, -2, -1), g), b.data.shape)
    return ga, gb


from . import _ops_double_nn  # noqa: E402,F401  (the fused linear and activation rules)
