"""Whole models on CUDA against the same models on the CPU: every layer family's module (MLP, CNN,
normalisation, graph, attention, recurrent) runs forward and backward on both devices from the
same weights and inputs, and outputs and every parameter gradient must agree (float64 tightly,
float32 to summation-order tolerance); optimizers take the same steps; PyTorch CUDA tensors cross
DLPack without a copy and PyTorch on CUDA gives the same MLP. Skipped without a GPU and CuPy.

HEPNN_TEST_CUPY_STANDIN=1 runs the file against tests/cupy_standin.py instead (CPU kernels behind
CuPy-looking arrays): a check of the Python-side device plumbing on a machine with no GPU.
"""
import os
import zlib

import numpy as np
import pytest

if os.environ.get("HEPNN_TEST_CUPY_STANDIN") == "1":
    from tests.cupy_standin import install

    install()

import hepnn  # noqa: E402
import hepnn.nn.functional as F  # noqa: E402
from hepnn import nn  # noqa: E402

if not hepnn.cuda.is_available():
    pytest.skip(f"no CUDA: {hepnn.cuda.unavailable_reason()}", allow_module_level=True)

TOL = {np.float64: (1e-10, 1e-8), np.float32: (2e-5, 2e-3)}


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _mlp(dt):
    return nn.Sequential(nn.Linear(13, 33), nn.ReLU(), nn.Linear(33, 17), nn.Tanh(), nn.Linear(17, 3))


def _cnn(dt):
    return nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 6, 3, stride=2, padding=1, groups=2), nn.BatchNorm2d(6), nn.ELU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 5))


def _cnn1d(dt):
    return nn.Sequential(nn.Conv1d(3, 7, 5, padding=2, dilation=1), nn.GELU(), nn.AvgPool1d(3),
                         nn.Conv1d(7, 4, 3, dilation=2), nn.AdaptiveAvgPool1d(1), nn.Flatten())


def _deconv(dt):
    return nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten())


def _norms(dt):
    return nn.Sequential(nn.Linear(9, 11), nn.BatchNorm1d(11), nn.SELU(), nn.LayerNorm(11), nn.Linear(11, 2))


class _Tagger(nn.Module):
    """EdgeConv + DeepSets-style masked pooling, the ParticleNet shape in small."""

    def __init__(self):
        super().__init__()
        self.edge = nn.EdgeConv(4, [9, 7], k=4, coords=[0, 1], shortcut=True)
        self.edge2 = nn.EdgeConv(7, [6], k=3, aggregation="max")
        self.head = nn.Linear(6, 2)

    def forward(self, x, mask):
        h = self.edge2(self.edge(x, mask=mask), mask=mask)
        return self.head(F.masked_mean(h, mask))


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)

    def forward(self, x, mask):
        return self.enc(x, src_key_padding_mask=mask)


class _Recurrent(nn.Module):
    def __init__(self, kind):
        super().__init__()
        cls = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = cls(5, 7, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(14, 1)

    def forward(self, x, lengths):
        out = self.rnn(x, lengths=lengths)[0]
        return self.head(out)


def _lengths(rng, b, n):
    n_real = rng.integers(2, n + 1, size=b)
    n_real[0] = n
    return n_real


CASES = {
    "mlp": (_mlp, lambda r: [r.standard_normal((37, 13))], lambda m, x: m(x)),
    "cnn2d": (_cnn, lambda r: [r.standard_normal((5, 2, 16, 16))], lambda m, x: m(x)),
    "cnn1d": (_cnn1d, lambda r: [r.standard_normal((4, 3, 41))], lambda m, x: m(x)),
    "convtranspose": (_deconv, lambda r: [r.standard_normal((3, 3, 7, 5))], lambda m, x: m(x)),
    "norms": (_norms, lambda r: [r.standard_normal((29, 9))], lambda m, x: m(x)),
}


def _to(x, device, dtype, grad=True):
    return hepnn.tensor(np.asarray(x, dtype=dtype), device=device, requires_grad=grad)


def _grads(model):
    return {name: p.grad.cpu().numpy() for name, p in model.named_parameters() if p.grad is not None}


def _close(ref, got, dtype, what):
    atol, rtol = TOL[dtype]
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    assert ref.shape == got.shape, what
    scale = atol + rtol * np.abs(ref).max(initial=1.0)
    err = np.abs(ref - got).max(initial=0.0)
    assert err <= scale, f"{what}: max |cuda - cpu| = {err:.3g} > {scale:.3g}"


def _both(build, run, seed_name, dtype):
    """build() -> model, run(model, device) -> output tensor; returns {device: (out, grads)}."""
    res = {}
    for device in ("cpu", "cuda"):
        hepnn.manual_seed(zlib.crc32(seed_name.encode()))
        model = build().to(device, dtype)
        model.train()
        out = run(model, device)
        weight = _rng(seed_name + "w").standard_normal(out.shape)
        (out * hepnn.tensor(weight.astype(dtype), device=device)).sum().backward()
        assert out.device == device
        res[device] = (out.detach().cpu().numpy(), _grads(model))
    return res


def _compare(res, dtype, name):
    _close(res["cpu"][0], res["cuda"][0], dtype, f"{name} output")
    assert res["cpu"][1].keys() == res["cuda"][1].keys()
    for k in res["cpu"][1]:
        _close(res["cpu"][1][k], res["cuda"][1][k], dtype, f"{name} grad {k}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CASES))
def test_module_stack_matches_cpu(name, dtype):
    build, inputs, call = CASES[name]
    xs = inputs(_rng(name))
    res = _both(lambda: build(dtype), lambda m, d: call(m, *[_to(x, d, dtype) for x in xs]), name, dtype)
    _compare(res, dtype, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_edgeconv_tagger_matches_cpu(dtype):
    r = _rng("tagger")
    x = r.standard_normal((3, 23, 4))
    mask = np.arange(23)[None, :] < _lengths(r, 3, 23)[:, None]
    res = _both(_Tagger, lambda m, d: m(_to(x, d, dtype), mask), "tagger", dtype)
    _compare(res, dtype, "tagger")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_masked_encoder_matches_cpu(dtype):
    r = _rng("encoder")
    x = r.standard_normal((4, 19, 16))
    pad = np.arange(19)[None, :] >= _lengths(r, 4, 19)[:, None]
    res = _both(_Encoder, lambda m, d: m(_to(x, d, dtype), pad), "encoder", dtype)
    _compare(res, dtype, "encoder")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_recurrent_matches_cpu(kind, dtype):
    r = _rng(kind)
    x = r.standard_normal((4, 11, 5))
    lengths = _lengths(r, 4, 11)
    res = _both(lambda: _Recurrent(kind), lambda m, d: m(_to(x, d, dtype), lengths), kind, dtype)
    _compare(res, dtype, kind)


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_training_steps_match_cpu(opt):
    """Five steps of each optimizer (weighted BCE, L2 via weight_decay) from the same start."""
    r = _rng(opt)
    x, y, w = r.standard_normal((61, 13)), (r.random((61, 3)) < 0.4), r.random(61) + 0.5
    make = {"sgd": lambda p: hepnn.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
            "adam": lambda p: hepnn.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
            "adamw": lambda p: hepnn.optim.AdamW(p, lr=1e-2),
            "rmsprop": lambda p: hepnn.optim.RMSprop(p, lr=1e-2, momentum=0.5),
            "adagrad": lambda p: hepnn.optim.Adagrad(p, lr=1e-1)}[opt]
    params = {}
    for device in ("cpu", "cuda"):
        hepnn.manual_seed(7)
        model = _mlp(np.float64).to(device, np.float64)
        optimizer = make(model.parameters())
        loss_fn = nn.BCEWithLogitsLoss()
        for _ in range(5):
            optimizer.zero_grad()
            loss = loss_fn(model(_to(x, device, np.float64, False)), _to(y, device, np.float64, False),
                           event_weight=_to(w, device, np.float64, False))
            loss.backward()
            optimizer.step()
        params[device] = {k: np.asarray(v) for k, v in model.state_dict().items()} | {"loss": loss.item()}
    for k in params["cpu"]:
        _close(params["cpu"][k], params["cuda"][k], np.float64, f"{opt} {k}")


def test_losses_match_cpu():
    r = _rng("losses")
    logits, target = r.standard_normal((45, 7)), r.integers(0, 7, size=45)
    w = r.random(45)
    out = {}
    for device in ("cpu", "cuda"):
        z = _to(logits, device, np.float64)
        ce = nn.CrossEntropyLoss()(z, hepnn.tensor(target, device=device), event_weight=_to(w, device, np.float64,
                                                                                            False))
        mse = nn.MSELoss()(z, _to(logits[::-1].copy(), device, np.float64, False))
        (ce + mse).backward()
        out[device] = (ce.item(), mse.item(), z.grad.cpu().numpy())
    for a, b, what in zip(out["cpu"], out["cuda"], ("cross entropy", "mse", "grad")):
        _close(a, b, np.float64, what)


def test_non_default_stream_gives_the_same_result():
    """hepnn launches on CuPy's current stream: a forward+backward inside another stream's block
    must give the CPU result too (a kernel on the legacy stream would race the CuPy copies)."""
    import cupy

    if not hasattr(cupy.cuda, "Stream"):
        pytest.skip("the CuPy stand-in has no streams")
    build, inputs, call = CASES["cnn2d"]
    xs = inputs(_rng("stream"))
    ref = _both(lambda: build(np.float64), lambda m, d: call(m, *[_to(x, d, np.float64) for x in xs]), "stream",
                np.float64)
    with cupy.cuda.Stream(non_blocking=True):
        got = _both(lambda: build(np.float64), lambda m, d: call(m, *[_to(x, d, np.float64) for x in xs]),
                    "stream", np.float64)
    _close(ref["cpu"][0], got["cuda"][0], np.float64, "output on a side stream")


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch here has no CUDA")
    return torch


def test_dlpack_with_torch_cuda_is_zero_copy():
    torch = _torch_cuda()
    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    h = hepnn.from_dlpack(t)
    assert h.device == "cuda" and h.data.data.ptr == t.data_ptr()
    back = torch.from_dlpack(h)
    assert back.data_ptr() == t.data_ptr()
    (h * 2).sum()  # usable in hepnn ops
    np.testing.assert_array_equal(back.cpu().numpy(), np.arange(12, dtype=np.float32).reshape(3, 4))


def test_mlp_matches_torch_on_cuda():
    torch = _torch_cuda()
    r = _rng("torchmlp")
    x = r.standard_normal((257, 13)).astype(np.float32)
    hepnn.manual_seed(3)
    model = _mlp(np.float32).to("cuda")
    tm = torch.nn.Sequential(torch.nn.Linear(13, 33), torch.nn.ReLU(), torch.nn.Linear(33, 17), torch.nn.Tanh(),
                             torch.nn.Linear(17, 3)).cuda()
    tm.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in model.state_dict().items()})
    hx = _to(x, "cuda", np.float32)
    tx = torch.tensor(x, device="cuda", requires_grad=True)
    ho, to = model(hx), tm(tx)
    ho.sum().backward()
    to.sum().backward()
    _close(to.detach().cpu().numpy(), ho.detach().cpu().numpy(), np.float32, "torch cuda output")
    _close(tx.grad.cpu().numpy(), hx.grad.cpu().numpy(), np.float32, "torch cuda input grad")
    for (k, p), tp in zip(model.named_parameters(), tm.parameters()):
        _close(tp.grad.cpu().numpy(), p.grad.cpu().numpy(), np.float32, f"torch cuda grad {k}")
