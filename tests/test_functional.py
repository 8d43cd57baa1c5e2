"""hepnn.nn.functional vs NumPy float64 references (always) and torch.nn.functional (when torch is
installed): fused linear, activations, softmax, dropout, and the fused losses with event weights;
gradients vs central finite differences; friendly errors for bad input."""
import math

import numpy as np
import pytest

import hepnn
import hepnn.nn.functional as F
from tests.gradcheck import check_grads

RNG = np.random.default_rng(99)
SELU_SCALE, SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
_erf = np.vectorize(math.erf)


def rnd(*shape):
    return RNG.standard_normal(shape)


def np_act(name, x, alpha=0.0):
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    if name == "elu":
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))
    if name == "gelu":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "softplus":
        return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))
    raise KeyError(name)


ACTS = [("relu", 0.0), ("leaky_relu", 0.1), ("elu", 0.7), ("selu", 0.0), ("gelu", 0.0),
        ("gelu_tanh", 0.0), ("sigmoid", 0.0), ("tanh", 0.0), ("softplus", 0.0), ("none", 0.0)]


def functional_act(name, alpha):
    return {"relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, alpha),
            "elu": lambda x: F.elu(x, alpha), "selu": F.selu, "gelu": F.gelu,
            "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "sigmoid": F.sigmoid,
            "tanh": F.tanh, "softplus": F.softplus, "none": lambda x: x}[name]


def away_from_kinks(*shape):
    x = rnd(*shape) * 2
    return np.where(np.abs(x) < 0.05, 0.3, x)


# ---- activations ----
@pytest.mark.parametrize("name,alpha", [a for a in ACTS if a[0] != "none"])
def test_activation_values_and_grads(name, alpha):
    x = away_from_kinks(7, 33)
    fn = functional_act(name, alpha)
    out = check_grads(fn, [x])
    np.testing.assert_allclose(out.numpy(), np_act(name, x, alpha), rtol=1e-12, atol=1e-12)
    y32 = fn(hepnn.tensor(x.astype(np.float32)))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.numpy(), np_act(name, x, alpha), rtol=2e-6, atol=2e-6)


def test_softplus_beta_and_bad_args():
    x = rnd(3, 4)
    out = check_grads(lambda a: F.softplus(a, beta=2.0), [x])
    np.testing.assert_allclose(out.numpy(), np.log1p(np.exp(2 * x)) / 2, rtol=1e-12)
    with pytest.raises(ValueError, match="threshold"):
        F.softplus(hepnn.tensor(x), threshold=5.0)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(hepnn.tensor(x), approximate="fast")
    with pytest.raises(ValueError):
        hepnn.nn.functional.linear(hepnn.tensor(x), hepnn.tensor(rnd(2, 4)), activation="swish")


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_log_softmax(dim):
    x = rnd(5, 7, 3) * 3
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    ref = e / e.sum(axis=dim, keepdims=True)
    out = check_grads(lambda a: F.softmax(a, dim), [x])
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-15)
    out = check_grads(lambda a: F.log_softmax(a, dim), [x])
    np.testing.assert_allclose(out.numpy(), np.log(ref), rtol=1e-12, atol=1e-12)


# ---- fused linear ----
@pytest.mark.parametrize("name,alpha", ACTS)
def test_linear_fused_activation(name, alpha):
    x, w, b = away_from_kinks(7, 5), rnd(3, 5), rnd(3)
    out = check_grads(lambda x_, w_, b_: F.linear(x_, w_, b_, activation=None if name == "none"
                                                   else name, alpha=alpha), [x, w, b],
                      atol=2e-6)
    np.testing.assert_allclose(out.numpy(), np_act(name, x @ w.T + b, alpha), rtol=1e-11,
                               atol=1e-12)


def test_linear_leading_dims_no_bias_and_partial_grads():
    x, w = rnd(2, 3, 5), rnd(4, 5)
    out = check_grads(lambda x_, w_: F.linear(x_, w_), [x, w])
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out.numpy(), x @ w.T, rtol=1e-12, atol=1e-12)
    # Only the weight needs a gradient (first layer of a network).
    xt = hepnn.tensor(x)
    wt = hepnn.tensor(w, requires_grad=True)
    bt = hepnn.tensor(rnd(4))
    F.linear(xt, wt, bt, activation="tanh").sum().backward()
    assert wt.grad.shape == (4, 5) and xt.grad is None and bt.grad is None
    with hepnn.no_grad():
        assert not F.linear(xt, wt, bt).requires_grad


def test_linear_errors():
    x, w = hepnn.ones(4, 5), hepnn.ones(3, 5)
    with pytest.raises(ValueError, match=r"\[linear\].*features"):
        F.linear(hepnn.ones(4, 6), w)
    with pytest.raises(ValueError, match=r"\[linear\] bias"):
        F.linear(x, w, hepnn.ones(4))
    with pytest.raises(TypeError, match=r"\[linear\].*dtype"):
        F.linear(x, w.double())


# ---- dropout ----
def test_dropout_mask_scale_and_gradient():
    hepnn.manual_seed(7)
    x = hepnn.tensor(rnd(200, 50), requires_grad=True)
    y = F.dropout(x, p=0.3)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.7, rtol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-12)
    assert F.dropout(x, 0.3, training=False) is x and F.dropout(x, 0.0) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    with pytest.raises(ValueError, match=r"\[dropout\]"):
        F.dropout(x, 1.5)


# ---- losses: NumPy references ----
def np_loss(kind, x, t, w, reduction):
    """Per-sample weighted losses with the hepnn conventions (see cpp/ops/loss.hpp)."""
    if kind == "mse":
        el = (x - t) ** 2
    elif kind == "bce":
        el = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    else:
        lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
        el = (lse - x[np.arange(len(t)), t])[:, None]
    el = el.reshape(el.shape[0], -1) if el.ndim > 1 else el[:, None]
    wv = np.ones(el.shape[0]) if w is None else w
    if reduction == "none":
        out = wv[:, None] * el
        return out[:, 0] if kind == "ce" else out.reshape(x.shape)
    if reduction == "sum":
        return (wv[:, None] * el).sum()
    return (wv * el.mean(1)).sum() / wv.sum()


LOSS_SHAPES = [(7,), (33, 1), (9, 5), (3, 2, 4)]


def _loss_fn(kind):
    return {"mse": F.mse_loss, "bce": F.binary_cross_entropy_with_logits,
            "ce": F.cross_entropy}[kind]


def _loss_inputs(kind, shape):
    x = rnd(*shape) * 2
    if kind == "mse":
        t = rnd(*shape)
    elif kind == "bce":
        t = (RNG.random(shape) > 0.5).astype(np.float64)
        t[..., 0] = 0.3  # soft labels are allowed
    else:
        t = RNG.integers(0, shape[1], size=shape[0])
    return x, t


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind,shape", [(k, s) for k in ("mse", "bce") for s in LOSS_SHAPES]
                         + [("ce", (7, 3)), ("ce", (33, 5)), ("ce", (1, 2))])
def test_losses_vs_numpy(kind, shape, reduction, weighted):
    x, t = _loss_inputs(kind, shape)
    w = RNG.random(shape[0]) + 0.1 if weighted else None
    fn = _loss_fn(kind)
    out = check_grads(lambda a: fn(a, hepnn.tensor(t), reduction=reduction,
                                   event_weight=None if w is None else hepnn.tensor(w)), [x])
    np.testing.assert_allclose(out.numpy(), np_loss(kind, x, t, w, reduction), rtol=1e-12,
                               atol=1e-12)
    # float32 inputs with a float64 NumPy target/weights: cast, same values at float32 precision.
    x32 = hepnn.tensor(x.astype(np.float32))
    v32 = fn(x32, t, reduction=reduction, event_weight=w)
    assert v32.dtype == np.float32
    np.testing.assert_allclose(v32.numpy(), np_loss(kind, x, t, w, reduction), rtol=1e-5,
                               atol=1e-5)


def test_mse_target_gradient():
    x, t = rnd(5, 3), rnd(5, 3)
    check_grads(lambda a, b: F.mse_loss(a, b), [x, t])
    check_grads(lambda a, b: F.mse_loss(a, b, reduction="none",
                                        event_weight=np.arange(1.0, 6.0)), [x, t])


def test_loss_gradient_only_when_needed():
    x = hepnn.tensor(rnd(4, 2))
    assert not F.mse_loss(x, hepnn.zeros(4, 2, dtype="float64")).requires_grad
    xr = hepnn.tensor(rnd(4, 2), requires_grad=True)
    with hepnn.no_grad():
        assert not F.binary_cross_entropy_with_logits(xr, hepnn.zeros(4, 2)).requires_grad
    assert F.binary_cross_entropy_with_logits(xr, hepnn.zeros(4, 2)).requires_grad


def test_loss_errors():
    x = hepnn.ones(4, 3)
    with pytest.raises(ValueError, match=r"\[mse_loss\] target shape"):
        F.mse_loss(x, hepnn.ones(4, 2))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(x, hepnn.ones(4, 3), reduction="avg")
    with pytest.raises(ValueError, match=r"event_weight must have shape \(4,\)"):
        F.mse_loss(x, hepnn.ones(4, 3), event_weight=hepnn.ones(3))
    with pytest.raises(TypeError, match=r"\[cross_entropy\] target must hold integer"):
        F.cross_entropy(x, hepnn.ones(4))
    with pytest.raises(ValueError, match=r"\[cross_entropy\] target must have shape \(4,\)"):
        F.cross_entropy(x, hepnn.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[cross_entropy\] input"):
        F.cross_entropy(hepnn.ones(4), hepnn.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError):  # label out of range: the kernel's check
        F.cross_entropy(x, hepnn.tensor([0, 1, 3, 0]))
    t = hepnn.zeros(4, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="target"):
        F.binary_cross_entropy_with_logits(x, t)


# ---- torch cross-checks ----
def test_activations_and_linear_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w, b = rnd(9, 6), rnd(4, 6), rnd(4)
    pairs = [(F.relu, tf.relu), (lambda a: F.leaky_relu(a, 0.2), lambda a: tf.leaky_relu(a, 0.2)),
             (lambda a: F.elu(a, 0.5), lambda a: tf.elu(a, 0.5)), (F.selu, tf.selu),
             (F.gelu, tf.gelu), (lambda a: F.gelu(a, "tanh"), lambda a: tf.gelu(a, approximate="tanh")),
             (F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh), (F.softplus, tf.softplus),
             (lambda a: F.softmax(a, 1), lambda a: tf.softmax(a, 1)),
             (lambda a: F.log_softmax(a, 0), lambda a: tf.log_softmax(a, 0))]
    for ours, theirs in pairs:
        h = hepnn.tensor(x, requires_grad=True)
        t = torch.tensor(x, requires_grad=True)
        up = rnd(9, 6)
        (ours(h) * hepnn.tensor(up)).sum().backward()
        (theirs(t) * torch.tensor(up)).sum().backward()
        np.testing.assert_allclose(h.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    hs = [hepnn.tensor(a, requires_grad=True) for a in (x, w, b)]
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    F.linear(*hs, activation="gelu").sum().backward()
    tf.gelu(tf.linear(*ts)).sum().backward()
    for h, t in zip(hs, ts):
        np.testing.assert_allclose(h.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_unweighted_losses_match_torch(reduction):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    cases = [(F.mse_loss, tf.mse_loss, rnd(8, 3), rnd(8, 3)),
             (F.binary_cross_entropy_with_logits, tf.binary_cross_entropy_with_logits,
              rnd(8, 3), RNG.random((8, 3))),
             (F.cross_entropy, tf.cross_entropy, rnd(8, 5), RNG.integers(0, 5, 8))]
    for ours, theirs, x, t in cases:
        h = hepnn.tensor(x, requires_grad=True)
        tt = torch.tensor(x, requires_grad=True)
        vh = ours(h, hepnn.tensor(t), reduction=reduction)
        vt = theirs(tt, torch.tensor(t), reduction=reduction)
        np.testing.assert_allclose(vh.numpy(), vt.detach().numpy(), rtol=1e-12, atol=1e-14)
        up = rnd(*vh.shape)
        (vh * hepnn.tensor(up)).sum().backward()
        (vt * torch.tensor(up)).sum().backward()
        np.testing.assert_allclose(h.grad.numpy(), tt.grad.numpy(), rtol=1e-11, atol=1e-14)
