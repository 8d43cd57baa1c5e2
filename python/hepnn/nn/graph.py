"""Set and graph layers for particle clouds: DeepSets (per-particle phi, masked pooling, rho),
EdgeConv (ParticleNet's block on a kNN graph, one fused kernel), and message passing on batched
edge lists: GraphNetBlock (edge, node and global updates, the V, E, U formulation) and
MessagePassing (its node-only form). Shape letters: B events, N particles, F features.
"""
from __future__ import annotations

import numpy as np

from .. import _ops_graph as G
from .._ops_kernel import activation as _activation
from .._ops_math import where as _where
from .._ops_shape import cat as _cat
from ..tensor import Tensor
from . import _functional_graph as FG
from .container import ModuleList
from .linear import Linear
from .module import Module

_POOL = {"sum": FG.masked_sum, "mean": FG.masked_mean, "max": FG.masked_max}


def _mask_or_all(mask, x, op):
    """The (B, N) bool mask as an array on x's device (all True when None)."""
    if mask is None:
        return G._xp(x.data).ones(x.data.shape[:2], dtype=np.bool_)
    return G.mask_array(mask, x, op, x.data.shape[:2])


def _zero_padded(x, m):
    # NOTE: padded particles may hold NaN or garbage; zeroing them first keeps them out of every
    # weight gradient (a 0 * NaN in dW = dz^T x would otherwise poison it).
    return _where(m.reshape(m.shape + (1,) * (x.data.ndim - 2)), x, 0.0)


class DeepSets(Module):
    """Permutation-invariant set model rho(pool_{i real} phi(x_i)) on padded particles.

    ``phi`` maps (B, N, F) -> (B, N, H) per particle (e.g. a Sequential of Linear layers),
    ``pooling`` is "sum", "mean" or "max" over the real particles (mask (B, N), True = real),
    ``rho`` maps (B, H) -> output. Padded particles never influence the result or gradients.
    State-dict keys are ``phi.*`` and ``rho.*``.

    Example::

        >>> import hepnn
        >>> from hepnn import nn
        >>> m = nn.DeepSets(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 1), pooling="mean")
        >>> m(hepnn.randn(2, 5, 4), mask=[[True] * 5, [True, True, False, False, False]]).shape
        (2, 1)
    """

    def __init__(self, phi: Module, rho: Module, pooling: str = "sum"):
        super().__init__()
        if pooling not in _POOL:
            raise ValueError(f"DeepSets: pooling must be one of {tuple(_POOL)}, got {pooling!r}")
        self.phi, self.rho, self.pooling = phi, rho, pooling

    def forward(self, x, mask=None):
        if not isinstance(x, Tensor) or x.data.ndim != 3:
            raise ValueError(f"[DeepSets] x must be a (B, N, F) Tensor, got {getattr(x, 'shape', type(x))}")
        m = _mask_or_all(mask, x, "DeepSets")
        h = self.phi(_zero_padded(x, m))
        return self.rho(_POOL[self.pooling](h, m, dim=1))

    def extra_repr(self):
        return f"pooling={self.pooling!r}"


class EdgeConv(Module):
    """ParticleNet's EdgeConv block: for every real particle i, its k nearest real neighbours j
    (in ``coords``: None = the input features, a list of feature columns such as ``[0, 1]`` for
    (deta, dphi), or explicit ``points`` passed to forward), the edge MLP on [x_i, x_j - x_i] with
    ``activation`` after every layer, aggregated by ``aggregation`` ("mean" or "max") over the
    neighbours; with ``shortcut`` the output is act(agg + shortcut(x)) as in ParticleNet (a Linear
    instead of its 1x1 conv + batch norm). Padded particles output 0. The whole edge MLP runs as
    one fused kernel that never holds the B x N x k x F edge tensor.

    Weights: ``mlp.<l>.weight`` (F_l, F_{l-1}) with F_{-1} = 2 * in_features (columns [x_i | x_j -
    x_i]), ``mlp.<l>.bias``, ``shortcut.weight`` / ``shortcut.bias``: a torch ``nn.ModuleList`` of
    ``nn.Linear`` named ``mlp`` (and an ``nn.Linear`` named ``shortcut``) loads them as they are.

    Example::

        >>> import hepnn
        >>> from hepnn import nn
        >>> conv = nn.EdgeConv(4, [16, 8], k=3, coords=[1, 2])
        >>> conv(hepnn.randn(2, 6, 4), mask=[[True] * 6, [True] * 4 + [False] * 2]).shape
        (2, 6, 8)
    """

    def __init__(self, in_features: int, mlp_widths, k: int, aggregation: str = "mean", coords=None,
                 shortcut: bool = False, activation: str = "relu", dtype=np.float32):
        super().__init__()
        widths = [int(w) for w in mlp_widths]
        if int(in_features) < 1 or not widths or min(widths) < 1:
            raise ValueError(f"EdgeConv: in_features and mlp_widths must be >= 1, got {in_features}, {mlp_widths}")
        if isinstance(k, bool) or int(k) < 1:
            raise ValueError(f"EdgeConv: k must be >= 1, got {k}")
        if aggregation not in ("mean", "max"):
            raise ValueError(f"EdgeConv: aggregation must be 'mean' or 'max', got {aggregation!r}")
        self.in_features, self.widths, self.k = int(in_features), widths, int(k)
        self.aggregation, self.activation = aggregation, str(activation)
        self.coords = None if coords is None else [int(c) for c in coords]
        if self.coords is not None and (not self.coords or min(self.coords) < 0
                                        or max(self.coords) >= self.in_features):
            raise ValueError(f"EdgeConv: coords must be feature columns in [0, {in_features}), got {coords}")
        fins = [2 * self.in_features] + widths[:-1]
        self.mlp = ModuleList([Linear(fi, fo, dtype=dtype) for fi, fo in zip(fins, widths)])
        self.shortcut = Linear(self.in_features, widths[-1], dtype=dtype) if shortcut else None

    def forward(self, x, mask=None, points=None):
        if not isinstance(x, Tensor) or x.data.ndim != 3 or x.data.shape[2] != self.in_features:
            raise ValueError(f"[EdgeConv] x must be a (B, N, {self.in_features}) Tensor, "
                             f"got shape {tuple(getattr(x, 'shape', ()))}")
        m = _mask_or_all(mask, x, "EdgeConv")
        x = _zero_padded(x, m)
        if points is not None:
            pts = points.data if isinstance(points, Tensor) else G._xp(x.data).asarray(points)
        elif self.coords is not None:
            pts = x.data[:, :, self.coords]
        else:
            pts = x.data
        idx = G.knn(Tensor(G._contig(pts)), self.k, m)
        y = G.edge_conv(x, idx, [l.weight for l in self.mlp], [l.bias for l in self.mlp],
                        self.activation, 0.0, self.aggregation)
        if self.shortcut is not None:
            y = _activation(y + self.shortcut(x), self.activation)
        return _zero_padded(y, m)

    def extra_repr(self):
        return (f"in_features={self.in_features}, mlp_widths={self.widths}, k={self.k}, "
                f"aggregation={self.aggregation!r}, coords={self.coords}")


def _event_of(offsets, xp):
    """Event id of every row from CSR offsets (G + 1,)."""
    rows = xp.arange(int(offsets[-1]), dtype=np.int64)
    return xp.searchsorted(offsets[1:], rows, side="right").astype(np.int64)


class GraphNetBlock(Module):
    """One graph-network block (Battaglia et al. 2018) on a batched edge list:
    e'_k = phi_e([e_k, v_{s_k}, v_{r_k}, u_{g(k)}]), v'_i = phi_v([sum_{r_k = i} e'_k, v_i, u_{g(i)}]),
    u'_g = phi_u([agg_{k in g} e'_k, agg_{i in g} v'_i, u_g]), with agg = ``aggregation``
    ("sum", "mean" or "max"). Nodes of all events are stacked (V, Fv); senders / receivers (E,) are
    rows of that stack; node_offsets / edge_offsets (G + 1,) delimit the events (edges sorted by
    event, e.g. from F.knn_edges). Edge features, globals and the global model are optional.

    Example::

        >>> import hepnn
        >>> from hepnn import nn
        >>> import hepnn.nn.functional as F
        >>> x = hepnn.randn(2, 4, 3)
        >>> s, r, no, eo = F.knn_edges(F.knn(x, 2))
        >>> blk = nn.GraphNetBlock(nn.Linear(6, 5), nn.Linear(8, 3), nn.Linear(8, 2))
        >>> v, e, u = blk(x.reshape(8, 3), None, s, r, None, no, eo)
        >>> v.shape, e.shape, u.shape
        ((8, 3), (16, 5), (2, 2))
    """

    def __init__(self, edge_model: Module, node_model: Module, global_model: Module | None = None,
                 aggregation: str = "sum"):
        super().__init__()
        if aggregation not in ("sum", "mean", "max"):
            raise ValueError(f"GraphNetBlock: aggregation must be 'sum', 'mean' or 'max', got {aggregation!r}")
        self.edge_model, self.node_model, self.global_model = edge_model, node_model, global_model
        self.aggregation = aggregation

    def forward(self, nodes, edges, senders, receivers, globals_=None, node_offsets=None, edge_offsets=None):
        op = "GraphNetBlock"
        V = nodes.data.shape[0]
        s = G.index_array(senders, nodes, op, "senders")
        r = G.index_array(receivers, nodes, op, "receivers")
        if s.shape != r.shape:
            raise ValueError(f"[{op}] senders {tuple(s.shape)} and receivers {tuple(r.shape)} differ in length")
        xp = G._xp(nodes.data)
        need_events = globals_ is not None or self.global_model is not None
        if need_events and (node_offsets is None or edge_offsets is None):
            raise ValueError(f"[{op}] globals or a global model need node_offsets and edge_offsets")
        if need_events:
            no = G.index_array(node_offsets, nodes, op, "node_offsets")
            eo = G.index_array(edge_offsets, nodes, op, "edge_offsets")
            if int(no[-1]) != V or int(eo[-1]) != s.shape[0] or no.shape != eo.shape:
                raise ValueError(f"[{op}] node_offsets must end at {V} and edge_offsets at {s.shape[0]}, "
                                 "with one entry per event plus one")
        parts = [] if edges is None else [edges]
        parts += [G.gather(nodes, s), G.gather(nodes, r)]
        if globals_ is not None:
            parts.append(G.gather(globals_, _event_of(eo, xp)))
        e_new = self.edge_model(_cat(parts, -1))
        agg = G.scatter(e_new, r, V, self.aggregation)
        parts = [agg, nodes] + ([G.gather(globals_, _event_of(no, xp))] if globals_ is not None else [])
        v_new = self.node_model(_cat(parts, -1))
        u_new = None
        if self.global_model is not None:
            parts = [G.segment(e_new, eo, self.aggregation), G.segment(v_new, no, self.aggregation)]
            if globals_ is not None:
                parts.append(globals_)
            u_new = self.global_model(_cat(parts, -1))
        return v_new, e_new, u_new

    def extra_repr(self):
        return f"aggregation={self.aggregation!r}"


class MessagePassing(Module):
    """Node-only message passing on a batched edge list: m_k = message([v_{r_k}, v_{s_k}(, e_k)]),
    v'_i = update([v_i, agg_{r_k = i} m_k]) with agg = ``aggregation`` ("sum", "mean", "max").

    Example::

        >>> import hepnn
        >>> from hepnn import nn
        >>> mp = nn.MessagePassing(nn.Linear(6, 4), nn.Linear(7, 3), aggregation="mean")
        >>> mp(hepnn.randn(5, 3), [0, 1, 2, 3], [1, 2, 3, 4]).shape
        (5, 3)
    """

    def __init__(self, message_model: Module, update_model: Module, aggregation: str = "sum"):
        super().__init__()
        if aggregation not in ("sum", "mean", "max"):
            raise ValueError(f"MessagePassing: aggregation must be 'sum', 'mean' or 'max', got {aggregation!r}")
        self.message_model, self.update_model, self.aggregation = message_model, update_model, aggregation

    def forward(self, nodes, senders, receivers, edges=None):
        op = "MessagePassing"
        s = G.index_array(senders, nodes, op, "senders")
        r = G.index_array(receivers, nodes, op, "receivers")
        if s.shape != r.shape:
            raise ValueError(f"[{op}] senders {tuple(s.shape)} and receivers {tuple(r.shape)} differ in length")
        parts = [G.gather(nodes, r), G.gather(nodes, s)] + ([] if edges is None else [edges])
        msg = self.message_model(_cat(parts, -1))
        agg = G.scatter(msg, r, nodes.data.shape[0], self.aggregation)
        return self.update_model(_cat([nodes, agg], -1))

    def extra_repr(self):
        return f"aggregation={self.aggregation!r}"
