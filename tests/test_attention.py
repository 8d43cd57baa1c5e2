"""Transformer modules against PyTorch with the same weights (forward and every gradient):
MultiheadAttention (self and cross/class attention, padding mask, float attn_mask as pair
bias), TransformerEncoderLayer (post- and pre-norm, relu and gelu), TransformerEncoder, ParT's
block; masking independence (garbage in padded keys changes nothing); bad input."""
import numpy as np
import pytest

import hepnn
from hepnn import nn
import hepnn.nn.functional as F

torch = pytest.importorskip("torch")


def _copy(model, tmodel):
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})


def _close(a, b, tol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    err = np.max(np.abs(a - b) / (np.abs(b) + 1e-2)) if a.size else 0.0
    assert err <= tol, f"{what}: relative error {err}"


def _padding(rng, B, L):
    n = rng.integers(1, L + 1, size=B)
    n[0] = L  # one jet without padding
    return np.arange(L)[None, :] >= n[:, None]  # True = padded


def _compare_grads(model, tmodel, tol):
    params = dict(model.named_parameters())
    for name, tp in tmodel.named_parameters():
        _close(params[name].grad.numpy(), tp.grad.numpy(), tol, f"grad {name}")


DT = [(np.float64, torch.float64, 1e-9), (np.float32, torch.float32, 1e-3)]


@pytest.mark.parametrize("dtype,tdtype,tol", DT)
def test_sdpa_matches_torch_with_mask_and_bias(dtype, tdtype, tol):
    rng = np.random.default_rng(0)
    B, H, Lq, Lk, D = 3, 4, 9, 13, 6
    q, k, v = (rng.standard_normal((B, H, L, D)) for L in (Lq, Lk, Lk))
    bias = rng.standard_normal((B, 1, Lq, Lk))
    pad = _padding(rng, B, Lk)
    hq, hk, hv, hb = (hepnn.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v, bias))
    tq, tk, tv, tb = (torch.tensor(a, dtype=tdtype, requires_grad=True) for a in (q, k, v, bias))
    out = F.scaled_dot_product_attention(hq, hk, hv, key_padding_mask=pad, pair_bias=hb)
    tmask = tb + torch.where(torch.tensor(pad)[:, None, None, :], -torch.inf, 0.0).to(tdtype)
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask)
    g = rng.standard_normal(tout.shape)
    (out * hepnn.tensor(g.astype(dtype))).sum().backward()
    tout.backward(torch.tensor(g, dtype=tdtype))
    _close(out.numpy(), tout.detach().numpy(), tol, "out")
    for name, a, t in (("q", hq, tq), ("k", hk, tk), ("v", hv, tv), ("bias", hb, tb)):
        _close(a.grad.numpy(), t.grad.numpy(), tol, f"d{name}")


def test_sdpa_bool_attn_mask_and_causal_match_torch():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((2, 3, 7, 5)) for _ in range(3))
    allowed = rng.random((2, 1, 7, 7)) < 0.7
    allowed[..., 0] = True
    hq, hk, hv = (hepnn.tensor(a) for a in (q, k, v))
    tq, tk, tv = (torch.tensor(a) for a in (q, k, v))
    for kw in ({"attn_mask": allowed}, {"is_causal": True}, {"attn_mask": allowed[:, :, :1, :]}):
        tkw = {key: (torch.tensor(val) if key == "attn_mask" else val) for key, val in kw.items()}
        _close(F.scaled_dot_product_attention(hq, hk, hv, **kw).numpy(),
               torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkw).numpy(), 1e-9, str(kw))


def test_sdpa_fully_masked_query_gives_zeros():
    q = hepnn.randn(2, 2, 3, 4, requires_grad=True)
    pad = np.array([[True] * 3, [False, True, True]])
    out = F.scaled_dot_product_attention(q, q, q, key_padding_mask=pad)
    assert np.all(out.numpy()[0] == 0) and np.all(np.isfinite(out.numpy()))
    out.sum().backward()
    assert np.all(np.isfinite(q.grad.numpy())) and np.all(q.grad.numpy()[0] == 0)


@pytest.mark.parametrize("dtype,tdtype,tol", DT)
def test_mha_self_attention_matches_torch(dtype, tdtype, tol):
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    B, L, E, H = 4, 11, 24, 3
    tm = torch.nn.MultiheadAttention(E, H, batch_first=True).to(tdtype)
    with torch.no_grad():
        tm.in_proj_bias.normal_()
        tm.out_proj.bias.normal_()
    m = nn.MultiheadAttention(E, H, dtype=dtype)
    _copy(m, tm)
    x = rng.standard_normal((B, L, E))
    pad = _padding(rng, B, L)
    bias = rng.standard_normal((B * H, L, L))
    hx = hepnn.tensor(x.astype(dtype), requires_grad=True)
    hb = hepnn.tensor(bias.astype(dtype), requires_grad=True)
    tx = torch.tensor(x, dtype=tdtype, requires_grad=True)
    tb = torch.tensor(bias, dtype=tdtype, requires_grad=True)
    out, w = m(hx, hx, hx, key_padding_mask=pad, attn_mask=hb, need_weights=True)
    tpad = torch.where(torch.tensor(pad), -torch.inf, 0.0).to(tdtype)  # float like attn_mask
    tout, tw = tm(tx, tx, tx, key_padding_mask=tpad, attn_mask=tb, need_weights=True)
    _close(out.numpy(), tout.detach().numpy(), tol, "out")
    _close(w.numpy(), tw.detach().numpy(), tol, "weights")
    g = rng.standard_normal(out.shape)
    (out * hepnn.tensor(g.astype(dtype))).sum().backward()
    tout.backward(torch.tensor(g, dtype=tdtype))
    _close(hx.grad.numpy(), tx.grad.numpy(), tol, "dx")
    _close(hb.grad.numpy(), tb.grad.numpy(), tol, "dattn_mask")
    _compare_grads(m, tm, tol)


def test_mha_class_attention_one_query_matches_torch():
    torch.manual_seed(1)
    rng = np.random.default_rng(3)
    B, L, E, H = 5, 10, 16, 4
    tm = torch.nn.MultiheadAttention(E, H, batch_first=True).double()
    m = nn.MultiheadAttention(E, H, dtype=np.float64)
    _copy(m, tm)
    cls, x = rng.standard_normal((B, 1, E)), rng.standard_normal((B, L, E))
    pad = _padding(rng, B, L)
    hc, hx = hepnn.tensor(cls, requires_grad=True), hepnn.tensor(x, requires_grad=True)
    tc, tx = torch.tensor(cls, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = m(hc, hx, hx, key_padding_mask=pad)[0]
    tout = tm(tc, tx, tx, key_padding_mask=torch.tensor(pad), need_weights=False)[0]
    _close(out.numpy(), tout.detach().numpy(), 1e-9, "out")
    out.sum().backward()
    tout.sum().backward()
    _close(hc.grad.numpy(), tc.grad.numpy(), 1e-9, "dcls")
    _close(hx.grad.numpy(), tx.grad.numpy(), 1e-9, "dx")
    _compare_grads(m, tm, 1e-9)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_matches_torch(norm_first, activation):
    torch.manual_seed(2)
    rng = np.random.default_rng(4)
    B, L, E, H, FF = 3, 9, 16, 4, 40
    tl = torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, activation=activation,
                                          batch_first=True, norm_first=norm_first)
    tenc = torch.nn.TransformerEncoder(tl, 2, enable_nested_tensor=False).double()
    with torch.no_grad():
        for p in tenc.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-trivial LayerNorm weights and biases
    layer = nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, activation=activation,
                                       norm_first=norm_first, dtype=np.float64)
    enc = nn.TransformerEncoder(layer, 2)
    assert sorted(enc.state_dict()) == sorted(tenc.state_dict())
    _copy(enc, tenc)
    x = rng.standard_normal((B, L, E))
    pad = _padding(rng, B, L)
    hx = hepnn.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out = enc(hx, src_key_padding_mask=pad)
    tout = tenc(tx, src_key_padding_mask=torch.tensor(pad))
    real = ~pad
    _close(out.numpy()[real], tout.detach().numpy()[real], 1e-9, "out")
    g = rng.standard_normal(out.shape) * real[..., None]
    (out * hepnn.tensor(g)).sum().backward()
    tout.backward(torch.tensor(g))
    _close(hx.grad.numpy(), tx.grad.numpy(), 1e-9, "dx")
    _compare_grads(enc, tenc, 1e-8)


def test_layernorm_matches_torch():
    torch.manual_seed(3)
    rng = np.random.default_rng(5)
    tn = torch.nn.LayerNorm((5, 7)).double()
    with torch.no_grad():
        tn.weight.normal_()
        tn.bias.normal_()
    n = nn.LayerNorm((5, 7), dtype=np.float64)
    _copy(n, tn)
    x = 100.0 + rng.standard_normal((3, 5, 7))
    hx, tx = hepnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = n(hx), tn(tx)
    _close(out.numpy(), tout.detach().numpy(), 1e-9, "out")
    g = rng.standard_normal(x.shape)
    (out * hepnn.tensor(g)).sum().backward()
    tout.backward(torch.tensor(g))
    _close(hx.grad.numpy(), tx.grad.numpy(), 1e-8, "dx")
    _compare_grads(n, tn, 1e-9)


def test_padding_garbage_changes_nothing():
    """Real positions' outputs and gradients do not depend on what sits in padded particles."""
    rng = np.random.default_rng(6)
    B, L, E = 3, 12, 16
    layer = nn.TransformerEncoderLayer(E, 4, 32, dropout=0.0, dtype=np.float64)
    pad = _padding(rng, B, L)
    x = rng.standard_normal((B, L, E))
    results = []
    for garbage in (0.0, 1e3):
        xg = np.where(pad[..., None], garbage * rng.standard_normal(x.shape), x)
        hx = hepnn.tensor(xg, requires_grad=True)
        out = layer(hx, src_key_padding_mask=pad)
        layer.zero_grad()
        (out * hepnn.tensor(~pad[..., None] * 1.0)).sum().backward()
        results.append((out.numpy()[~pad], hx.grad.numpy()[~pad],
                        layer.self_attn.in_proj_weight.grad.numpy().copy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_bad_input_raises_named_errors():
    q = hepnn.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, hepnn.randn(2, 3, 4, 6), hepnn.randn(2, 3, 4, 6))
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, q, q, key_padding_mask=np.zeros((2, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, q, q, pair_bias=hepnn.randn(2, 2, 4, 4))
    with pytest.raises(TypeError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, q, hepnn.randn(2, 3, 4, 5).double())
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, q, q, scale=float("nan"))
    with pytest.raises(ValueError, match=r"\[layer_norm\]"):
        F.layer_norm(q, (4,))
    with pytest.raises(ValueError, match="MultiheadAttention"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="TransformerEncoderLayer"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\]"):
        mha(hepnn.randn(2, 3, 7), hepnn.randn(2, 3, 7), hepnn.randn(2, 3, 7))
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\]"):
        x = hepnn.randn(2, 3, 8)
        mha(x, x, x, attn_mask=hepnn.randn(4, 4))


def test_kernel_boundary_checks():
    core = hepnn._core
    f = np.float32
    q = np.zeros((2, 3, 4, 5), f)
    out, lse = np.empty_like(q), np.empty((2, 3, 4), f)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\] k has shape"):
        core.attention_forward(q, np.zeros((2, 3, 4, 6), f), q, None, None, out, lse)
    with pytest.raises(TypeError, match=r"\[scaled_dot_product_attention\] key_mask"):
        core.attention_forward(q, q, q, np.zeros((2, 4), np.int32), None, out, lse)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\] q is not C-contiguous"):
        core.attention_forward(np.zeros((2, 3, 5, 4), f).transpose(0, 1, 3, 2), q, q, None, None, out, lse)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\] bias"):
        core.attention_forward(q, q, q, None, np.zeros((2, 2, 4, 4), f), out, lse)
    with pytest.raises(TypeError, match=r"\[scaled_dot_product_attention\] q has dtype int"):
        core.attention_forward(q.astype(np.int32), q, q, None, None, out, lse)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\] dbias"):
        core.attention_backward(q, q, q, None, None, out, lse, q, q.copy(), q.copy(), q.copy(),
                                np.zeros((2, 3, 4, 4), f))
    with pytest.raises(ValueError, match=r"\[layer_norm\] eps"):
        core.layer_norm_forward(q, None, None, np.empty_like(q), None, None, -1.0)
    with pytest.raises(ValueError, match=r"\[layer_norm\] weight"):
        core.layer_norm_forward(q, np.ones(4, f), None, np.empty_like(q), None, None, 1e-5)


def test_dropout_path_trains_and_eval_is_fused():
    hepnn.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.2)
    x = hepnn.randn(2, 6, 16, requires_grad=True)
    pad = np.array([[False] * 6, [False] * 4 + [True] * 2])
    layer(x, src_key_padding_mask=pad).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    layer.eval()
    a = layer(x, src_key_padding_mask=pad).numpy()
    b = layer(x, src_key_padding_mask=pad).numpy()
    np.testing.assert_array_equal(a, b)


def test_kernels_are_deterministic_across_thread_counts():
    core = hepnn._core
    rng = np.random.default_rng(7)
    B, H, Lq, Lk, D = 4, 3, 70, 131, 8
    f = np.float32
    q, dout = (rng.standard_normal((B, H, Lq, D)).astype(f) for _ in range(2))
    k, v = (rng.standard_normal((B, H, Lk, D)).astype(f) for _ in range(2))
    mask = rng.random((B, Lk)) < 0.7
    bias = rng.standard_normal((B, 1, Lq, Lk)).astype(f)
    x, dy = (rng.standard_normal((300, 33)).astype(f) for _ in range(2))
    w = rng.standard_normal(33).astype(f)
    results = []
    old = hepnn.get_num_threads()
    try:
        for threads in (1, 2):
            hepnn.set_num_threads(threads)
            out, lse = np.empty_like(q), np.empty((B, H, Lq), f)
            core.attention_forward(q, k, v, mask, bias, out, lse)
            grads = [np.empty_like(a) for a in (q, k, v, bias)]
            core.attention_backward(q, k, v, mask, bias, out, lse, dout, *grads)
            y, mean, rstd = np.empty_like(x), np.empty(300, f), np.empty(300, f)
            core.layer_norm_forward(x, w, w, y, mean, rstd, 1e-5)
            ln = [np.empty_like(x), np.empty_like(w), np.empty_like(w)]
            core.layer_norm_backward(x, w, mean, rstd, dy, *ln)
            results.append([out, lse, *grads, y, *ln])
    finally:
        hepnn.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_mha_seq_first_and_unbatched_match_torch():
    torch.manual_seed(4)
    rng = np.random.default_rng(8)
    tm = torch.nn.MultiheadAttention(12, 3).double()  # torch's default layout: (L, B, E)
    m = nn.MultiheadAttention(12, 3, batch_first=False, dtype=np.float64)
    _copy(m, tm)
    x = rng.standard_normal((7, 2, 12))
    pad = np.array([[False] * 7, [False] * 4 + [True] * 3])
    out = m(hepnn.tensor(x), hepnn.tensor(x), hepnn.tensor(x), key_padding_mask=pad)[0]
    tx = torch.tensor(x)
    tout = tm(tx, tx, tx, key_padding_mask=torch.tensor(pad), need_weights=False)[0]
    _close(out.numpy(), tout.detach().numpy(), 1e-9, "seq-first")
    x1 = hepnn.tensor(x[:, 0])
    _close(m(x1, x1, x1)[0].numpy(), tm(tx[:, 0], tx[:, 0], tx[:, 0])[0].detach().numpy(), 1e-9, "unbatched")
