"""Op table, graph family: the autograd ops over the _core graph kernels: row gather, scatter and
segment reductions (sum / mean / max), kNN (no gradient) and the fused EdgeConv. Index arguments
may be Tensors or arrays; they are made int64, contiguous and range-checked (the CPU kernels check
again; on CUDA this module's check is the only one). Output buffers are allocated here.
"""
import weakref

import numpy as np

from . import _backend, _core
from .autograd import _mode, constant, result, result_n
from .tensor import Tensor

_REDUCE = ("sum", "mean", "max")


def _xp(arr):
    return np if type(arr) is np.ndarray else _backend.xp_of(arr)


def _contig(arr):
    return arr if arr.flags.c_contiguous else _xp(arr).ascontiguousarray(arr)


def _float_input(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expected a hepnn.Tensor, got {type(x).__name__}")
    if x.data.dtype.kind != "f":
        raise TypeError(f"[{op}] needs a floating point tensor, got {x.data.dtype}")
    return x


def index_array(index, ref, op, name="index", ndim=1):
    """`index` (Tensor, array or list of integers) as a contiguous int64 array on ref's device."""
    d = index.data if isinstance(index, Tensor) else index
    if _backend.device_of(d) != ref.device:
        d = _backend.to_device(d, ref.device)
    xp = _xp(ref.data)
    d = xp.asarray(d)
    if d.size == 0 and d.dtype.kind == "f":  # an empty list arrives as float64
        d = d.astype(np.int64)
    if d.dtype.kind not in "iu":
        raise TypeError(f"[{op}] {name} must hold integers (int64), got {d.dtype}")
    if d.ndim != ndim:
        raise ValueError(f"[{op}] {name} must be {ndim}-D, got shape {tuple(d.shape)}")
    return _contig(d.astype(np.int64, copy=False))


def _check_range(op, name, idx, bound, allow_minus_one=True):
    """Only needed on CUDA: the CPU kernels check the range themselves, with the same message."""
    if type(idx) is np.ndarray or idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if hi >= bound or lo < (-1 if allow_minus_one else 0):
        raise ValueError(f"[{op}] {name} holds values in [{lo}, {hi}], outside [0, {bound})"
                         + (" (or -1)" if allow_minus_one else ""))


def _rows(xd):
    """(R, F) view of x (R, ...) and the trailing shape."""
    tail = xd.shape[1:]
    return _contig(xd).reshape(xd.shape[0], int(np.prod(tail, dtype=np.int64))), tail


# ---- gather ----
def gather(x, index):
    """Rows of x picked by index: out[m] = x[index[m]]; x (R, ...), index (M,) -> (M, ...).
    index -1 gives a zero row (knn's "no neighbour"); gradients accumulate deterministically.

    Example:
        >>> import hepnn
        >>> x = hepnn.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> hepnn.nn.functional.gather(x, [1, 1, -1]).tolist()
        [[3.0, 4.0], [3.0, 4.0], [0.0, 0.0]]
    """
    _float_input(x, "gather")
    if x.data.ndim < 1:
        raise ValueError("[gather] x needs at least 1 dimension")
    idx = index_array(index, x, "gather")
    x2, tail = _rows(x.data)
    _check_range("gather", "index", idx, x2.shape[0])
    y = _xp(x2).empty((idx.shape[0], x2.shape[1]), dtype=x2.dtype)
    _core.gather_forward(x2, idx, y, _backend.stream_of(x2))
    return result(y.reshape((idx.shape[0],) + tail), _gather_bw, x, (idx, x2.shape))


def _gather_bw(node, g):
    idx, shape = node._saved
    dy = _contig(g).reshape(idx.shape[0], shape[1])
    dx = _xp(dy).empty(shape, dtype=dy.dtype)
    _core.gather_backward(idx, dy, dx, _backend.stream_of(dy))
    return (dx.reshape(node._parents[0].data.shape),)


# ---- scatter (by index) and segment (by CSR offsets) ----
def scatter(x, index, dim_size=None, reduce="sum"):
    """out[s] = reduce over m with index[m] == s of x[m]; x (M, ...), index (M,) -> (dim_size, ...).
    reduce "sum" | "mean" | "max"; empty outputs are 0; index -1 drops a row.

    Example:
        >>> import hepnn
        >>> x = hepnn.tensor([[1.0], [2.0], [4.0]])
        >>> hepnn.nn.functional.scatter_sum(x, [0, 2, 0], dim_size=3).tolist()
        [[5.0], [0.0], [2.0]]
    """
    return _reduce(x, index, dim_size, reduce, segment=False)


def segment(x, offsets, reduce="sum"):
    """out[s] = reduce of x[offsets[s]:offsets[s+1]] over sorted segments given as CSR offsets
    (S + 1,): 0 first, never decreasing, x.shape[0] last. Empty segments give 0.

    Example:
        >>> import hepnn
        >>> x = hepnn.tensor([[1.0], [2.0], [4.0]])
        >>> hepnn.nn.functional.segment_max(x, [0, 2, 2, 3]).tolist()
        [[2.0], [0.0], [4.0]]
    """
    return _reduce(x, offsets, None, reduce, segment=True)


def _reduce(x, keys, dim_size, reduce, segment):
    kind = "segment" if segment else "scatter"
    if reduce not in _REDUCE:
        raise ValueError(f"[{kind}] reduce must be one of {_REDUCE}, got {reduce!r}")
    op = f"{kind}_{reduce}"
    _float_input(x, op)
    if x.data.ndim < 1:
        raise ValueError(f"[{op}] x needs at least 1 dimension")
    k = index_array(keys, x, op, "offsets" if segment else "index")
    x2, tail = _rows(x.data)
    if segment:
        S = k.shape[0] - 1
        if S < 0:
            raise ValueError(f"[{op}] offsets needs at least one entry")
        if type(k) is not np.ndarray and k.size and (int(k[0]) != 0 or int(k[-1]) != x2.shape[0]
                                                     or bool((k[1:] < k[:-1]).any())):
            raise ValueError(f"[{op}] offsets must start at 0, never decrease and end at {x2.shape[0]}")
    else:
        if dim_size is None:
            dim_size = int(k.max()) + 1 if k.size else 0
        S = int(dim_size)
        if S < 0:
            raise ValueError(f"[{op}] dim_size must be >= 0, got {dim_size}")
        _check_range(op, "index", k, S)
    xp = _xp(x2)
    y = xp.empty((S, x2.shape[1]), dtype=x2.dtype)
    arg = xp.empty((S, x2.shape[1]), dtype=np.int64) if reduce == "max" else None
    fn = _core.segment_forward if segment else _core.scatter_forward
    fn(x2, k, y, arg, reduce, _backend.stream_of(x2))
    return result(y.reshape((S,) + tail), _reduce_bw, x, (segment, k, arg, reduce, x2.shape))


def _reduce_bw(node, g):
    segment, k, arg, reduce, shape = node._saved
    dy = _contig(g).reshape(-1, shape[1])
    dx = _xp(dy).empty(shape, dtype=dy.dtype)
    fn = _core.segment_backward if segment else _core.scatter_backward
    fn(k, dy, arg, dx, reduce, _backend.stream_of(dy))
    return (dx.reshape(node._parents[0].data.shape),)


# ---- kNN ----
def mask_array(mask, ref, op, shape):
    """mask (Tensor / array of bools) as a contiguous bool array of `shape` on ref's device."""
    if mask is None:
        return None
    d = mask.data if isinstance(mask, Tensor) else mask
    if _backend.device_of(d) != ref.device:
        d = _backend.to_device(d, ref.device)
    d = _xp(ref.data).asarray(d)
    if d.dtype != np.bool_:
        raise TypeError(f"[{op}] mask must be bool (True = real particle), got {d.dtype}")
    if tuple(d.shape) != tuple(shape):
        raise ValueError(f"[{op}] mask has shape {tuple(d.shape)}, expected {tuple(shape)}")
    return _contig(d)


def knn(coords, k, mask=None):
    """Indices (B, N, k) int64 of the k nearest valid neighbours (squared Euclidean distance in
    the D coordinates of coords (B, N, D)) of every valid point, nearest first, itself excluded;
    equal distances go to the smaller index. Padded points (mask False) are never chosen and get
    -1 in every slot; so do slots beyond the number of other valid points. No gradient.

    Example:
        >>> import hepnn
        >>> pts = hepnn.tensor([[[0.0], [1.0], [3.0], [9.0]]])
        >>> hepnn.nn.functional.knn(pts, 2, mask=[[True, True, True, False]]).tolist()
        [[[1, 2], [0, 2], [1, 0], [-1, -1]]]
    """
    op = "knn"
    cd = coords.data if isinstance(coords, Tensor) else coords
    ref = coords if isinstance(coords, Tensor) else constant(np.asarray(cd))
    cd = ref.data
    if cd.dtype.kind != "f":
        raise TypeError(f"[{op}] coords must be floating point, got {cd.dtype}")
    if cd.ndim != 3:
        raise ValueError(f"[{op}] coords must be (B, N, D), got shape {tuple(cd.shape)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 1:
        raise ValueError(f"[{op}] k must be an integer >= 1, got {k!r}")
    m = mask_array(mask, ref, op, cd.shape[:2])
    cd = _contig(cd)
    idx = _xp(cd).empty(cd.shape[:2] + (int(k),), dtype=np.int64)
    _core.knn(cd, m, idx, _backend.stream_of(cd))
    key = id(idx)
    try:  # the entry goes when the array does, before its id can be reused
        _KNN_BOUND[key] = (weakref.ref(idx, lambda _, k=key: _KNN_BOUND.pop(k, None)), cd.shape[1])
    except TypeError:  # not weak-referenceable: edge_conv checks it as any other index array
        pass
    return constant(idx)


# Index arrays knn made, with their N: in range by construction, so edge_conv need not check them
# on the GPU (a check there is a min/max read back to the host: a sync in every training step).
_KNN_BOUND = {}


def _knn_checked(ii, bound):
    entry = _KNN_BOUND.get(id(ii))
    if entry is None or entry[0]() is not ii:
        return False
    return entry[1] == bound


# ---- fused EdgeConv ----
def edge_conv(x, idx, weights, biases, activation="relu", alpha=0.0, aggregation="mean"):
    """Fused EdgeConv: y_i = agg over neighbours j = idx[b, i, :] (-1 = none) of
    MLP([x_i, x_j - x_i]) with act after every layer; x (B, N, C); weights[0] (F0, 2C),
    weights[l] (F_l, F_{l-1}) in torch Linear layout; biases entries may be None.

    Example:
        >>> import hepnn
        >>> import hepnn.nn.functional as F
        >>> x = hepnn.randn(2, 5, 3)
        >>> idx = F.knn(x, 2)
        >>> w = [hepnn.randn(4, 6), hepnn.randn(4, 4)]
        >>> F.edge_conv(x, idx, w, [None, None]).shape
        (2, 5, 4)
    """
    op = "edgeconv"
    _float_input(x, op)
    weights, biases = list(weights), list(biases)
    if len(weights) != len(biases):
        raise ValueError(f"[{op}] got {len(weights)} weights but {len(biases)} biases")
    xd = _contig(x.data)
    if xd.ndim != 3:
        raise ValueError(f"[{op}] x must be (B, N, C), got shape {tuple(xd.shape)}")
    ii = index_array(idx, x, op, "idx", ndim=3)
    if not _knn_checked(ii, xd.shape[1]):
        _check_range(op, "idx", ii, xd.shape[1])
    wd = [_contig(w.data) for w in weights]
    bd = [None if b is None else _contig(b.data) for b in biases]
    if not wd:
        raise ValueError(f"[{op}] needs at least one edge-MLP layer")
    xp = _xp(xd)
    y = xp.empty(xd.shape[:2] + (wd[-1].shape[0],), dtype=xd.dtype)
    grad = _mode.enabled and any(t is not None and t._rg for t in [x] + weights + biases)
    pq = xp.empty((xd.shape[0] * xd.shape[1], 2 * wd[0].shape[0]), dtype=xd.dtype) if grad else None
    _core.edgeconv_forward(xd, ii, wd, bd, y, pq, str(activation), float(alpha), str(aggregation),
                           _backend.stream_of(xd))
    if not grad:
        return constant(y)
    saved = (xd, ii, wd, bd, pq, str(activation), float(alpha), str(aggregation))
    return result_n(y, _edge_conv_bw, [x] + weights + biases, saved)


def _edge_conv_bw(node, g):
    xd, ii, wd, bd, pq, act, alpha, agg = node._saved
    xp = _xp(xd)
    L = len(wd)
    px = node._parents[0]
    dx = xp.empty_like(xd) if px is not None else None
    dw = [xp.empty_like(w) for w in wd]
    db = [None if b is None else xp.empty_like(b) for b in bd]
    _core.edgeconv_backward(xd, ii, wd, bd, pq, _contig(g), dx, dw, db, act, alpha, agg,
                            _backend.stream_of(xd))
    pw, pb = node._parents[1:1 + L], node._parents[1 + L:]
    return ((dx,) + tuple(d if p is not None else None for d, p in zip(dw, pw))
            + tuple(d if p is not None else None for d, p in zip(db, pb)))
