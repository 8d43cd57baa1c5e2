"""Functional attention and layer norm (re-exported by nn.functional): torch's
scaled_dot_product_attention signature plus key_padding_mask and pair_bias (ParT's interaction
matrix), turned into the fused kernel's key mask and additive bias; layer_norm with torch's args.
"""
import math

import numpy as np

from .. import _backend
from .._ops_attention import attention as _attention, layer_norm as _layer_norm
from ..autograd import constant
from ..tensor import Tensor
from .functional import dropout as _dropout

_OP = "scaled_dot_product_attention"


def _raw(m, ref):
    """The array behind a mask (Tensor, array or list) on ref's device."""
    a = m.data if isinstance(m, Tensor) else m
    if _backend.device_of(a) != ref.device:
        a = _backend.to_device(a, ref.device)
    return _backend.xp_of(ref.data).asarray(a)


def _as_tensor(b, ref):
    return b if isinstance(b, Tensor) else constant(_raw(b, ref).astype(ref.dtype, copy=False))


def _full_bias(bias, B, H, Lq, Lk, name):
    """bias broadcast to (B, 1, Lq, Lk) or (B, H, Lq, Lk) (a view; autograd sums it back)."""
    shape = tuple(bias.shape)
    try:
        full = np.broadcast_shapes(shape, (1, 1, Lq, Lk))
    except ValueError:
        full = None
    if full is None or len(full) != 4 or full[2:] != (Lq, Lk) or full[0] not in (1, B) or full[1] not in (1, H):
        raise ValueError(f"[{_OP}] {name} has shape {shape}, which does not broadcast to "
                         f"(B, H, Lq, Lk) = {(B, H, Lq, Lk)}")
    heads = full[1]
    if shape == (B, heads, Lq, Lk):
        return bias
    return bias.expand(B, heads, Lq, Lk)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, key_padding_mask=None, pair_bias=None):
    """softmax(query @ key^T * scale + bias) @ value, fused (flash-style) on (B, H, L, D) tensors.

    attn_mask follows torch's F.scaled_dot_product_attention: bool True = may attend, or a float
    tensor added to the scores; it broadcasts to (B, H, Lq, Lk). A bool mask of shape (B, 1, 1,
    Lk) (a key-padding mask) goes to the kernel as a key mask, so padded keys cost nothing.
    key_padding_mask (B, Lk) bool follows nn.MultiheadAttention: True = padded (ignored key).
    pair_bias (B, 1 or H, Lq, Lk) is ParT's interaction matrix, added to the scores with its
    gradient. 3-D inputs (B, L, D) are one head. NOTE: a query whose keys are all masked gets a
    zero output (torch gives NaN). dropout_p > 0 drops attention weights through an unfused path.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> q = hepnn.randn(2, 4, 5, 8)
        >>> pad = hepnn.tensor([[False] * 5, [False] * 3 + [True] * 2])
        >>> F.scaled_dot_product_attention(q, q, q, key_padding_mask=pad).shape
        (2, 4, 5, 8)
    """
    squeeze = query.ndim == 3
    if squeeze:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim != 4:
            raise ValueError(f"[{_OP}] {name} must be a 3-D or 4-D tensor (B, H, L, D), got "
                             f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    B, H, Lq, D = query.shape
    Lk = key.shape[2]
    if key.shape != (B, H, Lk, D) or value.shape != (B, H, Lk, D):
        raise ValueError(f"[{_OP}] key {tuple(key.shape)} and value {tuple(value.shape)} must be "
                         f"(B, H, Lk, D) with B, H, D of query {tuple(query.shape)}")
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)):
        raise ValueError(f"[{_OP}] scale must be a finite number, got {scale!r}")
    xp = _backend.xp_of(query.data)
    keep = None  # (B, Lk) bool, True = real key
    if key_padding_mask is not None:
        kpm = _raw(key_padding_mask, query)
        if kpm.dtype != np.bool_ or kpm.shape != (B, Lk):
            raise ValueError(f"[{_OP}] key_padding_mask must be bool (B, Lk) = {(B, Lk)}, got "
                             f"{kpm.dtype} {tuple(kpm.shape)}")
        keep = ~kpm
    biases = []
    if attn_mask is not None:
        m = _raw(attn_mask, query) if not isinstance(attn_mask, Tensor) or attn_mask.dtype == np.bool_ else None
        if m is not None and m.dtype == np.bool_:
            lead = (1,) * (4 - m.ndim) + tuple(m.shape) if m.ndim <= 4 else m.shape
            if len(lead) == 4 and lead[1] == 1 and lead[2] == 1 and lead[3] == Lk and lead[0] in (1, B):
                km = xp.broadcast_to(m.reshape(lead[0], Lk), (B, Lk))
                keep = km if keep is None else keep & km
            else:
                neg = xp.where(m, 0.0, -np.inf).astype(query.dtype)
                biases.append(_full_bias(constant(neg), B, H, Lq, Lk, "attn_mask"))
        else:
            biases.append(_full_bias(_as_tensor(attn_mask, query), B, H, Lq, Lk, "attn_mask"))
    if is_causal:
        causal = xp.triu(xp.full((Lq, Lk), -np.inf, dtype=query.dtype), 1)
        biases.append(_full_bias(constant(causal), B, H, Lq, Lk, "causal mask"))
    if pair_bias is not None:
        biases.append(_full_bias(_as_tensor(pair_bias, query), B, H, Lq, Lk, "pair_bias"))
    bias = None
    for b in biases:
        bias = b if bias is None else bias + b
    if bias is not None and tuple(bias.shape) != (B, bias.shape[1], Lq, Lk):
        bias = bias.expand(B, bias.shape[1], Lq, Lk)
    if keep is not None:
        keep = xp.ascontiguousarray(keep)
    if dropout_p > 0.0:
        out = _attention_unfused(query, key, value, keep, bias, scale, float(dropout_p))
    else:
        out = _attention(query, key, value, keep, bias, scale)
    return out.squeeze(1) if squeeze else out


def _attention_unfused(q, k, v, keep, bias, scale, dropout_p):
    """The same attention through matmul / softmax / dropout (only used with dropout)."""
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"[{_OP}] dropout_p must be in [0, 1), got {dropout_p}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        s = s + bias
    if keep is not None:
        # NOTE: a large finite fill (not -inf) so a row with no real key stays finite; the
        # multiply by `keep` after the softmax then zeroes it, as the fused kernel does.
        xp = _backend.xp_of(q.data)
        fill = xp.where(keep, 0.0, -1e30).astype(q.dtype)[:, None, None, :]
        s = s + constant(fill)
        p = s.softmax(-1) * constant(keep.astype(q.dtype)[:, None, None, :])
    else:
        p = s.softmax(-1)
    return _dropout(p, dropout_p, True) @ v


def attention_weights(query, key, key_padding_mask=None, attn_mask=None, scale=None):
    """softmax(query @ key^T * scale + attn_mask) with padded keys at 0 (B, H, Lq, Lk), for
    need_weights=True; attn_mask here is already an additive float tensor (or None).

    Example:
        >>> import hepnn
        >>> from hepnn.nn._functional_attention import attention_weights
        >>> attention_weights(hepnn.randn(1, 2, 3, 4), hepnn.randn(1, 2, 5, 4)).shape
        (1, 2, 3, 5)
    """
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    s = (query @ key.transpose(-2, -1)) * scale
    if attn_mask is not None:
        s = s + attn_mask
    if key_padding_mask is None:
        return s.softmax(-1)
    pad = _raw(key_padding_mask, query)[:, None, None, :]
    xp = _backend.xp_of(query.data)
    s = s + constant(xp.where(pad, -1e30, 0.0).astype(query.dtype))
    return s.softmax(-1) * constant((~pad).astype(query.dtype))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the trailing `normalized_shape` dims (torch's F.layer_norm).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> y = F.layer_norm(hepnn.randn(4, 10), (10,))
        >>> round(abs(y.mean().item()), 5)
        0.0
    """
    ns = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(
        int(n) for n in normalized_shape)
    if not ns or tuple(input.shape[len(input.shape) - len(ns):]) != ns or input.ndim < len(ns):
        raise ValueError(f"[layer_norm] input of shape {tuple(input.shape)} does not end in "
                         f"normalized_shape {ns}")
    if float(eps) < 0 or not math.isfinite(float(eps)):
        raise ValueError(f"[layer_norm] eps must be finite and >= 0, got {eps}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != ns:
            raise ValueError(f"[layer_norm] {name} has shape {tuple(p.shape)}, expected {ns}")
    if input.dtype.kind != "f":
        raise TypeError(f"[layer_norm] needs a floating point input, got {input.dtype}")
    if len(ns) == 1:
        return _layer_norm(input, weight, bias, eps)
    n = int(np.prod(ns))
    flat = input.reshape(tuple(input.shape[:input.ndim - len(ns)]) + (n,))
    y = _layer_norm(flat, None if weight is None else weight.reshape(n),
                    None if bias is None else bias.reshape(n), eps)
    return y.reshape(input.shape)
