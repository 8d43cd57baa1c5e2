"""Op table, part 2: shape ops (views), indexing, cat/stack and reductions on the array module,
each forward next to its backward rule (see _ops_math.py for the conventions).
"""
import builtins

import numpy as np

from . import _backend
from .autograd import constant, result, result_n, unbroadcast
from .tensor import Tensor


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def _norm_dim(dim, ndim, op):
    if not -ndim - 1 < dim < builtins.max(ndim, 1):
        raise IndexError(f"[{op}] dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % builtins.max(ndim, 1)


# ---- views ----
def reshape(a, *shape):
    """A tensor with the same elements and a new shape (-1 infers one size).

    Example:
        >>> import hepnn
        >>> hepnn.arange(6).reshape(2, 3).shape
        (2, 3)
    """
    shape = _shape_arg(shape)
    try:
        data = a.data.reshape(shape)
    except ValueError:
        raise ValueError(f"[reshape] cannot reshape {tuple(a.shape)} ({a.data.size} elements) "
                         f"into {tuple(shape)}") from None
    return result(data, _reshape_bw, a, None)


def _reshape_bw(node, g):
    return (g.reshape(node._parents[0].data.shape),)


def flatten(a, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one.

    Example:
        >>> import hepnn
        >>> hepnn.zeros(2, 3, 4).flatten(1).shape
        (2, 12)
    """
    nd = a.data.ndim
    if nd == 0:
        return reshape(a, 1)
    s = _norm_dim(start_dim, nd, "flatten")
    e = _norm_dim(end_dim, nd, "flatten")
    shape = a.data.shape
    return reshape(a, shape[:s] + (-1,) + shape[e + 1:])


def transpose(a, dim0, dim1):
    """Swap two dimensions (a view).

    Example:
        >>> import hepnn
        >>> hepnn.zeros(2, 3, 4).transpose(0, 2).shape
        (4, 3, 2)
    """
    nd = a.data.ndim
    d0, d1 = _norm_dim(dim0, nd, "transpose"), _norm_dim(dim1, nd, "transpose")
    return result(a.data.swapaxes(d0, d1), _transpose_bw, a, (d0, d1))


def _transpose_bw(node, g):
    d0, d1 = node._saved
    return (g.swapaxes(d0, d1),)


def permute(a, *dims):
    """Reorder the dimensions (a view).

    Example:
        >>> import hepnn
        >>> hepnn.zeros(2, 3, 4).permute(2, 0, 1).shape
        (4, 2, 3)
    """
    dims = tuple(_norm_dim(d, a.data.ndim, "permute") for d in _shape_arg(dims))
    if sorted(dims) != list(range(a.data.ndim)):
        raise ValueError(f"[permute] {dims} is not a permutation of {a.data.ndim} dimensions")
    return result(a.data.transpose(dims), _permute_bw, a, dims)


def _permute_bw(node, g):
    return (g.transpose(np.argsort(node._saved)),)


def T(a):
    """The tensor with its dimensions reversed (the transpose for 2-D)."""
    return permute(a, *range(a.data.ndim - 1, -1, -1))


def unsqueeze(a, dim):
    """Insert a dimension of size 1 at `dim`.

    Example:
        >>> import hepnn
        >>> hepnn.zeros(3).unsqueeze(0).shape
        (1, 3)
    """
    d = _norm_dim(dim, a.data.ndim + 1, "unsqueeze")
    shape = a.data.shape
    return result(a.data.reshape(shape[:d] + (1,) + shape[d:]), _reshape_bw, a, None)


def squeeze(a, dim=None):
    """Remove dimensions of size 1 (all of them, or `dim` (int or tuple) when size 1).

    Example:
        >>> import hepnn
        >>> hepnn.zeros(1, 3, 1).squeeze().shape
        (3,)
    """
    shape = a.data.shape
    if dim is None:
        new = tuple(n for n in shape if n != 1)
    else:
        dims = dim if isinstance(dim, tuple) else (dim,)
        dims = {_norm_dim(d, a.data.ndim, "squeeze") for d in dims}
        new = tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))
    return result(a.data.reshape(new), _reshape_bw, a, None)


def expand(a, *sizes):
    """Broadcast to a larger shape without copying (-1 keeps a size).

    Example:
        >>> import hepnn
        >>> hepnn.zeros(3, 1).expand(3, 4).shape
        (3, 4)
    """
    sizes = _shape_arg(sizes)
    lead = len(sizes) - a.data.ndim
    shape = tuple(a.data.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    xp = _backend.xp_of(a.data)
    return result(xp.broadcast_to(a.data, shape), _expand_bw, a, None)


def _expand_bw(node, g):
    return (unbroadcast(g, node._parents[0].data.shape),)


# ---- indexing ----
def _index(idx, xp):
    """Tensors and lists inside an index become arrays; returns (index, has integer arrays)."""
    items = idx if type(idx) is tuple else (idx,)
    out = []
    advanced = False
    for i in items:
        if isinstance(i, Tensor):
            i = i.data
        elif type(i) is list:
            i = xp.asarray(i)
        if hasattr(i, "dtype") and getattr(i, "ndim", 0) >= 0 and not isinstance(i, np.generic):
            if i.dtype.kind not in "biu":
                raise IndexError(f"[getitem] index arrays must be integer or bool, got {i.dtype}")
            advanced = True
        out.append(i)
    return (tuple(out) if type(idx) is tuple else out[0]), advanced


def getitem(a, idx):
    """a[idx] with ints, slices, None, Ellipsis, integer arrays/tensors and boolean masks.

    The backward scatter-adds the gradient into zeros (repeated indices accumulate).

    Example:
        >>> import hepnn
        >>> x = hepnn.arange(6.0).reshape(2, 3)
        >>> x[1, [0, 2]].tolist()
        [3.0, 5.0]
    """
    xp = _backend.xp_of(a.data)
    idx, advanced = _index(idx, xp)
    return result(a.data[idx], _getitem_bw, a, (idx, advanced))


def _getitem_bw(node, g):
    idx, advanced = node._saved
    x = node._parents[0].data
    xp = _backend.xp_of(g)
    gx = xp.zeros(x.shape, dtype=g.dtype)
    if advanced:
        _backend.scatter_add(xp, gx, idx, g)
    else:
        gx[idx] = g
    return (gx,)


def setitem(a, idx, value):
    """In-place a[idx] = value on the storage (not recorded: a must not require grad)."""
    from .autograd import is_grad_enabled

    if a._rg and is_grad_enabled():
        raise RuntimeError("[setitem] in-place assignment to a tensor that requires grad; "
                           "wrap it in hepnn.no_grad() or assign to .data")
    xp = _backend.xp_of(a.data)
    idx, _ = _index(idx, xp)
    v = value.data if isinstance(value, Tensor) else value
    if not isinstance(v, (int, float, bool)) and _backend.device_of(v) != a.device:
        v = _backend.to_device(v, a.device)
    a.data[idx] = v


# ---- joining ----
def _tensors(tensors, op):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"[{op}] expects a non-empty sequence of tensors")
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise RuntimeError(f"[{op}] tensors are on different devices: {sorted(devices)}")
    return tensors


def cat(tensors, dim=0):
    """Concatenate tensors along an existing dimension.

    Example:
        >>> import hepnn
        >>> hepnn.cat([hepnn.ones(2, 3), hepnn.zeros(1, 3)]).shape
        (3, 3)
    """
    tensors = _tensors(tensors, "cat")
    d = _norm_dim(dim, tensors[0].ndim, "cat")
    xp = _backend.xp_of(tensors[0].data)
    try:
        data = xp.concatenate([t.data for t in tensors], axis=d)
    except ValueError as exc:
        shapes = [tuple(t.shape) for t in tensors]
        raise ValueError(f"[cat] shapes {shapes} do not match outside dim {d}: {exc}") from None
    sizes = [t.data.shape[d] for t in tensors]
    return result_n(data, _cat_bw, tensors, (d, sizes))


def _cat_bw(node, g):
    d, sizes = node._saved
    out, start = [], 0
    for p, n in zip(node._parents, sizes):
        if p is not None:
            sl = [slice(None)] * g.ndim
            sl[d] = slice(start, start + n)
            out.append(g[tuple(sl)])
        else:
            out.append(None)
        start += n
    return out


def stack(tensors, dim=0):
    """Stack same-shaped tensors along a new dimension.

    Example:
        >>> import hepnn
        >>> hepnn.stack([hepnn.ones(3), hepnn.zeros(3)], dim=1).shape
        (3, 2)
    """
    tensors = _tensors(tensors, "stack")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"[stack] all tensors must have the same shape, got {sorted(shapes)}")
    d = _norm_dim(dim, tensors[0].ndim + 1, "stack")
    xp = _backend.xp_of(tensors[0].data)
    return result_n(xp.stack([t.data for t in tensors], axis=d), _stack_bw, tensors, d)


def _stack_bw(node, g):
    d = node._saved
    return [None if p is None else g.take(i, axis=d) for i, p in enumerate(node._parents)]


# ---- reductions ----
def _axes(dim, ndim, op):
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(sorted({_norm_dim(d, ndim, op) for d in dims}))


def _expand_grad(g, shape, axes):
    """g of the reduced shape, broadcast back to `shape` (a read-only view)."""
    xp = _backend.xp_of(g)
    if axes is None:
        return xp.broadcast_to(g.reshape((1,) * len(shape)), shape)
    kept = list(shape)
    for ax in axes:
        kept[ax] = 1
    return xp.broadcast_to(g.reshape(kept), shape)


def sum(a, dim=None, keepdim=False):
    """Sum over all elements or over `dim` (int or tuple).

    Example:
        >>> import hepnn
        >>> hepnn.ones(2, 3).sum(dim=1).tolist()
        [3.0, 3.0]
    """
    axes = _axes(dim, a.data.ndim, "sum")
    return result(a.data.sum(axis=axes, keepdims=keepdim), _sum_bw, a, axes)


def _sum_bw(node, g):
    return (_expand_grad(g, node._parents[0].data.shape, node._saved),)


def mean(a, dim=None, keepdim=False):
    """Mean over all elements or over `dim` (int or tuple).

    Example:
        >>> import hepnn
        >>> hepnn.tensor([[1.0, 3.0]]).mean().item()
        2.0
    """
    axes = _axes(dim, a.data.ndim, "mean")
    if a.data.dtype.kind not in "fc":
        raise TypeError(f"[mean] needs a floating point tensor, got {a.data.dtype}")
    data = a.data.mean(axis=axes, keepdims=keepdim)
    count = a.data.size // builtins.max(data.size, 1) if a.data.size else 0
    return result(data, _mean_bw, a, (axes, count))


def _mean_bw(node, g):
    axes, count = node._saved
    return (_expand_grad(g / count, node._parents[0].data.shape, axes),)


def _arg_reduce(a, dim, keepdim, op):
    """Values and flat positions of the first max (or min) over `dim` (None: all elements)."""
    x = a.data
    xp = _backend.xp_of(x)
    axes = _axes(dim, x.ndim, op) if x.ndim else None
    if x.size == 0:
        raise RuntimeError(f"[{op}] reduction over an empty tensor")
    keep = [i for i in range(x.ndim) if axes is not None and i not in axes]
    red = [i for i in range(x.ndim) if axes is None or i in axes]
    moved = x.transpose(keep + red) if x.ndim else x
    flat = moved.reshape(tuple(x.shape[i] for i in keep) + (-1,))
    pos = (flat.argmax(axis=-1) if op == "max" else flat.argmin(axis=-1))
    values = xp.take_along_axis(flat, pos[..., None], axis=-1)[..., 0]
    if keepdim:
        values = values.reshape(tuple(1 if i in red else n for i, n in enumerate(x.shape)))
    return values, pos, keep, red, flat.shape


def max(a, dim=None, keepdim=False):
    """Largest value over all elements or over `dim` (int or tuple); returns the values.

    The gradient flows to the first maximum of each reduced slice.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1).tolist()
        [5.0, 7.0]
    """
    values, pos, keep, red, fshape = _arg_reduce(a, dim, keepdim, "max")
    return result(values, _max_bw, a, (pos, keep, red, fshape))


def min(a, dim=None, keepdim=False):
    """Smallest value over all elements or over `dim`; the gradient flows to the first minimum.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([[1.0, 5.0], [7.0, 2.0]]).min(dim=0).tolist()
        [1.0, 2.0]
    """
    values, pos, keep, red, fshape = _arg_reduce(a, dim, keepdim, "min")
    return result(values, _max_bw, a, (pos, keep, red, fshape))


def _max_bw(node, g):
    pos, keep, red, fshape = node._saved
    x = node._parents[0].data
    xp = _backend.xp_of(g)
    # One-hot of the chosen position times g: works the same on NumPy and CuPy.
    hit = xp.arange(fshape[-1]) == pos[..., None]
    gflat = hit * g.reshape(pos.shape + (1,))
    moved = gflat.reshape(tuple(x.shape[i] for i in keep + red))
    return (moved.transpose(np.argsort(keep + red)) if x.ndim else moved.reshape(x.shape),)


def argmax(a, dim=None, keepdim=False):
    """Index of the first maximum (flat index when dim is None); int64, no gradient.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([[1.0, 5.0], [7.0, 2.0]]).argmax(dim=1).tolist()
        [1, 0]
    """
    if dim is None:
        return constant(a.data.argmax())
    d = _norm_dim(dim, a.data.ndim, "argmax")
    out = a.data.argmax(axis=d)
    return constant(_backend.xp_of(out).expand_dims(out, d) if keepdim else out)


def argmin(a, dim=None, keepdim=False):
    """Index of the first minimum (flat index when dim is None); int64, no gradient.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([3.0, 1.0, 2.0]).argmin().item()
        1
    """
    if dim is None:
        return constant(a.data.argmin())
    d = _norm_dim(dim, a.data.ndim, "argmin")
    out = a.data.argmin(axis=d)
    return constant(_backend.xp_of(out).expand_dims(out, d) if keepdim else out)
