"""Emitters of MultiheadAttention (self-attention), TransformerEncoderLayer and TransformerEncoder
as MatMul / Softmax / Add subgraphs. Shape letters: B batch, L tokens, E embedding, H heads,
D = E / H. The key padding mask (B, L) bool, True = padded, becomes an additive -1e30 on the
padded keys' scores and a zero factor after the Softmax, so a query whose keys are all padded
gets zeros before out_proj, as hepnn's kernel gives."""
from __future__ import annotations

import math

from ._emit import _host, activation
from ._emit_norm import _layer_norm

_NEG = -1e30  # finite, so an all-padded row stays finite before the zero factor


def _mask_terms(g, scope):
    """(additive bias, keep factor), both (B, 1, 1, L), from the model's padding-mask input."""
    def make():
        m4 = g.node(scope, "Unsqueeze", [g.mask, g.ints(scope, "axes", [1, 2])])
        bias = g.node(scope, "Where", [m4, g.const(scope, "neg", _NEG), g.const(scope, "zero", 0.0)])
        keep = g.node(scope, "Where", [m4, g.const(scope, "zero", 0.0), g.const(scope, "one", 1.0)])
        return bias, keep
    return g.memo(("mask", g.mask), make)


def _self_attention(g, scope, mha, x):
    """mha(x, x, x, key_padding_mask=g.mask)[0] on batch-first x (B, L, E)."""
    E, H, D = mha.embed_dim, mha.num_heads, mha.head_dim
    w = _host(mha.in_proj_weight)
    b = None if mha.in_proj_bias is None else _host(mha.in_proj_bias)
    heads = {}
    for i, (name, perm) in enumerate((("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3]))):
        t = g.matmul_add(scope, x, w[i * E:(i + 1) * E], None if b is None else b[i * E:(i + 1) * E],
                         f"in_proj_weight_{name}", f"in_proj_bias_{name}")
        t = g.node(scope, "Reshape", [t, g.ints(scope, "heads", [0, 0, H, D])])
        heads[name] = g.node(scope, "Transpose", [t], perm=perm)  # q, v (B, H, L, D); k (B, H, D, L)
    s = g.node(scope, "MatMul", [heads["q"], heads["k"]])
    s = g.node(scope, "Mul", [s, g.const(scope, "scale", 1.0 / math.sqrt(D))])
    if g.mask is not None:
        bias, keep = _mask_terms(g, scope)
        s = g.node(scope, "Add", [s, bias])
        p = g.node(scope, "Mul", [g.node(scope, "Softmax", [s], axis=-1), keep])
    else:
        p = g.node(scope, "Softmax", [s], axis=-1)
    o = g.node(scope, "Transpose", [g.node(scope, "MatMul", [p, heads["v"]])], perm=[0, 2, 1, 3])
    o = g.node(scope, "Reshape", [o, g.ints(scope, "merge", [0, 0, E])])
    out = mha.out_proj
    pre = f"{scope}.out_proj"
    return g.matmul_add(pre, o, _host(out.weight), None if out.bias is None else _host(out.bias))


def _batch_first(g, scope, mha, x, fn):
    if len(g.shape) != 3:
        raise NotImplementedError(f"[onnx.export] {scope or '<model>'} exports batched (3-D) inputs only, "
                                  f"got shape {g.shape}")
    if mha.batch_first:
        return fn(x)
    t = g.node(scope, "Transpose", [x], perm=[1, 0, 2])
    return g.node(scope, "Transpose", [fn(t)], perm=[1, 0, 2])


def mha(g, scope, layer, x):
    return _batch_first(g, scope, layer, x, lambda t: _self_attention(g, scope, layer, t))


def _feed_forward(g, scope, layer, x):
    pre = f"{scope}." if scope else ""
    l1, l2 = layer.linear1, layer.linear2
    h = g.matmul_add(pre + "linear1", x, _host(l1.weight), None if l1.bias is None else _host(l1.bias))
    act = layer.activation
    if isinstance(act, str):
        h = activation(g, pre + "activation", act, 0.0, h)
    else:
        from ._walk import leaf_of, leaf_type

        if leaf_type(act) is None or leaf_of(act).outputs != 1:
            raise NotImplementedError(
                f"[onnx.export] {scope or '<model>'} (TransformerEncoderLayer) has activation {act!r}; "
                "export takes 'relu', 'gelu' or an exportable activation Module")
        h = leaf_of(act).emit(g, pre + "activation", act, h)
    return g.matmul_add(pre + "linear2", h, _host(l2.weight), None if l2.bias is None else _host(l2.bias))


def _encoder_layer(g, scope, layer, x):
    pre = f"{scope}." if scope else ""
    sa = lambda t: _self_attention(g, pre + "self_attn", layer.self_attn, t)  # noqa: E731
    n1 = lambda t: _layer_norm(g, pre + "norm1", layer.norm1, t)  # noqa: E731
    n2 = lambda t: _layer_norm(g, pre + "norm2", layer.norm2, t)  # noqa: E731
    ff = lambda t: _feed_forward(g, scope, layer, t)  # noqa: E731
    if layer.norm_first:
        x = g.node(scope, "Add", [x, sa(n1(x))])
        return g.node(scope, "Add", [x, ff(n2(x))])
    x = n1(g.node(scope, "Add", [x, sa(x)]))
    return n2(g.node(scope, "Add", [x, ff(x)]))


def encoder_layer(g, scope, layer, x):
    return _batch_first(g, scope, layer.self_attn, x, lambda t: _encoder_layer(g, scope, layer, t))


def encoder(g, scope, layer, x):
    pre = f"{scope}." if scope else ""
    first = layer.layers[0].self_attn

    def body(t):
        for i, sub in enumerate(layer.layers):
            t = _encoder_layer(g, f"{pre}layers.{i}", sub, t)
        if layer.norm is not None:
            from ._walk import leaf_of, leaf_type

            if leaf_type(layer.norm) is None:
                raise NotImplementedError(f"[onnx.export] {pre}norm ({type(layer.norm).__name__}) is not exportable")
            t = leaf_of(layer.norm).emit(g, pre + "norm", layer.norm, t)
        return t
    return _batch_first(g, scope, first, x, body)
