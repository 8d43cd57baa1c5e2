"""ParT-lite: a small Particle Transformer (Qu, Li & Qian 2022) for the top/QCD jet sample.
Particle features -> embedding MLP; pairwise features (ln kT, ln z, ln dR, ln m^2 of each
constituent pair) -> a per-head pair bias added to the attention scores; a few masked particle
attention blocks; a class token attending to the particles (class attention); a linear head.
Builder and features only: the training driver is examples/top_tagging.py.

    >>> import numpy as np, hepnn
    >>> from part import ParTLite, particle_features, pair_features
    >>> cons = np.abs(np.random.default_rng(0).normal(size=(2, 16, 4))).astype(np.float32)
    >>> n = np.array([16, 9])
    >>> model = ParTLite(embed_dim=16, num_heads=2, num_layers=1, num_cls_layers=1)
    >>> x, pad = particle_features(cons, n)
    >>> model(hepnn.tensor(x), hepnn.tensor(pair_features(cons, n)), pad).shape
    (2, 1)
"""
from __future__ import annotations

import numpy as np

import hepnn
from hepnn import nn

PARTICLE_FEATURES = ("deta", "dphi", "ln_pt", "ln_e", "ln_pt_rel", "ln_e_rel", "dR")
PAIR_FEATURES = ("ln_kT", "ln_z", "ln_dR", "ln_m2")
_EPS = 1e-8


def particle_features(constituents, n_constituents):
    """(B, L, 7) float32 per-particle inputs and the (B, L) padding mask (True = padded) from
    constituents (B, L, 4) = pt, deta, dphi, e. Padded entries are 0."""
    c = np.asarray(constituents, dtype=np.float64)
    pt, deta, dphi, e = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    L = c.shape[1]
    pad = np.arange(L)[None, :] >= np.asarray(n_constituents)[:, None]
    real = ~pad
    jet_pt = np.sum(pt * real, axis=1, keepdims=True)
    jet_e = np.sum(e * real, axis=1, keepdims=True)
    feats = np.stack([deta, dphi, np.log(pt + _EPS), np.log(e + _EPS), np.log(pt / jet_pt + _EPS),
                      np.log(e / jet_e + _EPS), np.hypot(deta, dphi)], axis=-1)
    return np.where(real[..., None], feats, 0.0).astype(np.float32), pad


def pair_features(constituents, n_constituents):
    """(B, L, L, 4) float32 pairwise inputs ln kT, ln z, ln dR, ln m^2 (0 on pairs with a padded
    particle and on the diagonal). Momenta are built in the jet frame from (pt, deta, dphi, e)."""
    c = np.asarray(constituents, dtype=np.float64)
    pt, deta, dphi, e = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    L = c.shape[1]
    real = np.arange(L)[None, :] < np.asarray(n_constituents)[:, None]
    px, py, pz = pt * np.cos(dphi), pt * np.sin(dphi), pt * np.sinh(deta)
    d_eta = deta[:, :, None] - deta[:, None, :]
    d_phi = np.remainder(dphi[:, :, None] - dphi[:, None, :] + np.pi, 2 * np.pi) - np.pi
    dr = np.hypot(d_eta, d_phi)
    ptmin = np.minimum(pt[:, :, None], pt[:, None, :])
    kt = ptmin * dr
    z = ptmin / (pt[:, :, None] + pt[:, None, :] + _EPS)
    m2 = ((e[:, :, None] + e[:, None, :]) ** 2 - (px[:, :, None] + px[:, None, :]) ** 2
          - (py[:, :, None] + py[:, None, :]) ** 2 - (pz[:, :, None] + pz[:, None, :]) ** 2)
    feats = np.stack([np.log(kt + _EPS), np.log(z + _EPS), np.log(dr + _EPS),
                      np.log(np.maximum(m2, 0.0) + _EPS)], axis=-1)
    keep = real[:, :, None] & real[:, None, :] & ~np.eye(L, dtype=bool)[None]
    return np.where(keep[..., None], feats, 0.0).astype(np.float32)


class ParTLite(nn.Module):
    """Particle Transformer, small: embed (7 -> d), pair embedding (4 -> 64 -> H), num_layers
    particle attention blocks with the pair bias, num_cls_layers class-attention blocks, a final
    LayerNorm and Linear(d, num_classes). forward(x (B,L,7), pairs (B,L,L,4), padding_mask (B,L))
    returns logits (B, num_classes). Dropout 0 (the sample is small; no regulariser needed here).
    """

    def __init__(self, embed_dim: int = 64, num_heads: int = 8, num_layers: int = 3,
                 num_cls_layers: int = 2, pair_hidden: int = 64, num_classes: int = 1,
                 n_particle: int = len(PARTICLE_FEATURES), n_pair: int = len(PAIR_FEATURES)):
        super().__init__()
        self.num_heads = num_heads
        self.embed = nn.Sequential(nn.LayerNorm(n_particle), nn.Linear(n_particle, embed_dim), nn.GELU(),
                                   nn.Linear(embed_dim, embed_dim))
        self.pair_embed = nn.Sequential(nn.Linear(n_pair, pair_hidden), nn.GELU(),
                                        nn.Linear(pair_hidden, num_heads))
        block = dict(embed_dim=embed_dim, num_heads=num_heads, dropout=0.0, attn_dropout=0.0,
                     activation_dropout=0.0)
        self.blocks = nn.ModuleList([nn.ParticleAttentionBlock(**block) for _ in range(num_layers)])
        self.cls_blocks = nn.ModuleList([nn.ParticleAttentionBlock(**block) for _ in range(num_cls_layers)])
        self.cls_token = nn.Parameter(np.zeros((1, 1, embed_dim), dtype=np.float32))
        nn.init.normal_(self.cls_token, 0.0, 0.02)
        self.norm = nn.LayerNorm(embed_dim)
        self.fc = nn.Linear(embed_dim, num_classes)

    def forward(self, x, pairs, padding_mask):
        B, L = x.shape[0], x.shape[1]
        real = hepnn.tensor((~np.asarray(padding_mask))[..., None].astype(x.dtype))
        h = self.embed(x) * real  # padded particles stay exactly 0
        # (B, L, L, H) -> (B, H, L, L): one bias per head, as ParT's attn_mask (B*H, L, L)
        bias = self.pair_embed(pairs).permute(0, 3, 1, 2).reshape(B * self.num_heads, L, L)
        for blk in self.blocks:
            h = blk(h, padding_mask=padding_mask, attn_mask=bias)
        cls = self.cls_token.expand(B, 1, self.cls_token.shape[-1])
        for blk in self.cls_blocks:
            cls = blk(h, x_cls=cls, padding_mask=padding_mask)
        return self.fc(self.norm(cls).reshape(B, -1))


def build_part_lite(**kwargs) -> ParTLite:
    """ParTLite with the defaults above (kwargs override); see the class docstring."""
    return ParTLite(**kwargs)


def load_sample(path="examples/data/top_qcd_sample.npz", max_jets=None, max_particles=128):
    """(particle features, pair features, padding mask, labels) from the committed sample."""
    data = np.load(path)
    cons, n = data["constituents"], np.minimum(data["n_constituents"], max_particles)
    if max_jets is not None:
        cons, n = cons[:max_jets], n[:max_jets]
    cons = cons[:, :max_particles]
    x, pad = particle_features(cons, n)
    return x, pair_features(cons, n), pad, data["label"][:len(n)].astype(np.float32)
