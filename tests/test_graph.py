"""The graph family end to end: EdgeConv, DeepSets, GraphNetBlock and MessagePassing against
PyTorch twins with the same weights (forward and every gradient), kNN against a stable torch sort,
padding independence (garbage padded particles change nothing on the real ones), determinism
across thread counts, and bad input (ValueError / TypeError naming the op, never a crash)."""
import numpy as np
import pytest

import hepnn
import hepnn.nn.functional as F
from hepnn import _core, nn

torch = pytest.importorskip("torch")
from tests import torch_graph as TG  # noqa: E402


def _copy(model, tmodel):
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})


def _cloud(rng, B, N, C, dtype, min_real=1):
    x = rng.standard_normal((B, N, C)).astype(dtype)
    n_real = rng.integers(min_real, N + 1, B)
    n_real[0] = N
    mask = np.arange(N)[None, :] < n_real[:, None]
    return x, mask


def _tdtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _close(a, b, tol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b) / (np.abs(b) + 1e-2)) if a.size else 0.0
    assert err <= tol, err


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("aggregation", ["mean", "max"])
@pytest.mark.parametrize("shortcut", [False, True])
def test_edgeconv_matches_torch(dtype, tol, aggregation, shortcut):
    rng = np.random.default_rng(3)
    x, mask = _cloud(rng, 3, 17, 4, dtype, min_real=3)
    torch.manual_seed(0)
    tconv = TG.EdgeConv(4, [16, 8], aggregation, shortcut).to(_tdtype(dtype))
    conv = nn.EdgeConv(4, [16, 8], k=5, aggregation=aggregation, coords=[1, 2], shortcut=shortcut,
                       dtype=dtype)
    assert list(conv.state_dict()) == list(tconv.state_dict())
    _copy(conv, tconv)
    xt = torch.tensor(x, requires_grad=True)
    mt = torch.tensor(mask)
    idx_t = TG.knn(xt.detach()[:, :, [1, 2]], 5, mt)
    yt = tconv(xt, mt, idx_t)
    gy = rng.standard_normal(yt.shape)
    (yt * torch.tensor(gy, dtype=yt.dtype)).sum().backward()
    xh = hepnn.tensor(x, requires_grad=True)
    y = conv(xh, mask=mask)
    (y * hepnn.tensor(gy.astype(dtype))).sum().backward()
    _close(y.numpy(), yt.detach().numpy(), tol)
    _close(xh.grad.numpy(), xt.grad.numpy(), tol)
    for name, p in conv.named_parameters():
        _close(p.grad.numpy(), dict(tconv.named_parameters())[name].grad.numpy(), tol)


def test_knn_matches_stable_torch_sort():
    rng = np.random.default_rng(4)
    for coords in (rng.standard_normal((4, 23, 3)), rng.integers(0, 3, (4, 23, 2)).astype(np.float64)):
        mask = rng.random((4, 23)) < 0.7
        ours = F.knn(hepnn.tensor(coords), 6, mask).numpy()
        ref = TG.knn(torch.tensor(coords), 6, torch.tensor(mask)).numpy()
        np.testing.assert_array_equal(ours, ref)


def test_knn_ties_padding_and_few_points():
    # Points 1 and 3 are both at distance 1 from point 0: the smaller index comes first.
    pts = hepnn.tensor([[[0.0], [1.0], [5.0], [-1.0], [0.5]]])
    idx = F.knn(pts, 3, mask=[[True, True, True, True, False]]).numpy()
    assert idx[0, 0].tolist() == [1, 3, 2]
    assert idx[0, 4].tolist() == [-1, -1, -1]  # padded point
    assert idx[0, 2].tolist() == [1, 0, 3]
    # k larger than the other valid points: the rest is -1.
    assert F.knn(pts, 5).numpy()[0, 0].tolist() == [4, 1, 3, 2, -1]


@pytest.mark.parametrize("pooling", ["sum", "mean", "max"])
def test_deepsets_matches_torch(pooling):
    rng = np.random.default_rng(5)
    x, mask = _cloud(rng, 4, 9, 3, np.float64)
    torch.manual_seed(1)
    tphi = torch.nn.Sequential(torch.nn.Linear(3, 12), torch.nn.ReLU(), torch.nn.Linear(12, 6))
    trho = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    tmodel = TG.DeepSets(tphi, trho, pooling).double()
    model = nn.DeepSets(nn.Sequential(nn.Linear(3, 12), nn.ReLU(), nn.Linear(12, 6)),
                        nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2)), pooling=pooling).double()
    _copy(model, tmodel)
    xt = torch.tensor(x, requires_grad=True)
    yt = tmodel(xt, torch.tensor(mask))
    (yt ** 2).sum().backward()
    xh = hepnn.tensor(x, requires_grad=True)
    y = model(xh, mask=mask)
    (y * y).sum().backward()
    _close(y.numpy(), yt.detach().numpy(), 1e-10)
    _close(xh.grad.numpy(), xt.grad.numpy(), 1e-10)
    for name, p in model.named_parameters():
        _close(p.grad.numpy(), dict(tmodel.named_parameters())[name].grad.numpy(), 1e-10)


def _pad_garbage(x, mask, extra, rng):
    B, N, C = x.shape
    junk = rng.standard_normal((B, extra, C)) * 1e6
    junk[:, 0, 0] = np.nan
    xp = np.concatenate([x, junk], axis=1)
    # Garbage also in the padded slots that were already there.
    xp[:, :N][~mask] = 1e7
    return xp, np.concatenate([mask, np.zeros((B, extra), bool)], axis=1)


def _run(model, x, mask, gy):
    xh = hepnn.tensor(x, requires_grad=True)
    model.zero_grad()
    y = model(xh, mask=mask)
    (y * hepnn.tensor(gy)).sum().backward()
    return y.numpy(), xh.grad.numpy(), {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


def test_padding_independence():
    rng = np.random.default_rng(6)
    x, mask = _cloud(rng, 3, 12, 5, np.float64, min_real=2)
    xg, mg = _pad_garbage(x, mask, 7, rng)

    class Stack(nn.Module):  # two EdgeConvs (the second in feature space) and masked pooling
        def __init__(self):
            super().__init__()
            self.c1 = nn.EdgeConv(5, [8, 8], k=4, coords=[0, 1], shortcut=True)
            self.c2 = nn.EdgeConv(8, [6], k=3, aggregation="max")

        def forward(self, x, mask):
            h = self.c2(self.c1(x, mask=mask), mask=mask)
            return F.masked_mean(h, mask)

    for model in (Stack().double(),
                  nn.DeepSets(nn.Sequential(nn.Linear(5, 7), nn.ReLU()), nn.Linear(7, 2), "max").double()):
        gy = rng.standard_normal((3, 6 if isinstance(model, Stack) else 2))
        y0, gx0, gp0 = _run(model, x, mask, gy)
        y1, gx1, gp1 = _run(model, xg, mg, gy)
        _close(y1, y0, 1e-12)
        _close(gx1[:, :12][mask], gx0[mask], 1e-12)
        assert np.all(gx1[:, :12][~mask] == 0) and np.all(gx1[:, 12:] == 0)
        for n in gp0:
            assert np.all(np.isfinite(gp1[n])), n
            _close(gp1[n], gp0[n], 1e-10)


def test_graphnet_block_matches_torch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 3))
    s, r, no, eo = F.knn_edges(F.knn(hepnn.tensor(x), 3, mask=[[True] * 6, [True] * 4 + [False] * 2]))
    nodes, edges, glob = x.reshape(12, 3), rng.standard_normal((len(s), 2)), rng.standard_normal((2, 4))
    torch.manual_seed(2)
    te, tv, tu = torch.nn.Linear(2 + 3 + 3 + 4, 5), torch.nn.Linear(5 + 3 + 4, 3), torch.nn.Linear(5 + 3 + 4, 2)
    block = nn.GraphNetBlock(nn.Linear(12, 5), nn.Linear(12, 3), nn.Linear(12, 2), aggregation="sum").double()
    tmods = torch.nn.ModuleDict({"edge_model": te, "node_model": tv, "global_model": tu}).double()
    _copy(block, tmods)
    hv, he, hu = (hepnn.tensor(a, requires_grad=True) for a in (nodes, edges, glob))
    v, e, u = block(hv, he, s, r, hu, no, eo)
    ((v * v).sum() + (e * e).sum() + (u * u).sum()).backward()

    tvn, ten, tun = (torch.tensor(a, requires_grad=True) for a in (nodes, edges, glob))
    ts, trr = torch.tensor(s), torch.tensor(r)
    eg = torch.repeat_interleave(torch.arange(2), torch.tensor(np.diff(eo)))
    ng = torch.repeat_interleave(torch.arange(2), torch.tensor(np.diff(no)))
    e_new = te(torch.cat([ten, tvn[ts], tvn[trr], tun[eg]], -1))
    agg = torch.zeros(12, 5, dtype=torch.float64).index_add(0, trr, e_new)
    v_new = tv(torch.cat([agg, tvn, tun[ng]], -1))
    eagg = torch.zeros(2, 5, dtype=torch.float64).index_add(0, eg, e_new)
    vagg = torch.zeros(2, 3, dtype=torch.float64).index_add(0, ng, v_new)
    u_new = tu(torch.cat([eagg, vagg, tun], -1))
    ((v_new ** 2).sum() + (e_new ** 2).sum() + (u_new ** 2).sum()).backward()
    for ours, ref in ((v, v_new), (e, e_new), (u, u_new), (hv.grad, tvn.grad), (he.grad, ten.grad),
                      (hu.grad, tun.grad)):
        _close(ours.numpy(), ref.detach().numpy(), 1e-10)
    for name, p in block.named_parameters():
        _close(p.grad.numpy(), dict(tmods.named_parameters())[name].grad.numpy(), 1e-10)


@pytest.mark.filterwarnings("ignore:index_reduce")
@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_message_passing_matches_torch(aggregation):
    rng = np.random.default_rng(8)
    nodes = rng.standard_normal((7, 3))
    s, r = rng.integers(0, 7, 20), rng.integers(0, 6, 20)  # node 6 receives nothing
    torch.manual_seed(3)
    tm, tu = torch.nn.Linear(6, 4), torch.nn.Linear(7, 3)
    mp = nn.MessagePassing(nn.Linear(6, 4), nn.Linear(7, 3), aggregation=aggregation).double()
    tmods = torch.nn.ModuleDict({"message_model": tm, "update_model": tu}).double()
    _copy(mp, tmods)
    hv = hepnn.tensor(nodes, requires_grad=True)
    out = mp(hv, s, r)
    (out * out).sum().backward()
    tv = torch.tensor(nodes, requires_grad=True)
    msg = tm(torch.cat([tv[torch.tensor(r)], tv[torch.tensor(s)]], -1))
    agg = torch.zeros(7, 4, dtype=torch.float64).index_reduce(0, torch.tensor(r), msg, "amax" if aggregation == "max" else "mean", include_self=False)
    tout = tu(torch.cat([tv, agg], -1))
    (tout ** 2).sum().backward()
    _close(out.numpy(), tout.detach().numpy(), 1e-10)
    _close(hv.grad.numpy(), tv.grad.numpy(), 1e-10)


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(9)
    x, mask = _cloud(rng, 20, 40, 6, np.float32)
    conv = nn.EdgeConv(6, [32, 16], k=8)
    gy = rng.standard_normal((20, 40, 16)).astype(np.float32)
    before = hepnn.get_num_threads()
    try:
        runs = []
        for t in (1, 2, 3):
            hepnn.set_num_threads(t)
            y, gx, gp = _run(conv, x, mask, gy)
            sc = F.scatter_sum(hepnn.tensor(x.reshape(-1, 6)), rng.integers(0, 9, 800) * 0 + np.arange(800) % 9)
            runs.append((y, gx, gp, sc.numpy()))
    finally:
        hepnn.set_num_threads(before)
    for y, gx, gp, sc in runs[1:]:
        np.testing.assert_array_equal(y, runs[0][0])
        np.testing.assert_array_equal(gx, runs[0][1])
        for n in gp:
            np.testing.assert_array_equal(gp[n], runs[0][2][n])
        np.testing.assert_array_equal(sc, runs[0][3])


def test_edgeconv_without_saved_pq_and_empty_events():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 5, 3))
    idx = np.full((2, 5, 2), -1, np.int64)
    idx[0, :, 0] = [1, 2, 3, 4, 0]
    W, b = [rng.standard_normal((4, 6))], [rng.standard_normal(4)]
    y = np.empty((2, 5, 4))
    _core.edgeconv_forward(x, idx, W, b, y, None, "relu", 0.0, "mean")
    assert np.all(y[1] == 0)  # no edges: zero output
    dy = rng.standard_normal(y.shape)
    outs = []
    for pq in (None, np.empty((10, 8))):
        if pq is not None:
            _core.edgeconv_forward(x, idx, W, b, y, pq, "relu", 0.0, "mean")
        dx, dW, db = np.empty_like(x), [np.empty_like(W[0])], [np.empty_like(b[0])]
        _core.edgeconv_backward(x, idx, W, b, pq, dy, dx, dW, db, "relu", 0.0, "mean")
        outs.append((dx, dW[0], db[0]))
    for a, c in zip(*outs):
        np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-13)
    assert np.all(outs[0][0][1] == 0)


# ---- bad input ----
def test_bad_indices_raise_value_errors():
    x = hepnn.randn(4, 3)
    with pytest.raises(ValueError, match=r"\[gather"):
        F.gather(x, [0, 4])
    with pytest.raises(ValueError, match=r"\[gather"):
        F.gather(x, [-2])
    with pytest.raises(TypeError, match=r"\[gather\]"):
        F.gather(x, [0.5])
    with pytest.raises(ValueError, match=r"\[scatter"):
        F.scatter_sum(x, [0, 1, 5, 0], dim_size=3)
    with pytest.raises(ValueError, match=r"\[scatter_reduce\] index has shape"):
        _core.scatter_forward(x.numpy(), np.zeros(3, np.int64), np.empty((2, 3), np.float32), None, "sum")
    with pytest.raises(ValueError, match=r"\[segment"):
        F.segment_sum(x, [0, 3, 2, 4])
    with pytest.raises(ValueError, match=r"\[segment"):
        F.segment_mean(x, [0, 2, 3])
    with pytest.raises(ValueError, match=r"\[scatter\] reduce"):
        F.scatter(x, [0, 0, 0, 0], reduce="median")
    with pytest.raises(ValueError, match=r"\[scatter_reduce\] max needs"):
        _core.scatter_forward(x.numpy(), np.zeros(4, np.int64), np.empty((1, 3), np.float32), None, "max")
    with pytest.raises(TypeError, match=r"\[gather\] index has dtype int32"):
        _core.gather_forward(x.numpy(), np.zeros(2, np.int32), np.empty((2, 3), np.float32))


def test_edgeconv_and_knn_bad_input():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 4))
    W, b = [rng.standard_normal((5, 8))], [rng.standard_normal(5)]
    y = np.empty((2, 3, 5))
    good = np.zeros((2, 3, 2), np.int64)
    bad = good.copy()
    bad[1, 2, 1] = 3
    with pytest.raises(ValueError, match=r"\[edgeconv_forward\] idx\[11\] = 3 is out of range"):
        _core.edgeconv_forward(x, bad, W, b, y, None, "relu", 0.0, "mean")
    with pytest.raises(ValueError, match=r"\[edgeconv\] idx holds values|\[edgeconv_forward\]"):
        F.edge_conv(hepnn.tensor(x), bad, [hepnn.tensor(W[0])], [hepnn.tensor(b[0])])
    with pytest.raises(ValueError, match=r"\[edgeconv\] weight\[0\] has shape"):
        _core.edgeconv_forward(x, good, [rng.standard_normal((5, 7))], b, y, None, "relu", 0.0, "mean")
    with pytest.raises(TypeError, match=r"\[edgeconv\] weight\[0\] has dtype float32"):
        _core.edgeconv_forward(x, good, [W[0].astype(np.float32)], b, y, None, "relu", 0.0, "mean")
    with pytest.raises(TypeError, match=r"\[edgeconv\] idx has dtype int32"):
        _core.edgeconv_forward(x, good.astype(np.int32), W, b, y, None, "relu", 0.0, "mean")
    with pytest.raises(ValueError, match=r"\[edgeconv\] x is not C-contiguous"):
        _core.edgeconv_forward(np.asfortranarray(x), good, W, b, y, None, "relu", 0.0, "mean")
    with pytest.raises(ValueError, match=r"\[edgeconv\] aggregation"):
        _core.edgeconv_forward(x, good, W, b, y, None, "relu", 0.0, "median")
    with pytest.raises(ValueError, match=r"\[edgeconv\] unknown activation"):
        _core.edgeconv_forward(x, good, W, b, y, None, "swish", 0.0, "mean")
    with pytest.raises(ValueError, match=r"\[edgeconv\] got 1 weights but 2 biases"):
        _core.edgeconv_forward(x, good, W, b + b, y, None, "relu", 0.0, "mean")
    with pytest.raises(ValueError, match=r"\[edgeconv\] y has shape"):
        _core.edgeconv_forward(x, good, W, b, np.empty((2, 3, 4)), None, "relu", 0.0, "mean")
    with pytest.raises(ValueError, match=r"\[edgeconv_backward\] dweight\[0\] has shape"):
        _core.edgeconv_backward(x, good, W, b, None, y, None, [np.empty((5, 7))], [None], "relu", 0.0, "mean")
    xt = hepnn.tensor(x)
    with pytest.raises(ValueError, match=r"\[knn\] k must be"):
        F.knn(xt, 0)
    with pytest.raises(ValueError, match=r"\[knn\] mask has shape"):
        F.knn(xt, 2, mask=np.ones((2, 4), bool))
    with pytest.raises(TypeError, match=r"\[knn\] mask must be bool"):
        F.knn(xt, 2, mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\[knn\] coords must be"):
        F.knn(hepnn.randn(3, 4), 2)
    with pytest.raises(TypeError, match=r"\[knn\] coords has dtype int64"):
        _core.knn(np.zeros((1, 2, 2), np.int64), None, np.empty((1, 2, 1), np.int64))
    with pytest.raises(ValueError, match=r"\[EdgeConv\] x must be"):
        nn.EdgeConv(5, [4], k=2)(xt)
    for kwargs in ({"k": 0}, {"k": 2, "aggregation": "sum"}, {"k": 2, "coords": [4]}):
        with pytest.raises(ValueError, match="EdgeConv"):
            nn.EdgeConv(4, [4], **kwargs)
    with pytest.raises(ValueError, match="DeepSets"):
        nn.DeepSets(nn.Linear(2, 2), nn.Linear(2, 2), pooling="median")
    with pytest.raises(ValueError, match=r"\[masked_mean\] mask has shape"):
        F.masked_mean(xt, np.ones((2, 2), bool))


_STANDIN_CHECK = r"""
import numpy as np
from tests.cupy_standin import install
cp = install()
import hepnn
import hepnn.nn.functional as F
from hepnn import nn

rng = np.random.default_rng(12)
x = rng.standard_normal((3, 10, 4)).astype(np.float32)
mask = np.arange(10)[None, :] < np.array([[10], [6], [3]])
out = {}
for device in ("cpu", "cuda"):
    hepnn.manual_seed(0)
    conv = nn.EdgeConv(4, [8, 5], k=3, coords=[0, 1], shortcut=True).to(device)
    block = nn.GraphNetBlock(nn.Linear(10, 6), nn.Linear(11, 5), nn.Linear(11, 2)).to(device)
    xt = hepnn.tensor(x, device=device, requires_grad=True)
    h = conv(xt, mask=mask)                      # the mask arrives on the host
    s, r, no, eo = F.knn_edges(F.knn(h, 2, mask=mask))
    v, e, u = block(h.reshape(30, 5), None, s, r, None, no, eo)
    y = F.masked_max(v.reshape(3, 10, 5), mask) .sum() + u.sum() + F.segment_mean(e, eo).sum()
    y.backward()
    assert xt.grad.device == device and type(s).__module__ == ("cupy" if device == "cuda" else "numpy")
    out[device] = (y.item(), xt.grad.cpu().numpy(), conv.mlp[0].weight.grad.cpu().numpy())
    try:
        F.gather(xt, [0, 99])
        raise SystemExit("no error")
    except ValueError as exc:
        assert "[gather]" in str(exc), exc
    # knn's indices skip the device-side range check (a host sync); anyone else's are checked.
    bad = np.full((3, 10, 2), 10, np.int64)
    bad = cp.asarray(bad) if device == "cuda" else bad
    try:
        F.edge_conv(xt, bad, [conv.mlp[0].weight], [None])
        raise SystemExit("no error")
    except ValueError as exc:
        want = "[edgeconv] idx holds values in [10, 10]" if device == "cuda" else "[edgeconv_forward] idx[0] = 10"
        assert want in str(exc), exc
assert out["cpu"][0] == out["cuda"][0]
for a, b in zip(out["cpu"][1:], out["cuda"][1:]):
    np.testing.assert_array_equal(a, b)
print("ok")
"""


def test_python_cuda_path_with_a_cupy_standin():
    """Device handling of the graph layers (host masks and index lists moved to the device, the
    CuPy-side index checks, offsets from knn_edges) against the NumPy-backed CuPy stand-in: the
    result must equal the CPU run."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", _STANDIN_CHECK], capture_output=True, text=True, cwd=root,
                         env=os.environ.copy())
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")


@pytest.mark.parametrize("module", ["hepnn._ops_graph", "hepnn.nn._functional_graph", "hepnn.nn.graph"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
