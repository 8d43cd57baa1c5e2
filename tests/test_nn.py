"""hepnn.nn modules: naming, state_dict round trips, modes, init statistics, fusion equivalence."""
import numpy as np
import pytest

import hepnn
from hepnn import nn


def _mlp():
    return nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def test_parameter_names_follow_pytorch():
    names = [n for n, _ in _mlp().named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    shapes = {n: p.shape for n, p in _mlp().named_parameters()}
    assert shapes["0.weight"] == (64, 30) and shapes["4.bias"] == (1,)


def test_state_dict_round_trip_and_rejections():
    a, b = _mlp(), _mlp()
    b.load_state_dict(a.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    sd = a.state_dict()
    sd["0.weight"] = sd["0.weight"][:, :5]
    before = b.state_dict()["2.weight"].copy()
    with pytest.raises(ValueError, match="0.weight"):
        b.load_state_dict(sd)
    np.testing.assert_array_equal(b.state_dict()["2.weight"], before)  # nothing loaded
    sd = a.state_dict()
    del sd["2.bias"]
    with pytest.raises(KeyError, match="2.bias"):
        b.load_state_dict(sd)
    sd = a.state_dict()
    sd["0.bias"] = np.full_like(sd["0.bias"], np.nan)
    with pytest.raises(ValueError, match="NaN"):
        b.load_state_dict(sd)


def test_fused_sequential_equals_unfused():
    hepnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 13), nn.GELU(), nn.Linear(13, 5), nn.Tanh()).double()
    x = hepnn.tensor(np.random.default_rng(0).standard_normal((9, 7)))
    fused = model(x)
    step = x
    for m in model:
        step = m(step)
    np.testing.assert_allclose(fused.numpy(), step.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("init,std", [("glorot_uniform", np.sqrt(2 / (300 + 200))), ("glorot_normal", np.sqrt(2 / 500)),
                                      ("he_uniform", np.sqrt(2 / 300)), ("he_normal", np.sqrt(2 / 300)),
                                      ("default", 1 / np.sqrt(300) / np.sqrt(3))])
def test_init_statistics(init, std):
    hepnn.manual_seed(1)
    w = nn.Linear(300, 200, init=init).weight.numpy()
    assert abs(w.std() - std) < 0.03 * std
    assert abs(w.mean()) < 0.05 * std


def test_dropout_train_and_eval():
    hepnn.manual_seed(2)
    drop = nn.Dropout(0.25)
    x = hepnn.ones(100_000)
    y = drop(x).numpy()
    assert abs((y == 0).mean() - 0.25) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(drop.eval()(x).numpy(), x.numpy())
    with pytest.raises(ValueError):
        nn.Dropout(1.0)


def test_train_eval_propagates_and_zero_grad():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.1), nn.Linear(4, 1))
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(hepnn.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_module_errors():
    with pytest.raises(ValueError, match="Linear"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="init"):
        nn.Linear(3, 3, init="lecun")
    with pytest.raises(TypeError, match="Sequential"):
        nn.Sequential(nn.Linear(2, 2), "relu")
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    layer = nn.Linear(4, 2)
    with pytest.raises(ValueError):
        layer(hepnn.randn(3, 5))
