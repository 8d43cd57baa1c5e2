"""examples/taggers/part.py (ParT-lite) against a PyTorch twin written here from the ParT paper's
block (same state_dict names): logits and every parameter gradient on real top/QCD jets, and
masking independence (garbage in padded particles changes nothing)."""
import os
import sys

import numpy as np
import pytest

import hepnn

torch = pytest.importorskip("torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "taggers"))
part = pytest.importorskip("part")
tnn = torch.nn


class TBlock(tnn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h, self.hd = h, d // h
        self.pre_attn_norm = tnn.LayerNorm(d)
        self.attn = tnn.MultiheadAttention(d, h, batch_first=True)
        self.post_attn_norm = tnn.LayerNorm(d)
        self.pre_fc_norm = tnn.LayerNorm(d)
        self.fc1 = tnn.Linear(d, 4 * d)
        self.post_fc_norm = tnn.LayerNorm(4 * d)
        self.fc2 = tnn.Linear(4 * d, d)
        self.c_attn = tnn.Parameter(torch.ones(h))
        self.w_resid = tnn.Parameter(torch.ones(d))

    def forward(self, x, x_cls=None, padding_mask=None, attn_mask=None):
        if x_cls is not None:
            padding_mask = torch.cat([torch.zeros_like(padding_mask[:, :1]), padding_mask], 1)
            residual = x_cls
            u = self.pre_attn_norm(torch.cat([x_cls, x], 1))
            x = self.attn(x_cls, u, u, key_padding_mask=padding_mask, need_weights=False)[0]
        else:
            residual = x
            x = self.pre_attn_norm(x)
            m = torch.where(padding_mask, -torch.inf, 0.0).to(x.dtype)
            x = self.attn(x, x, x, key_padding_mask=m, attn_mask=attn_mask, need_weights=False)[0]
        B, T, C = x.shape
        x = torch.einsum("bthd,h->btdh", x.view(B, T, self.h, self.hd), self.c_attn).reshape(B, T, C)
        x = self.post_attn_norm(x) + residual
        residual = x
        x = self.fc2(self.post_fc_norm(torch.nn.functional.gelu(self.fc1(self.pre_fc_norm(x)))))
        return x + self.w_resid * residual


class TParT(tnn.Module):
    def __init__(self, d, h, layers, cls_layers, hidden=64):
        super().__init__()
        self.h = h
        self.embed = tnn.Sequential(tnn.LayerNorm(7), tnn.Linear(7, d), tnn.GELU(), tnn.Linear(d, d))
        self.pair_embed = tnn.Sequential(tnn.Linear(4, hidden), tnn.GELU(), tnn.Linear(hidden, h))
        self.blocks = tnn.ModuleList([TBlock(d, h) for _ in range(layers)])
        self.cls_blocks = tnn.ModuleList([TBlock(d, h) for _ in range(cls_layers)])
        self.cls_token = tnn.Parameter(torch.zeros(1, 1, d))
        self.norm = tnn.LayerNorm(d)
        self.fc = tnn.Linear(d, 1)

    def forward(self, x, pairs, pad):
        B, L = x.shape[:2]
        h = self.embed(x) * (~pad)[..., None].to(x.dtype)
        bias = self.pair_embed(pairs).permute(0, 3, 1, 2).reshape(B * self.h, L, L)
        for blk in self.blocks:
            h = blk(h, padding_mask=pad, attn_mask=bias)
        cls = self.cls_token.expand(B, 1, -1)
        for blk in self.cls_blocks:
            cls = blk(h, x_cls=cls, padding_mask=pad)
        return self.fc(self.norm(cls).reshape(B, -1))


def _inputs(n_jets=6, L=40):
    data = np.load(os.path.join(ROOT, "examples", "data", "top_qcd_sample.npz"))
    cons = data["constituents"][:n_jets, :L]
    n = np.minimum(data["n_constituents"][:n_jets], L)
    n[1] = 7  # a short jet: most of its row is padding
    x, pad = part.particle_features(cons, n)
    return x, part.pair_features(cons, n), pad


def test_part_lite_matches_torch_twin():
    torch.manual_seed(0)
    tm = TParT(16, 4, 2, 1).double()
    with torch.no_grad():
        for p in tm.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model = part.ParTLite(embed_dim=16, num_heads=4, num_layers=2, num_cls_layers=1).double()
    assert sorted(model.state_dict()) == sorted(tm.state_dict())
    model.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x, pairs, pad = _inputs()
    out = model(hepnn.tensor(x.astype(np.float64)), hepnn.tensor(pairs.astype(np.float64)), pad)
    tout = tm(torch.tensor(x, dtype=torch.float64), torch.tensor(pairs, dtype=torch.float64), torch.tensor(pad))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-10)
    out.sum().backward()
    tout.sum().backward()
    grads = dict(model.named_parameters())
    for name, tp in tm.named_parameters():
        np.testing.assert_allclose(grads[name].grad.numpy(), tp.grad.numpy(), rtol=1e-7, atol=1e-9,
                                   err_msg=name)


def test_part_lite_ignores_padded_particles():
    model = part.ParTLite(embed_dim=16, num_heads=2, num_layers=1, num_cls_layers=1)
    x, pairs, pad = _inputs()
    base = model(hepnn.tensor(x), hepnn.tensor(pairs), pad).numpy()
    rng = np.random.default_rng(0)
    xg = np.where(pad[..., None], rng.normal(size=x.shape) * 100, x).astype(np.float32)
    both = pad[:, :, None] | pad[:, None, :]
    pg = np.where(both[..., None], rng.normal(size=pairs.shape) * 100, pairs).astype(np.float32)
    np.testing.assert_allclose(model(hepnn.tensor(xg), hepnn.tensor(pg), pad).numpy(), base,
                               rtol=1e-5, atol=1e-6)


def test_part_lite_trains_on_the_sample():
    hepnn.manual_seed(0)
    data = np.load(os.path.join(ROOT, "examples", "data", "top_qcd_sample.npz"))
    idx = np.r_[0:16, 1500:1516]  # both classes
    cons, n = data["constituents"][idx, :40], np.minimum(data["n_constituents"][idx], 40)
    x, pad = part.particle_features(cons, n)
    pairs = part.pair_features(cons, n)
    y = hepnn.tensor(data["label"][idx, None].astype(np.float32))
    model = part.build_part_lite(embed_dim=16, num_heads=2, num_layers=1, num_cls_layers=1)
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = hepnn.nn.BCEWithLogitsLoss()
    xt, pt = hepnn.tensor(x), hepnn.tensor(pairs)
    losses = []
    for _ in range(40):
        loss = loss_fn(model(xt, pt, pad), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0]
