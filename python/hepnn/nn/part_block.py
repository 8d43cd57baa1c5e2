"""ParticleAttentionBlock: the attention block of the Particle Transformer (ParT, Qu, Li & Qian
2022) with its layout and parameter names, batch-first. The same block runs particle attention
(x attends to x with the pair bias as attn_mask) and class attention (x_cls attends to [x_cls, x]).
"""
from __future__ import annotations

import numpy as np

from .. import _backend
from ..ops import cat
from ..tensor import Tensor
from . import init as _init
from .dropout import Dropout
from .layernorm import LayerNorm
from .linear import Linear
from .module import Module
from .parameter import Parameter
from .transformer import MultiheadAttention


class ParticleAttentionBlock(Module):
    """ParT's ``Block``: pre-norm attention with extra LayerNorms, per-head scales ``c_attn`` and
    a residual scale ``w_resid``::

        x = x + post_attn_norm(head_scale(attn(pre_attn_norm(x)))))
        x = w_resid * x + fc2(post_fc_norm(gelu(fc1(pre_fc_norm(x)))))

    forward(x, x_cls=None, padding_mask=None, attn_mask=None): x (B, L, C) particles,
    padding_mask (B, L) bool with True = padded. With x_cls (B, 1, C) the class token is the
    only query and attends to itself and the real particles; the result replaces x_cls.
    NOTE: the head scale follows ParT's einsum 'tbhd,h->tbdh' (the scaled heads are laid out
    head-dim major before the reshape) so that ParT checkpoints give the same numbers.

    Example::

        >>> import hepnn
        >>> blk = hepnn.nn.ParticleAttentionBlock(16, num_heads=4, dropout=0.0, attn_dropout=0.0,
        ...                                       activation_dropout=0.0)
        >>> x, cls = hepnn.randn(2, 6, 16), hepnn.randn(2, 1, 16)
        >>> blk(x, x_cls=cls).shape
        (2, 1, 16)
    """

    def __init__(self, embed_dim: int = 128, num_heads: int = 8, ffn_ratio: int = 4,
                 dropout: float = 0.1, attn_dropout: float = 0.1, activation_dropout: float = 0.1,
                 scale_fc: bool = True, scale_attn: bool = True, scale_heads: bool = True,
                 scale_resids: bool = True, dtype=np.float32):
        super().__init__()
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.ffn_dim = self.embed_dim * int(ffn_ratio)
        self.pre_attn_norm = LayerNorm(embed_dim, dtype=dtype)
        self.attn = MultiheadAttention(embed_dim, num_heads, dropout=attn_dropout, dtype=dtype)
        self.post_attn_norm = LayerNorm(embed_dim, dtype=dtype) if scale_attn else None
        self.dropout = Dropout(dropout)
        self.pre_fc_norm = LayerNorm(embed_dim, dtype=dtype)
        self.fc1 = Linear(embed_dim, self.ffn_dim, dtype=dtype)
        self.act_dropout = Dropout(activation_dropout)
        self.post_fc_norm = LayerNorm(self.ffn_dim, dtype=dtype) if scale_fc else None
        self.fc2 = Linear(self.ffn_dim, embed_dim, dtype=dtype)
        self.c_attn = Parameter(np.ones(num_heads, dtype=dtype)) if scale_heads else None
        self.w_resid = Parameter(np.ones(embed_dim, dtype=dtype)) if scale_resids else None

    def reset_parameters(self) -> None:
        for p in (self.c_attn, self.w_resid):
            if p is not None:
                _init.constant_(p, 1.0)

    def forward(self, x, x_cls=None, padding_mask=None, attn_mask=None):
        if x_cls is not None:
            if padding_mask is not None:  # the class token itself is never padded
                pm = padding_mask.data if isinstance(padding_mask, Tensor) else padding_mask
                xp = _backend.xp_of(pm)
                pm = xp.asarray(pm)
                padding_mask = xp.concatenate([xp.zeros_like(pm[:, :1]), pm], axis=1)
            residual = x_cls
            u = self.pre_attn_norm(cat([x_cls, x], dim=1))
            x = self.attn(x_cls, u, u, key_padding_mask=padding_mask)[0]
        else:
            residual = x
            x = self.pre_attn_norm(x)
            x = self.attn(x, x, x, key_padding_mask=padding_mask, attn_mask=attn_mask)[0]
        if self.c_attn is not None:
            B, T = x.shape[0], x.shape[1]
            x = x.reshape(B, T, self.num_heads, self.head_dim).permute(0, 1, 3, 2) * self.c_attn
            x = x.reshape(B, T, self.embed_dim)
        if self.post_attn_norm is not None:
            x = self.post_attn_norm(x)
        x = self.dropout(x) + residual
        residual = x
        x = self.act_dropout(self.fc1(self.pre_fc_norm(x), activation="gelu"))
        if self.post_fc_norm is not None:
            x = self.post_fc_norm(x)
        x = self.dropout(self.fc2(x))
        if self.w_resid is not None:
            residual = self.w_resid * residual
        return x + residual
