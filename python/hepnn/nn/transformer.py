"""Transformer layers with torch's names and state_dict layout, on the fused attention kernel:
MultiheadAttention (in_proj_weight, in_proj_bias, out_proj), TransformerEncoderLayer (self_attn,
linear1, linear2, norm1, norm2; post- or pre-norm) and TransformerEncoder (layers.0, ...).
Inputs are batch-first (B, L, E) by default; key_padding_mask is bool with True = padded.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import _backend
from ..autograd import constant
from ..tensor import Tensor
from . import functional as F
from . import init as _init
from ._functional_attention import attention_weights, scaled_dot_product_attention
from .container import ModuleList
from .dropout import Dropout
from .layernorm import LayerNorm
from .linear import Linear
from .module import Module
from .parameter import Parameter

_ACTS = ("relu", "gelu")


def _mask_bias(attn_mask, B, H, Lq, Lk, ref):
    """torch's MHA attn_mask (bool True = blocked, or float additive; (Lq, Lk) or (B*H, Lq, Lk))
    as an additive tensor that broadcasts to (B, H, Lq, Lk)."""
    if attn_mask is None:
        return None
    m = attn_mask if isinstance(attn_mask, Tensor) else constant(_backend.xp_of(ref.data).asarray(attn_mask))
    if m.dtype == np.bool_:
        xp = _backend.xp_of(m.data)
        m = constant(xp.where(m.data, -np.inf, 0.0).astype(ref.dtype))
    elif m.dtype != ref.dtype:
        raise TypeError(f"[MultiheadAttention] attn_mask has dtype {m.dtype}, expected bool or {ref.dtype}")
    if tuple(m.shape) == (Lq, Lk):
        return m.reshape(1, 1, Lq, Lk)
    if tuple(m.shape) == (B * H, Lq, Lk):
        return m.reshape(B, H, Lq, Lk)
    if tuple(m.shape) in ((B, H, Lq, Lk), (B, 1, Lq, Lk)):
        return m
    raise ValueError(f"[MultiheadAttention] attn_mask has shape {tuple(m.shape)}, expected "
                     f"{(Lq, Lk)}, {(B * H, Lq, Lk)} or {(B, H, Lq, Lk)}")


class MultiheadAttention(Module):
    """Multi-head attention ``out_proj(concat_h softmax(q_h k_h^T / sqrt(d) + mask) v_h)`` with
    torch's parameters (``in_proj_weight`` (3E, E), ``in_proj_bias``, ``out_proj``), so a
    ``torch.nn.MultiheadAttention`` state_dict loads as is. forward returns ``(output, weights)``;
    weights are None unless ``need_weights=True`` (computed then by a separate, unfused pass).
    NOTE: a query whose keys are all padded gets zeros before out_proj (torch gives NaN).

    Example::

        >>> import hepnn
        >>> mha = hepnn.nn.MultiheadAttention(16, 4)
        >>> x = hepnn.randn(2, 5, 16)
        >>> pad = hepnn.tensor([[False] * 5, [False] * 3 + [True] * 2])
        >>> mha(x, x, x, key_padding_mask=pad)[0].shape
        (2, 5, 16)
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = True, device: str = "cpu", dtype=np.float32):
        super().__init__()
        embed_dim, num_heads = int(embed_dim), int(num_heads)
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive "
                             f"multiple of num_heads ({num_heads})")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.reset_parameters()
        if device != "cpu":
            self.to(device)

    def reset_parameters(self) -> None:
        _init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            _init.zeros_(self.in_proj_bias)
            _init.zeros_(self.out_proj.bias)

    def _heads(self, t, B, L):
        return t.reshape(B, L, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = False,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = _backend.xp_of(query.data).asarray(
                    key_padding_mask.data if isinstance(key_padding_mask, Tensor) else key_padding_mask)[None]
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.ndim != 3 or t.shape[-1] != self.embed_dim:
                raise ValueError(f"[MultiheadAttention] {name} has shape {tuple(t.shape)}, expected "
                                 f"(B, L, {self.embed_dim})")
        B, Lq, E = query.shape
        Lk = key.shape[1]
        if key.shape[0] != B or value.shape[:2] != key.shape[:2]:
            raise ValueError(f"[MultiheadAttention] query {tuple(query.shape)}, key {tuple(key.shape)} "
                             f"and value {tuple(value.shape)} disagree on batch or key length")
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:
            qkv = F.linear(query, w, b).reshape(B, Lq, 3, self.num_heads, self.head_dim)
            qkv = qkv.permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            q = self._heads(F.linear(query, w[:E], None if b is None else b[:E]), B, Lq)
            k = self._heads(F.linear(key, w[E:2 * E], None if b is None else b[E:2 * E]), B, Lk)
            v = self._heads(F.linear(value, w[2 * E:], None if b is None else b[2 * E:]), B, Lk)
        bias = _mask_bias(attn_mask, B, self.num_heads, Lq, Lk, query)
        drop = self.dropout if self.training else 0.0
        o = scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=is_causal,
                                         key_padding_mask=key_padding_mask, pair_bias=bias)
        out = self.out_proj(o.permute(0, 2, 1, 3).reshape(B, Lq, E))
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if need_weights:
            weights = attention_weights(q, k, key_padding_mask, bias)
            if average_attn_weights:
                weights = weights.mean(1)
            if unbatched:
                weights = weights.squeeze(0)
        return out, weights

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


class TransformerEncoderLayer(Module):
    """Self-attention plus feed-forward block, torch's layout: post-norm
    ``x = norm1(x + sa(x)); x = norm2(x + ff(x))`` or, with norm_first, pre-norm
    ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``; ff = linear2(dropout(act(linear1(x)))).

    Example::

        >>> import hepnn
        >>> layer = hepnn.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0)
        >>> layer(hepnn.randn(2, 7, 32)).shape
        (2, 7, 32)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True, device: str = "cpu", dtype=np.float32):
        super().__init__()
        if isinstance(activation, str) and activation not in _ACTS:
            raise ValueError(f"TransformerEncoderLayer: activation must be one of {_ACTS} or a "
                             f"callable, got {activation!r}")
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = activation
        if device != "cpu":
            self.to(device)

    def _sa(self, x, mask, pad, is_causal):
        x = self.self_attn(x, x, x, key_padding_mask=pad, attn_mask=mask, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff(self, x):
        if isinstance(self.activation, str):  # fused into linear1's kernel
            h = self.linear1(x, activation=self.activation)
        else:
            h = self.activation(self.linear1(x))
        return self.dropout2(self.linear2(self.dropout(h)))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff(x))


class TransformerEncoder(Module):
    """``num_layers`` independent copies of ``encoder_layer`` (state_dict ``layers.0...``), then
    an optional final ``norm``.

    Example::

        >>> import hepnn
        >>> layer = hepnn.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0)
        >>> enc = hepnn.nn.TransformerEncoder(layer, num_layers=2)
        >>> enc(hepnn.randn(3, 5, 16)).shape
        (3, 5, 16)
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True):
        super().__init__()
        if int(num_layers) < 1:
            raise ValueError(f"TransformerEncoder: num_layers must be >= 1, got {num_layers}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(int(num_layers))])
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x
