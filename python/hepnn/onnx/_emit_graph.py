"""Emitters of the set and graph layers on padded particles: DeepSets (phi, masked sum / mean /
max pooling, rho) and EdgeConv (kNN as TopK on pairwise squared distances, neighbours by
Gather, the edge MLP as MatMul + activation, masked mean / max over the neighbours).
Shape letters: B events, N particles (fixed at export), F features, K neighbours. The mask input
(B, N) bool is True for real particles, as in hepnn.
NOTE: the distances are sums of squared coordinate differences, as hepnn's knn adds them (not
|a|^2 + |b|^2 - 2ab), so near ties pick the same neighbours; that costs a (B, N, N, D) tensor."""
from __future__ import annotations

import numpy as np

from ._emit import _host, activation


def _elem(g):
    return g.onnx.helper.np_dtype_to_tensor_dtype(g.dtype)


def _masked_pool(g, scope, how, h, mask, axis):
    """Pools h over `axis` keeping the real entries (mask broadcast to h, or None = all real);
    an event without any gives 0, as hepnn's masked pooling."""
    op = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax"}[how]
    if mask is None:
        return g.reduce(scope, op, h, [axis], keepdims=0)
    count = g.reduce(scope, "ReduceSum", g.node(scope, "Cast", [mask], to=_elem(g)), [axis], keepdims=0)
    if how == "max":
        y = g.reduce(scope, "ReduceMax", g.node(scope, "Where", [mask, h, g.const(scope, "neg_inf", -np.inf)]),
                     [axis], keepdims=0)
        return g.node(scope, "Where", [g.node(scope, "Greater", [count, g.const(scope, "zero", 0.0)]), y,
                                       g.const(scope, "zero", 0.0)])
    s = g.reduce(scope, "ReduceSum", g.node(scope, "Where", [mask, h, g.const(scope, "zero", 0.0)]), [axis],
                 keepdims=0)
    if how == "sum":
        return s
    return g.node(scope, "Div", [s, g.node(scope, "Clip", [count, g.const(scope, "one", 1.0)])])


def _unsq(g, scope, v, axes):
    return g.node(scope, "Unsqueeze", [v, g.ints(scope, "axes", list(axes))])


def deep_sets(g, scope, layer, x):
    from ._chain import emit_module

    pre = f"{scope}." if scope else ""
    shape = tuple(g.shape)
    if len(shape) != 3:
        raise NotImplementedError(f"[onnx.export] {scope or '<model>'} (DeepSets) takes (B, N, F), got {shape}")
    mask = g.mask
    if mask is not None:
        x = g.node(scope, "Where", [_unsq(g, scope, mask, [2]), x, g.const(scope, "zero", 0.0)])
    h, hshape = emit_module(g, pre + "phi", layer.phi, x, shape)
    mh = None if mask is None else _unsq(g, scope, mask, range(2, len(hshape)))
    pooled = _masked_pool(g, scope, layer.pooling, h, mh, 1)
    y, _ = emit_module(g, pre + "rho", layer.rho, pooled, (hshape[0],) + tuple(hshape[2:]))
    return y


def _neighbours(g, scope, x, idx, N, C):
    """x_j (B, N, K, C) for idx (B, N, K): a Gather from the (B * N, C) rows with each event's
    offset b * N added (from the symbolic batch via Shape and Range), so no (B, N, N, C) copy."""
    batch = g.node(scope, "Slice", [g.node(scope, "Shape", [x]), g.ints(scope, "b0", [0]), g.ints(scope, "b1", [1])])
    end = g.node(scope, "Squeeze", [g.node(scope, "Mul", [batch, g.ints(scope, "n", [N])]), g.ints(scope, "ax0", [0])])
    offsets = g.node(scope, "Range", [g.ints(scope, "start", 0), end, g.ints(scope, "step", N)])
    flat = g.node(scope, "Add", [idx, g.node(scope, "Reshape", [offsets, g.ints(scope, "col", [-1, 1, 1])])])
    rows = g.node(scope, "Reshape", [x, g.ints(scope, "rows", [-1, C])])
    return g.node(scope, "Gather", [rows, flat], axis=0)


def edge_conv(g, scope, layer, x):
    pre = f"{scope}." if scope else ""
    B, N, C = g.shape
    K = min(layer.k, N)  # slots past the N - 1 other points are empty in hepnn's knn too
    mask = g.mask
    zero, inf = g.const(scope, "zero", 0.0), g.const(scope, "inf", np.inf)
    if mask is not None:
        x = g.node(scope, "Where", [_unsq(g, scope, mask, [2]), x, zero])
    pts = x if layer.coords is None else g.node(scope, "Gather", [x, g.ints(scope, "coords", layer.coords)], axis=2)
    diff = g.node(scope, "Sub", [_unsq(g, scope, pts, [2]), _unsq(g, scope, pts, [1])])  # (B, N, N, D)
    d2 = g.reduce(scope, "ReduceSum", g.node(scope, "Mul", [diff, diff]), [3], keepdims=0)
    # Itself and padded points are never neighbours: +inf distance; TopK breaks ties by index.
    d2 = g.node(scope, "Add", [d2, g.tensor(pre + "self_inf", np.where(np.eye(N, dtype=bool), np.inf, 0.0))])
    if mask is not None:
        d2 = g.node(scope, "Where", [_unsq(g, scope, mask, [1]), d2, inf])
    dist, idx = g.node_n(scope, "TopK", [d2, g.ints(scope, "k", [K])], 2, axis=-1, largest=0, sorted=1)
    valid = _unsq(g, scope, g.node(scope, "Less", [dist, inf]), [3])  # (B, N, K, 1)
    xj = _neighbours(g, scope, x, idx, N, C)
    xi = g.node(scope, "Expand", [_unsq(g, scope, x, [2]), g.ints(scope, "slots", [1, 1, K, 1])])
    e = g.node(scope, "Concat", [xi, g.node(scope, "Sub", [xj, xi])], axis=-1)
    for i, lin in enumerate(layer.mlp):
        s = f"{pre}mlp.{i}"
        e = g.matmul_add(s, e, _host(lin.weight), None if lin.bias is None else _host(lin.bias))
        e = activation(g, s, layer.activation, 0.0, e)
    y = _masked_pool(g, scope, layer.aggregation, e, valid, 2)
    if layer.shortcut is not None:
        sc = layer.shortcut
        s = g.matmul_add(pre + "shortcut", x, _host(sc.weight), None if sc.bias is None else _host(sc.bias))
        y = activation(g, pre + "shortcut", layer.activation, 0.0, g.node(scope, "Add", [y, s]))
    if mask is not None:
        y = g.node(scope, "Where", [_unsq(g, scope, mask, [2]), y, zero])
    return y
