"""predict(): batched eval-mode outputs equal to one forward pass; Monte-Carlo dropout gives a
spread only where dropout exists, keeps other layers in eval mode and restores the modes."""
import doctest

import numpy as np
import pytest

import hepnn
from hepnn.predict import predict


def _net(dropout=0.0, seed=0):
    hepnn.manual_seed(seed)
    layers = [hepnn.nn.Linear(6, 32), hepnn.nn.ReLU()]
    if dropout:
        layers.append(hepnn.nn.Dropout(dropout))
    return hepnn.nn.Sequential(*layers, hepnn.nn.Linear(32, 3))


def _X(n=1001, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 6))


@pytest.mark.parametrize("batch_size", [1, 7, 256, 4096])
def test_batched_equals_one_pass(batch_size):
    model = _net(dropout=0.3)
    X = _X()
    model.eval()
    ref = model(hepnn.tensor(X.astype(np.float32))).numpy().copy()
    model.train()
    out = predict(model, X, batch_size=batch_size)  # float64 input, float32 model
    assert isinstance(out, np.ndarray) and out.shape == (1001, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    assert model.training and all(m.training for m in model.modules())


def test_tensor_input_and_no_graph():
    model = _net()
    X = hepnn.tensor(_X(10).astype(np.float32))
    out = predict(model, X)
    assert out.shape == (10, 3)
    assert all(p.grad is None for p in model.parameters())


def test_mc_dropout_spread_only_with_dropout():
    X = _X(300)
    hepnn.manual_seed(3)
    mean, std = predict(_net(dropout=0.2), X, batch_size=64, mc_samples=30)
    assert mean.shape == std.shape == (300, 3)
    assert (std > 0).all()
    mean0, std0 = predict(_net(dropout=0.0), X, mc_samples=30)
    assert (std0 == 0).all()
    np.testing.assert_allclose(mean0, predict(_net(dropout=0.0), X), rtol=1e-6, atol=1e-6)


def test_mc_mean_is_unbiased_for_a_linear_head():
    # Dropout right before a linear layer: E[output] is the eval-mode output exactly, so the MC
    # mean must be within a few standard errors of it.
    hepnn.manual_seed(0)
    model = hepnn.nn.Sequential(hepnn.nn.Dropout(0.3), hepnn.nn.Linear(6, 2))
    X = _X(50)
    n = 400
    mean, std = predict(model, X, mc_samples=n)
    exact = predict(model, X)
    z = np.abs(mean - exact) / (std / np.sqrt(n))
    assert z.max() < 5.0
    # std matches the analytic spread: Var = p/(1-p) * sum_j (w_j x_j)^2 for inverted dropout.
    w = model[1].weight.numpy().astype(np.float64)
    var = 0.3 / 0.7 * ((X[:, None, :] * w[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(std, np.sqrt(var), rtol=0.15)


def test_mc_keeps_other_layers_in_eval_mode_and_restores():
    class Probe(hepnn.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = []

        def forward(self, x):
            self.seen.append(self.training)
            return x

    probe = Probe()
    model = hepnn.nn.Sequential(hepnn.nn.Linear(6, 8), hepnn.nn.Dropout(0.5), probe, hepnn.nn.Linear(8, 1))
    model.eval()
    predict(model, _X(20), mc_samples=4)
    assert probe.seen == [False] * 4
    assert not any(m.training for m in model.modules())  # eval mode restored, dropout included


def test_mc_reproducible_with_manual_seed():
    model = _net(dropout=0.5)
    X = _X(40)
    hepnn.manual_seed(11)
    a = predict(model, X, mc_samples=5)
    hepnn.manual_seed(11)
    b = predict(model, X, mc_samples=5)
    hepnn.manual_seed(12)
    c = predict(model, X, mc_samples=5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_zero_events():
    out = predict(_net(), np.zeros((0, 6)))
    assert out.shape[0] == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(mc_samples=1), "mc_samples"),
    (dict(mc_samples=True), "mc_samples"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=rf"\[predict\] {message}"):
        predict(_net(), _X(5), **kwargs)


def test_docstring_examples():
    import importlib

    mod = importlib.import_module("hepnn.predict")  # hepnn.predict the attribute is the function

    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0
