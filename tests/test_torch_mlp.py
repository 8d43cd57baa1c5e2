"""Whole-model cross-checks against PyTorch: the same MLP, initial weights and batches trained in
hepnn and torch must give the same losses and final weights."""
import numpy as np
import pytest

import hepnn
from hepnn import nn

torch = pytest.importorskip("torch")


def _copy_weights(model, tmodel):
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})


def _batches(rng, n_steps, batch, n_in, classes=None):
    for _ in range(n_steps):
        x = rng.standard_normal((batch, n_in))
        if classes is None:
            y = (rng.random((batch, 1)) < 0.4).astype(np.float64)
        else:
            y = rng.integers(0, classes, size=batch)
        yield x, y


def _rel(a, b):
    return np.max(np.abs(a - b) / (np.abs(b) + 1e-3))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
def test_mlp_bce_adam_matches_torch(dtype, tol):
    torch.manual_seed(0)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tmodel = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                 torch.nn.ReLU(), torch.nn.Linear(64, 1)).to(tdtype)
    model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)).to(dtype=dtype)
    _copy_weights(model, tmodel)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-3)
    tloss_fn, loss_fn = torch.nn.BCEWithLogitsLoss(), nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(1)
    for x, y in _batches(rng, 50, 67, 30):
        tloss = tloss_fn(tmodel(torch.tensor(x, dtype=tdtype)), torch.tensor(y, dtype=tdtype))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        loss = loss_fn(model(hepnn.tensor(x.astype(dtype))), hepnn.tensor(y.astype(dtype)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert abs(loss.item() - tloss.item()) <= tol * abs(tloss.item())
    for name, tv in tmodel.state_dict().items():
        assert _rel(model.state_dict()[name], tv.numpy()) <= tol * 10, name


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
def test_mlp_cross_entropy_sgd_momentum_matches_torch(dtype, tol):
    torch.manual_seed(1)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tmodel = torch.nn.Sequential(torch.nn.Linear(13, 33), torch.nn.Tanh(), torch.nn.Linear(33, 5)).to(tdtype)
    model = nn.Sequential(nn.Linear(13, 33), nn.Tanh(), nn.Linear(33, 5)).to(dtype=dtype)
    _copy_weights(model, tmodel)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    opt = hepnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    rng = np.random.default_rng(2)
    for x, y in _batches(rng, 50, 41, 13, classes=5):
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(x, dtype=tdtype)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        loss = nn.CrossEntropyLoss()(model(hepnn.tensor(x.astype(dtype))), hepnn.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert abs(loss.item() - tloss.item()) <= tol * abs(tloss.item())
    for name, tv in tmodel.state_dict().items():
        assert _rel(model.state_dict()[name], tv.numpy()) <= tol * 10, name


@pytest.mark.parametrize("act,tact", [("ReLU", "ReLU"), ("GELU", "GELU"), ("ELU", "ELU"), ("SELU", "SELU"),
                                      ("Sigmoid", "Sigmoid"), ("Softplus", "Softplus"), ("LeakyReLU", "LeakyReLU")])
def test_fused_sequential_gradients_match_torch(act, tact):
    torch.manual_seed(3)
    tmodel = torch.nn.Sequential(torch.nn.Linear(7, 9), getattr(torch.nn, tact)(), torch.nn.Linear(9, 2)).double()
    model = nn.Sequential(nn.Linear(7, 9), getattr(nn, act)(), nn.Linear(9, 2)).double()
    _copy_weights(model, tmodel)
    x = np.random.default_rng(4).standard_normal((11, 7))
    tout = tmodel(torch.tensor(x))
    (tout ** 2).sum().backward()
    out = model(hepnn.tensor(x))
    (out * out).sum().backward()
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for (name, p), (tname, tp) in zip(model.named_parameters(), tmodel.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
