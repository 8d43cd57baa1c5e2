"""Emitters of GRU and LSTM as ONNX GRU / LSTM nodes, one per layer (both directions in one node
when bidirectional). torch's gate blocks are reordered to ONNX's: LSTM (i, f, g, o) -> (i, o, f, c),
GRU (r, z, n) -> (z, r, h) with linear_before_reset=1, which is torch's n-gate. batch_first inputs
and outputs are transposed around the (L, B, .) layout ONNX uses."""
from __future__ import annotations

import numpy as np

from ._emit import _host

_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}


def _gates(w, mode):
    blocks = np.split(np.asarray(w), len(_ORDER[mode]), axis=0)
    return np.concatenate([blocks[i] for i in _ORDER[mode]], axis=0)


def rnn(g, scope, layer, x):
    mode, H, D = layer.mode, layer.hidden_size, 1 + layer.bidirectional
    if len(g.shape) != 3:
        raise NotImplementedError(f"[onnx.export] {scope or '<model>'} ({type(layer).__name__}) exports batched "
                                  f"(3-D) inputs only, got shape {g.shape}")
    pre = f"{scope}." if scope else ""
    op = "LSTM" if mode == "lstm" else "GRU"
    attrs = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if mode == "gru":
        attrs["linear_before_reset"] = 1
    if layer.batch_first:
        x = g.node(scope, "Transpose", [x], perm=[1, 0, 2])
    hs, cs = [], []
    for l in range(layer.num_layers):
        params = layer._params(l)  # [(w_ih, w_hh, b_ih, b_hh)] per direction
        W = np.stack([_gates(_host(p[0]), mode) for p in params])
        R = np.stack([_gates(_host(p[1]), mode) for p in params])
        inputs = [x, g.tensor(f"{pre}W_l{l}", W), g.tensor(f"{pre}R_l{l}", R)]
        if layer.bias:
            B = np.stack([np.concatenate([_gates(_host(p[2]), mode), _gates(_host(p[3]), mode)]) for p in params])
            inputs.append(g.tensor(f"{pre}B_l{l}", B))
        outs = g.node_n(scope, op, inputs, 3 if mode == "lstm" else 2, **attrs)
        y = g.node(scope, "Transpose", [outs[0]], perm=[0, 2, 1, 3])  # (L, D, B, H) -> (L, B, D, H)
        x = g.node(scope, "Reshape", [y, g.ints(scope, "shape", [0, 0, D * H])])
        hs.append(outs[1])
        if mode == "lstm":
            cs.append(outs[2])
    out = g.node(scope, "Transpose", [x], perm=[1, 0, 2]) if layer.batch_first else x
    states = [hs] + ([cs] if mode == "lstm" else [])
    finals = [s[0] if len(s) == 1 else g.node(scope, "Concat", s, axis=0) for s in states]
    return (out, *finals)
