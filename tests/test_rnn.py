"""LSTM / GRU (and their cells) against torch.nn with the same weights: parameter names and
shapes, forward outputs and h_n / c_n, gradients of the input, the initial state and every
parameter (1 and 2 layers, bidirectional, batch_first, with and without hx, float64 and float32),
variable lengths against pack_padded_sequence(enforce_sorted=False), and bad input."""
import itertools
import zlib

import numpy as np
import pytest

import hepnn
from hepnn import _core, nn

torch = pytest.importorskip("torch")

L, B, I, H = 7, 5, 3, 6


def _pair(mode, dtype=np.float64, **kw):
    tcls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[mode]
    hcls = {"lstm": nn.LSTM, "gru": nn.GRU}[mode]
    torch.manual_seed(0)
    tmodel = tcls(I, H, **kw).to(torch.float64 if dtype == np.float64 else torch.float32)
    model = hcls(I, H, dtype=dtype, **kw)
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    return model, tmodel


def _inputs(rng, mode, D, num_layers, batch_first, with_hx, dtype):
    x = rng.standard_normal((B, L, I) if batch_first else (L, B, I)).astype(dtype)
    states = [rng.standard_normal((num_layers * D, B, H)).astype(dtype)
              for _ in range(2 if mode == "lstm" else 1)] if with_hx else []
    return x, states


def _run_hepnn(model, mode, x, states, lengths=None):
    xt = hepnn.tensor(x, requires_grad=True)
    st = [hepnn.tensor(s, requires_grad=True) for s in states]
    hx = None if not st else (tuple(st) if mode == "lstm" else st[0])
    out, hn = model(xt, hx, lengths=lengths)
    outs = [out] + (list(hn) if mode == "lstm" else [hn])
    return xt, st, outs


def _run_torch(tmodel, mode, x, states):
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    hx = None if not st else (tuple(st) if mode == "lstm" else st[0])
    out, hn = tmodel(xt, hx)
    outs = [out] + (list(hn) if mode == "lstm" else [hn])
    return xt, st, outs


def _weights_for(rng, outs):
    return [rng.standard_normal(tuple(o.shape)) for o in outs]


def _backward_hepnn(outs, ws):
    loss = None
    for o, w in zip(outs, ws):
        term = (o * hepnn.tensor(w.astype(o.dtype))).sum()
        loss = term if loss is None else loss + term
    loss.backward()


def _backward_torch(outs, ws):
    sum((o * torch.tensor(w, dtype=o.dtype)).sum() for o, w in zip(outs, ws)).backward()


def _close(a, b, tol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    err = np.max(np.abs(a - b) / (np.abs(b) + 1.0)) if a.size else 0.0
    assert err <= tol, f"{what}: max scaled error {err:.3g} > {tol}"


def _compare(model, tmodel, mode, xs, hs, outs, txs, ths, touts, tol):
    for k, (o, t) in enumerate(zip(outs, touts)):
        _close(o.numpy(), t.detach().numpy(), tol, f"output {k}")
    _close(xs.grad.numpy(), txs.grad.numpy(), tol, "d input")
    for k, (s, ts) in enumerate(zip(hs, ths)):
        _close(s.grad.numpy(), ts.grad.numpy(), tol, f"d state {k}")
    params = dict(model.named_parameters())
    for name, tp in tmodel.named_parameters():
        _close(params[name].grad.numpy(), tp.grad.numpy(), tol, f"d {name}")


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_parameter_names_and_shapes_match_torch(mode):
    model, tmodel = _pair(mode, num_layers=2, bidirectional=True)
    ours = {k: v.shape for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tmodel.state_dict().items()}
    assert list(ours) == list(theirs) and ours == theirs
    nobias, tnobias = _pair(mode, bias=False)
    assert list(nobias.state_dict()) == list(tnobias.state_dict())
    bound = 1 / np.sqrt(H)
    assert all(np.abs(p.numpy()).max() <= bound for p in nn.LSTM(I, H).parameters())


CASES = list(itertools.product(["lstm", "gru"], [1, 2], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("mode,num_layers,bidirectional,batch_first,with_hx", CASES)
def test_matches_torch_float64(mode, num_layers, bidirectional, batch_first, with_hx):
    model, tmodel = _pair(mode, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    rng = np.random.default_rng(zlib.crc32(repr((mode, num_layers, bidirectional, batch_first, with_hx)).encode()))
    x, states = _inputs(rng, mode, 1 + bidirectional, num_layers, batch_first, with_hx, np.float64)
    xs, hs, outs = _run_hepnn(model, mode, x, states)
    txs, ths, touts = _run_torch(tmodel, mode, x, states)
    ws = _weights_for(rng, touts)
    _backward_hepnn(outs, ws)
    _backward_torch(touts, ws)
    _compare(model, tmodel, mode, xs, hs, outs, txs, ths, touts, 1e-10)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_matches_torch_float32(mode):
    model, tmodel = _pair(mode, np.float32, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(5)
    x, states = _inputs(rng, mode, 2, 2, False, True, np.float32)
    xs, hs, outs = _run_hepnn(model, mode, x, states)
    txs, ths, touts = _run_torch(tmodel, mode, x, states)
    ws = _weights_for(rng, touts)
    _backward_hepnn(outs, ws)
    _backward_torch(touts, ws)
    _compare(model, tmodel, mode, xs, hs, outs, txs, ths, touts, 2e-5)


@pytest.mark.parametrize("mode,bidirectional,batch_first,with_hx",
                         list(itertools.product(["lstm", "gru"], [False, True], [False, True], [False, True])))
def test_lengths_match_packed_sequence(mode, bidirectional, batch_first, with_hx):
    pack, pad = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence
    model, tmodel = _pair(mode, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    rng = np.random.default_rng(11)
    x, states = _inputs(rng, mode, 1 + bidirectional, 2, batch_first, with_hx, np.float64)
    lengths = np.array([3, L, 1, 5, 4])  # unsorted, with the full and a one-step sequence
    xs, hs, outs = _run_hepnn(model, mode, x, states, lengths=lengths)
    txs = torch.tensor(x, requires_grad=True)
    ths = [torch.tensor(s, requires_grad=True) for s in states]
    hx = None if not ths else (tuple(ths) if mode == "lstm" else ths[0])
    packed = pack(txs, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    tout, thn = tmodel(packed, hx)
    tout, _ = pad(tout, batch_first=batch_first, total_length=L)
    touts = [tout] + (list(thn) if mode == "lstm" else [thn])
    ws = _weights_for(rng, touts)
    _backward_hepnn(outs, ws)
    _backward_torch(touts, ws)
    _compare(model, tmodel, mode, xs, hs, outs, txs, ths, touts, 1e-10)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_cells_match_torch(mode):
    tcls = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[mode]
    hcls = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[mode]
    torch.manual_seed(3)
    tcell = tcls(I, H).double()
    cell = hcls(I, H, dtype=np.float64)
    cell.load_state_dict({k: v.detach().numpy() for k, v in tcell.state_dict().items()})
    assert list(cell.state_dict()) == list(tcell.state_dict())
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, I))
    states = [rng.standard_normal((B, H)) for _ in range(2 if mode == "lstm" else 1)]
    xs = hepnn.tensor(x, requires_grad=True)
    hs = [hepnn.tensor(s, requires_grad=True) for s in states]
    txs = torch.tensor(x, requires_grad=True)
    ths = [torch.tensor(s, requires_grad=True) for s in states]
    out = cell(xs, tuple(hs) if mode == "lstm" else hs[0])
    tout = tcell(txs, tuple(ths) if mode == "lstm" else ths[0])
    outs = list(out) if mode == "lstm" else [out]
    touts = list(tout) if mode == "lstm" else [tout]
    ws = _weights_for(rng, touts)
    _backward_hepnn(outs, ws)
    _backward_torch(touts, ws)
    _compare(cell, tcell, mode, xs, hs, outs, txs, ths, touts, 1e-10)
    # no state given, unbatched input
    got = cell(hepnn.tensor(x[0]))
    want = tcell(torch.tensor(x[0]))
    for g, w in zip(got if mode == "lstm" else [got], want if mode == "lstm" else [want]):
        _close(g.numpy(), w.detach().numpy(), 1e-12, "unbatched cell")


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_unbatched_input_matches_torch(mode):
    model, tmodel = _pair(mode, num_layers=2)
    x = np.random.default_rng(4).standard_normal((L, I))
    out, _ = model(hepnn.tensor(x))
    tout, _ = tmodel(torch.tensor(x))
    _close(out.numpy(), tout.detach().numpy(), 1e-12, "unbatched output")


def test_dropout_between_layers_only_in_training():
    model = nn.GRU(I, H, num_layers=2, dropout=0.5)
    x = hepnn.randn(L, B, I)
    model.eval()
    a, _ = model(x)
    b, _ = model(x)
    assert np.array_equal(a.numpy(), b.numpy())
    model.train()
    hepnn.manual_seed(0)
    c, _ = model(x)
    assert not np.allclose(a.numpy(), c.numpy())


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_deterministic(mode):
    model = (nn.LSTM if mode == "lstm" else nn.GRU)(16, 64, num_layers=2)
    x = hepnn.randn(30, 64, 16)
    runs = []
    for _ in range(2):
        model.zero_grad()
        out, _ = model(x, lengths=np.arange(64) % 30 + 1)
        out.sum().backward()
        runs.append([out.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


# ---- bad input ----
@pytest.mark.parametrize("cls,op", [(nn.LSTM, "lstm"), (nn.GRU, "gru")])
def test_bad_module_input(cls, op):
    model = cls(I, H, num_layers=2)
    with pytest.raises(ValueError, match=rf"\[{op}\].*input has shape"):
        model(hepnn.randn(L, B, I + 1))
    with pytest.raises(ValueError, match=rf"\[{op}\]"):
        model(hepnn.randn(L, B, I, 2))
    with pytest.raises(TypeError, match=rf"\[{op}\].*dtype"):
        model(hepnn.randn(L, B, I, dtype=np.float64))
    with pytest.raises(TypeError, match=rf"\[{op}\]"):
        model(np.zeros((L, B, I), np.float32))
    bad_h = hepnn.randn(1, B, H)  # one layer's worth for a 2-layer model
    with pytest.raises((ValueError, TypeError), match=rf"\[{op}\]"):
        model(hepnn.randn(L, B, I), (bad_h, bad_h) if op == "lstm" else bad_h)
    for lengths in ([1, 2, 3], [0, 1, 2, 3, L + 1], [-1, 1, 1, 1, 1], [1.5, 1, 1, 1, 1]):
        with pytest.raises(ValueError, match=rf"\[{op}\].*lengths"):
            model(hepnn.randn(L, B, I), lengths=lengths)


@pytest.mark.parametrize("cls,op", [(nn.LSTM, "lstm"), (nn.GRU, "gru")])
def test_bad_hyper_parameters(cls, op):
    for kw in ({"hidden_size": 0}, {"num_layers": 0}, {"dropout": 1.5}, {"input_size": -1},
               {"hidden_size": 2.5}):
        args = {"input_size": I, "hidden_size": H, **kw}
        with pytest.raises(ValueError, match=rf"\[{op}\]"):
            cls(**args)
    if op == "lstm":
        with pytest.raises(ValueError, match=r"\[lstm\].*proj_size"):
            nn.LSTM(I, H, proj_size=2)
    with pytest.raises(ValueError, match=rf"\[{op}_cell\]"):
        (nn.LSTMCell if op == "lstm" else nn.GRUCell)(I, 0)


def _kernel_args(op, dtype=np.float32):
    G = 4 if op == "lstm" else 3
    x = np.ones((L, B, I), dtype)
    w_ih, w_hh = np.ones((G * H, I), dtype), np.ones((G * H, H), dtype)
    y, hn = np.empty((L, B, H), dtype), np.empty((B, H), dtype)
    ws = [np.empty((L, B, G * H), dtype), np.empty((L, B, H), dtype), np.empty((L, B, H), dtype)]
    return x, w_ih, w_hh, y, hn, ws


def _call_forward(op, x, w_ih, w_hh, y, hn, ws, lengths=None, b=None):
    if op == "lstm":
        _core.lstm_forward(x, w_ih, w_hh, b, None, None, None, lengths, False, y, hn, hn.copy(), *ws)
    else:
        _core.gru_forward(x, w_ih, w_hh, b, None, None, lengths, False, y, hn, *ws)


@pytest.mark.parametrize("op", ["lstm", "gru"])
def test_bad_kernel_arguments(op):
    x, w_ih, w_hh, y, hn, ws = _kernel_args(op)
    _call_forward(op, x, w_ih, w_hh, y, hn, ws)  # the good call works
    with pytest.raises(ValueError, match=rf"\[{op}\] w_hh has shape"):
        _call_forward(op, x, w_ih, w_hh[:-1], y, hn, ws)
    with pytest.raises(ValueError, match=rf"\[{op}\] w_ih has shape"):
        _call_forward(op, x[:, :, :2].copy(), w_ih, w_hh, y, hn, ws)
    with pytest.raises(ValueError, match=rf"\[{op}\] x is not C-contiguous"):
        _call_forward(op, np.ones((L, I, B), np.float32).transpose(0, 2, 1), w_ih, w_hh, y, hn, ws)
    with pytest.raises(TypeError, match=rf"\[{op}\] x has dtype int32"):
        _call_forward(op, x.astype(np.int32), w_ih, w_hh, y, hn, ws)
    with pytest.raises(TypeError, match=rf"\[{op}\] w_ih has dtype float64"):
        _call_forward(op, x, w_ih.astype(np.float64), w_hh, y, hn, ws)
    with pytest.raises(ValueError, match=rf"\[{op}\] y has shape"):
        _call_forward(op, x, w_ih, w_hh, np.empty((L, B, H + 1), np.float32), hn, ws)
    with pytest.raises(ValueError, match=rf"\[{op}\] b_ih has shape"):
        _call_forward(op, x, w_ih, w_hh, y, hn, ws, b=np.ones(H, np.float32))
    with pytest.raises(TypeError, match=rf"\[{op}\] lengths has dtype int32"):
        _call_forward(op, x, w_ih, w_hh, y, hn, ws, lengths=np.ones(B, np.int32))
    with pytest.raises(ValueError, match=rf"\[{op}\] lengths\[2\] = 8"):
        _call_forward(op, x, w_ih, w_hh, y, hn, ws, lengths=np.array([1, 2, 8, 1, 1]))
    with pytest.raises(ValueError, match=rf"\[{op}\] gates has shape"):
        _call_forward(op, x, w_ih, w_hh, y, hn, [ws[1]] + ws[1:])
    with pytest.raises(ValueError, match=rf"\[{op}\] hs shares memory with"):
        _call_forward(op, x, w_ih, w_hh, y, hn, [ws[0], ws[1], ws[1]])
    with pytest.raises(ValueError, match=rf"\[{op}\] hn shares memory with w_hh"):
        _call_forward(op, x, w_ih, w_hh, y, w_hh.reshape(-1)[:B * H].reshape(B, H), ws)
