"""Convolution and pooling modules against torch.nn with the same weights (forward and every
gradient; float64 tight, float32 loose), a small CNN trained for a few Adam steps in both, and bad
input that must raise a ValueError/TypeError naming the op."""
import numpy as np
import pytest

import hepnn
import hepnn.nn.functional as F
from hepnn import nn

torch = pytest.importorskip("torch")
TOL = {np.float64: (1e-11, 1e-9), np.float32: (2e-5, 2e-4)}


def _pair(hmod, tmod, dtype):
    tmod = tmod.to(torch.float64 if dtype == np.float64 else torch.float32)
    hmod = hmod.double() if dtype == np.float64 else hmod
    hmod.load_state_dict({k: v.detach().numpy().astype(dtype) for k, v in tmod.state_dict().items()})
    return hmod, tmod


def _check(hmod, tmod, shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    xh, xt = hepnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yh, yt = hmod(xh), tmod(xt)
    atol, rtol = TOL[dtype]
    np.testing.assert_allclose(yh.numpy(), yt.detach().numpy(), atol=atol, rtol=rtol)
    g = rng.standard_normal(yt.shape).astype(dtype)
    yh.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xh.grad.numpy(), xt.grad.numpy(), atol=atol, rtol=rtol, err_msg="input grad")
    tparams = dict(tmod.named_parameters())
    for name, p in hmod.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), atol=atol * 10, rtol=rtol,
                                   err_msg=f"grad of {name}")


MODULES = [
    ("conv2d", lambda m: m.Conv2d(3, 5, 3, padding=1), (2, 3, 9, 7)),
    ("conv2d_strided", lambda m: m.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
     (3, 4, 11, 8)),
    ("conv2d_same_even", lambda m: m.Conv2d(2, 3, 4, padding="same", bias=False), (2, 2, 7, 6)),
    ("conv2d_valid", lambda m: m.Conv2d(2, 3, 3, padding="valid"), (1, 2, 6, 6)),
    ("conv1d", lambda m: m.Conv1d(7, 16, 3, padding="same"), (4, 7, 30)),
    ("conv1d_strided", lambda m: m.Conv1d(4, 8, 5, stride=2, padding=2, dilation=2, groups=4), (3, 4, 23)),
    ("conv_transpose2d", lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
     (2, 4, 5, 6)),
    ("maxpool2d", lambda m: m.MaxPool2d(2), (2, 3, 9, 8)),
    ("maxpool2d_pad", lambda m: m.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 8)),
    ("maxpool1d", lambda m: m.MaxPool1d(3, stride=2, padding=1), (2, 3, 15)),
    ("avgpool2d", lambda m: m.AvgPool2d(3, stride=2, padding=1), (2, 3, 9, 8)),
    ("avgpool2d_nopad", lambda m: m.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 9, 8)),
    ("avgpool2d_divisor", lambda m: m.AvgPool2d(2, divisor_override=3), (2, 3, 8, 8)),
    ("avgpool1d", lambda m: m.AvgPool1d(4, stride=3, padding=2), (2, 3, 14)),
    ("adaptive_avg", lambda m: m.AdaptiveAvgPool2d((3, 4)), (2, 3, 8, 9)),
    ("global_avg", lambda m: m.AdaptiveAvgPool2d((1, 1)), (2, 3, 8, 9)),
    ("global_max", lambda m: m.AdaptiveMaxPool2d(1), (2, 3, 8, 9)),
    ("adaptive_avg1d", lambda m: m.AdaptiveAvgPool1d(4), (2, 3, 10)),
    ("conv_act_seq", lambda m: m.Sequential(m.Conv2d(2, 4, 3, padding=1), m.GELU(), m.Conv2d(4, 3, 1), m.Sigmoid()),
     (2, 2, 7, 7)),
    ("conv1d_act_seq", lambda m: m.Sequential(m.Conv1d(3, 4, 3), m.Tanh(), m.Conv1d(4, 2, 1), m.ELU()), (2, 3, 9)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,make,shape", MODULES, ids=[m[0] for m in MODULES])
def test_module_matches_torch(name, make, shape, dtype):
    torch.manual_seed(1)
    hmod, tmod = _pair(make(nn), make(torch.nn), dtype)
    _check(hmod, tmod, shape, dtype)


def test_unbatched_and_indices():
    x = np.random.default_rng(3).standard_normal((3, 9, 8))
    yh, ih = F.max_pool2d(hepnn.tensor(x), 2, return_indices=True)
    yt, it = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(yh.numpy(), yt.numpy())
    np.testing.assert_array_equal(ih.numpy(), it.numpy())
    w = np.random.default_rng(4).standard_normal((5, 3, 3, 3))
    np.testing.assert_allclose(F.conv2d(hepnn.tensor(x), hepnn.tensor(w), padding=1).numpy(),
                               torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy(),
                               atol=1e-12)


def test_default_init_matches_torch_bounds():
    conv = nn.Conv2d(32, 64, 3)
    bound = 1 / np.sqrt(32 * 9)
    w = conv.weight.numpy()
    assert w.shape == (64, 32, 3, 3) and np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert set(conv.state_dict()) == set(torch.nn.Conv2d(32, 64, 3).state_dict())
    t = nn.ConvTranspose2d(8, 4, 2, stride=2)
    assert t.weight.shape == (8, 4, 2, 2) and np.abs(t.weight.numpy()).max() <= 1 / np.sqrt(4 * 4)


def _cnn(m):
    return m.Sequential(m.Conv2d(1, 8, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.Conv2d(8, 16, 3, padding=1),
                        m.ReLU(), m.MaxPool2d(2), m.Flatten(), m.Linear(16 * 4 * 4, 1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cnn_adam_training_matches_torch(dtype):
    torch.manual_seed(0)
    hm, tm = _pair(_cnn(nn), _cnn(torch.nn), dtype)
    hopt = hepnn.optim.Adam(hm.parameters(), lr=1e-2)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    hloss, tloss = nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(5)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    for step in range(5):
        x = rng.standard_normal((16, 1, 16, 16)).astype(dtype)
        y = (rng.random((16, 1)) < 0.5).astype(dtype)
        lh = hloss(hm(hepnn.tensor(x)), hepnn.tensor(y))
        lt = tloss(tm(torch.tensor(x)), torch.tensor(y))
        assert abs(lh.item() - lt.item()) <= tol * (1 + abs(lt.item())), f"step {step}"
        hopt.zero_grad()
        topt.zero_grad()
        lh.backward()
        lt.backward()
        hopt.step()
        topt.step()
    tparams = dict(tm.named_parameters())
    for name, p in hm.named_parameters():
        np.testing.assert_allclose(p.numpy(), tparams[name].detach().numpy(), atol=tol * 10, rtol=tol * 10)


def test_sequential_fuses_conv_and_activation(monkeypatch):
    seen = []
    real = nn.Conv2d.forward

    def spy(self, x, activation=None, alpha=0.0):
        seen.append(activation)
        return real(self, x, activation, alpha)

    monkeypatch.setattr(nn.Conv2d, "forward", spy)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1), nn.LeakyReLU(0.2))
    model(hepnn.randn(1, 1, 5, 5))
    assert seen == ["relu", "leaky_relu"]


def test_conv_is_deterministic_across_thread_counts():
    rng = np.random.default_rng(7)
    x = hepnn.tensor(rng.standard_normal((37, 3, 12, 12)).astype(np.float32), requires_grad=True)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    grads = []
    prev = hepnn.get_num_threads()
    try:
        for threads in (1, 2, 3):
            hepnn.set_num_threads(threads)
            conv.zero_grad()
            x.grad = None
            conv(x, activation="relu").sum().backward()
            grads.append((conv.weight.grad.numpy().copy(), x.grad.numpy().copy()))
    finally:
        hepnn.set_num_threads(prev)
    for g in grads[1:]:
        np.testing.assert_array_equal(g[0], grads[0][0])
        np.testing.assert_array_equal(g[1], grads[0][1])


X4 = np.zeros((2, 3, 8, 8))
W4 = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(np.zeros((4, 2, 3, 3)))), ValueError,
     r"\[conv2d\] input has 3 channels, weight expects 2"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4.astype(np.float32))), TypeError, r"\[conv2d\].*dtype"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4), stride=0), ValueError, r"\[conv2d\] stride"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4), padding=-1), ValueError, r"\[conv2d\] padding"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4), padding="full"), ValueError, r"\[conv2d\] padding"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4), stride=2, padding="same"), ValueError, r"\[conv2d\].*stride 1"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4), groups=2), ValueError, r"\[conv2d\].*groups"),
    (lambda: F.conv2d(hepnn.tensor(np.zeros((2, 3, 2, 2))), hepnn.tensor(W4)), ValueError,
     r"\[conv2d\].*smaller than the dilated kernel"),
    (lambda: F.conv2d(hepnn.tensor(np.zeros((3, 8))), hepnn.tensor(W4)), ValueError, r"\[conv2d\] input must be"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4), hepnn.tensor(np.zeros(3))), ValueError, r"\[conv2d\] bias"),
    (lambda: F.conv2d(hepnn.tensor(X4), hepnn.tensor(W4), activation="swish"), ValueError, r"\[conv2d\].*activation"),
    (lambda: F.conv1d(hepnn.tensor(np.zeros((2, 3, 8))), hepnn.tensor(W4)), ValueError, r"\[conv1d\] weight"),
    (lambda: F.conv_transpose2d(hepnn.tensor(X4), hepnn.tensor(np.zeros((4, 2, 3, 3)))), ValueError,
     r"\[conv_transpose2d\] input has 3 channels, weight expects 4"),
    (lambda: F.conv_transpose2d(hepnn.tensor(X4), hepnn.tensor(np.zeros((3, 2, 3, 3))), output_padding=1), ValueError,
     r"\[conv_transpose2d\] output_padding"),
    (lambda: F.max_pool2d(hepnn.tensor(X4), 2, padding=2), ValueError, r"\[max_pool2d\] padding"),
    (lambda: F.max_pool2d(hepnn.tensor(X4), 0), ValueError, r"\[max_pool2d\] kernel_size"),
    (lambda: F.max_pool2d(hepnn.tensor(X4), 2, ceil_mode=True), ValueError, r"\[max_pool2d\] ceil_mode"),
    (lambda: F.max_pool2d(hepnn.tensor(X4), 9), ValueError, r"\[max_pool2d\].*smaller than the window"),
    (lambda: F.max_pool2d(hepnn.tensor(X4.astype(np.int64)), 2), TypeError, r"\[max_pool2d\].*dtype"),
    (lambda: F.avg_pool2d(hepnn.tensor(X4), 3, padding=2), ValueError, r"\[avg_pool2d\] padding"),
    (lambda: F.avg_pool1d(hepnn.tensor(X4), 2), ValueError, r"\[avg_pool1d\] input must be"),
    (lambda: F.adaptive_avg_pool2d(hepnn.tensor(X4), 0), ValueError, r"\[adaptive_avg_pool2d\] output_size"),
    (lambda: F.adaptive_max_pool2d(hepnn.tensor(X4), (1, 2, 3)), ValueError, r"\[adaptive_max_pool2d\] output_size"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, r"Conv2d: groups"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="reflect"), ValueError, r"Conv2d: only padding_mode"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding="same"), ValueError, r"ConvTranspose2d: padding"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_kernel_boundary_checks():
    core = hepnn._core
    x, w = np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 3, 3))
    y = np.zeros((2, 4, 6, 6))
    with pytest.raises(ValueError, match=r"\[conv2d\] input is not C-contiguous"):
        core.conv2d_forward(np.zeros((2, 3, 8, 16))[..., ::2], w, None, y, None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"\[conv2d\] y has shape"):
        core.conv2d_forward(x, w, None, np.zeros((2, 4, 7, 6)), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"\[conv2d\] y shares memory with input"):
        buf = np.zeros(2 * 4 * 8 * 8)
        core.conv2d_forward(buf[:384].reshape(2, 3, 8, 8), w, None, buf[:288].reshape(2, 4, 6, 6), None,
                            (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"\[conv2d_backward\].*needs the pre-activation z"):
        core.conv2d_backward(x, w, None, y, y, None, np.zeros_like(w), None, (1, 1), (0, 0), (1, 1), 1, "gelu")
    with pytest.raises(TypeError, match=r"\[max_pool2d\] indices has dtype int32"):
        core.max_pool2d_forward(x, np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4), np.int32), (2, 2), (2, 2),
                                (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"\[max_pool_backward\] indices has shape"):
        core.max_pool_backward(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 3), np.int64), np.zeros((2, 3, 8, 8)))


@pytest.mark.parametrize("module", ["hepnn.nn.conv", "hepnn.nn.pooling", "hepnn.nn._functional_conv"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inference_fusion_conv_act_maxpool(dtype):
    torch.manual_seed(2)
    make = lambda m: m.Sequential(m.Conv2d(3, 6, 3, padding=1), m.ReLU(), m.MaxPool2d(2),  # noqa: E731
                                  m.Conv2d(6, 4, (2, 3), stride=(1, 2), groups=2), m.LeakyReLU(0.1),
                                  m.MaxPool2d(3, stride=2, padding=1), m.Conv2d(4, 2, 1), m.GELU(), m.MaxPool2d(2))
    hm, tm = _pair(make(nn), make(torch.nn), dtype)
    x = np.random.default_rng(9).standard_normal((5, 3, 17, 21)).astype(dtype)
    with hepnn.no_grad():
        got = hm(hepnn.tensor(x)).numpy()
    atol, rtol = TOL[dtype]
    np.testing.assert_allclose(got, tm(torch.tensor(x)).detach().numpy(), atol=atol, rtol=rtol)
    np.testing.assert_allclose(got, hm(hepnn.tensor(x)).numpy(), atol=atol, rtol=rtol)  # unfused path (grad on)
