"""Functional graph / set layers re-exported by hepnn.nn.functional: kNN, gather, scatter and
segment reductions by name (scatter_sum, segment_max, ...), masked set pooling over padded
particles (masked_sum / masked_mean / masked_max) and the fused EdgeConv.
Shape letters: B events, N particles (padded; mask (B, N) bool, True = real), F features.
"""
import numpy as np

from .._ops_graph import _xp, edge_conv, gather, knn, mask_array, scatter, segment
from ..tensor import Tensor

__all__ = ["knn", "gather", "scatter", "scatter_sum", "scatter_mean", "scatter_max", "segment",
           "segment_sum", "segment_mean", "segment_max", "masked_sum", "masked_mean", "masked_max",
           "edge_conv", "knn_edges"]


def scatter_sum(x, index, dim_size=None):
    """Sum of the rows of x sharing an index: out[s] = sum_{index[m] == s} x[m].

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.scatter_sum(hepnn.tensor([1.0, 2.0, 3.0]), [1, 0, 1]).tolist()
        [2.0, 4.0]
    """
    return scatter(x, index, dim_size, "sum")


def scatter_mean(x, index, dim_size=None):
    """Mean of the rows of x sharing an index (0 for an index no row has).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.scatter_mean(hepnn.tensor([1.0, 2.0, 3.0]), [1, 0, 1], dim_size=3).tolist()
        [2.0, 2.0, 0.0]
    """
    return scatter(x, index, dim_size, "mean")


def scatter_max(x, index, dim_size=None):
    """Elementwise maximum of the rows of x sharing an index (0 where none; the gradient goes
    to the first maximum).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.scatter_max(hepnn.tensor([1.0, 2.0, 3.0]), [1, 0, 1]).tolist()
        [2.0, 3.0]
    """
    return scatter(x, index, dim_size, "max")


def segment_sum(x, offsets):
    """Sum over sorted segments x[offsets[s]:offsets[s+1]].

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.segment_sum(hepnn.tensor([1.0, 2.0, 3.0]), [0, 1, 3]).tolist()
        [1.0, 5.0]
    """
    return segment(x, offsets, "sum")


def segment_mean(x, offsets):
    """Mean over sorted segments (0 for an empty one).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.segment_mean(hepnn.tensor([1.0, 2.0, 3.0]), [0, 1, 3]).tolist()
        [1.0, 2.5]
    """
    return segment(x, offsets, "mean")


def segment_max(x, offsets):
    """Maximum over sorted segments (0 for an empty one).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.segment_max(hepnn.tensor([1.0, 2.0, 3.0]), [0, 1, 3]).tolist()
        [1.0, 3.0]
    """
    return segment(x, offsets, "max")


def _masked(op, x, mask, dim, reduce):
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expected a hepnn.Tensor, got {type(x).__name__}")
    nd = x.data.ndim
    if not -nd <= dim < nd:
        raise ValueError(f"[{op}] dim {dim} is out of range for a {nd}-d tensor")
    dim = dim % nd
    lead = x.data.shape[:dim + 1]  # mask covers the dims up to and including the set dim
    m = mask_array(mask, x, op, lead)
    xp = _xp(x.data)
    outer = int(np.prod(lead[:-1], dtype=np.int64))
    n = lead[-1]
    # NOTE: padded rows get index -1 and are dropped by the kernel, so their values (NaN or
    # garbage) never reach the result or its gradient, and an all-padded set pools to 0.
    index = xp.where(m.reshape(outer, n), xp.arange(outer, dtype=np.int64)[:, None], -1).reshape(-1)
    rows = x.reshape((outer * n,) + x.data.shape[dim + 1:])
    out = scatter(rows, index, outer, reduce)
    return out.reshape(lead[:-1] + x.data.shape[dim + 1:])


def masked_sum(x, mask, dim=1):
    """Sum over the set dimension `dim` of the real elements only; mask has x's shape up to and
    including dim (typically x (B, N, F), mask (B, N)).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> x = hepnn.tensor([[[1.0], [2.0], [99.0]]])
        >>> F.masked_sum(x, [[True, True, False]]).tolist()
        [[3.0]]
    """
    return _masked("masked_sum", x, mask, dim, "sum")


def masked_mean(x, mask, dim=1):
    """Mean over the real elements of the set dimension (0 for an event without any).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> x = hepnn.tensor([[[1.0], [2.0], [99.0]]])
        >>> F.masked_mean(x, [[True, True, False]]).tolist()
        [[1.5]]
    """
    return _masked("masked_mean", x, mask, dim, "mean")


def masked_max(x, mask, dim=1):
    """Maximum over the real elements of the set dimension (0 for an event without any).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> x = hepnn.tensor([[[1.0], [2.0], [99.0]]])
        >>> F.masked_max(x, [[True, True, False]]).tolist()
        [[2.0]]
    """
    return _masked("masked_max", x, mask, dim, "max")


def knn_edges(idx):
    """The batched edge list of a kNN graph: idx (B, N, k) from knn() -> (senders, receivers,
    node_offsets, edge_offsets) with node r = b * N + i of the flattened (B * N) nodes, one edge
    j -> i per valid slot (-1 slots dropped), edges sorted by event then receiver, and CSR offsets
    (B + 1,) of every event's nodes and edges (for GraphNetBlock's global update).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> idx = F.knn(hepnn.tensor([[[0.0], [1.0], [3.0]]]), 1)
        >>> [a.tolist() for a in F.knn_edges(idx)]
        [[1, 0, 1], [0, 1, 2], [0, 3], [0, 3]]
    """
    d = idx.data if isinstance(idx, Tensor) else idx
    xp = _xp(d) if hasattr(d, "flags") else np
    d = xp.asarray(d)
    if d.ndim != 3 or d.dtype.kind not in "iu":
        raise ValueError(f"[knn_edges] idx must be (B, N, k) integers, got {d.dtype} {tuple(d.shape)}")
    B, N, k = d.shape
    recv = xp.broadcast_to(xp.arange(B * N, dtype=np.int64).reshape(B, N, 1), d.shape)
    valid = d >= 0
    send = (d + (xp.arange(B, dtype=np.int64) * N).reshape(B, 1, 1))[valid]
    per_event = valid.reshape(B, -1).sum(axis=1)
    edge_offsets = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(per_event).astype(np.int64)])
    node_offsets = xp.arange(B + 1, dtype=np.int64) * N
    return (send.astype(np.int64), recv[valid].astype(np.int64), node_offsets, edge_offsets)
