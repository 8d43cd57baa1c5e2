"""hepnn.optim classes: torch.optim's results step for step, param groups, state, bad input."""
import numpy as np
import pytest

import hepnn
from hepnn import nn

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=3e-3, betas=(0.8, 0.95), weight_decay=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=2e-3)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3)),
    ("Adagrad", dict(lr=0.05, lr_decay=1e-2, initial_accumulator_value=0.1, weight_decay=1e-3)),
]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_optimizers_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(torch.nn.Linear(7, 11), torch.nn.Tanh(), torch.nn.Linear(11, 3)).double()
    model = nn.Sequential(nn.Linear(7, 11), nn.Tanh(), nn.Linear(11, 3)).double()
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kwargs)
    opt = getattr(hepnn.optim, name)(model.parameters(), **kwargs)
    rng = np.random.default_rng(5)
    for _ in range(10):
        x, t = rng.standard_normal((13, 7)), rng.standard_normal((13, 3))
        tl = ((tmodel(torch.tensor(x)) - torch.tensor(t)) ** 2).mean()
        topt.zero_grad()
        tl.backward()
        topt.step()
        d = model(hepnn.tensor(x)) - hepnn.tensor(t)
        loss = (d * d).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{name} {k}")


def test_param_groups_and_state_dict():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = hepnn.optim.Adam([{"params": model[0].parameters(), "lr": 1e-2},
                            {"params": model[2].parameters()}], lr=1e-3)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    model(hepnn.randn(5, 3)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1, 2, 3} and sd["state"][0]["step"] == 1
    opt2 = hepnn.optim.Adam([{"params": model[0].parameters(), "lr": 1e-2},
                             {"params": model[2].parameters()}], lr=1e-3)
    opt2.load_state_dict(sd)
    np.testing.assert_array_equal(opt2.state_dict()["state"][0]["exp_avg"], sd["state"][0]["exp_avg"])


def test_parameters_without_grad_are_skipped():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    before = model[1].weight.numpy().copy()
    opt = hepnn.optim.SGD(model.parameters(), lr=0.1)
    model[0].weight.grad = hepnn.ones(4, 3)
    opt.step()
    np.testing.assert_array_equal(model[1].weight.numpy(), before)


@pytest.mark.parametrize("make", [
    lambda ps: hepnn.optim.SGD(ps, lr=float("nan")),
    lambda ps: hepnn.optim.SGD(ps, lr=-1.0),
    lambda ps: hepnn.optim.SGD(ps, lr=0.1, nesterov=True),
    lambda ps: hepnn.optim.Adam(ps, betas=(1.0, 0.999)),
    lambda ps: hepnn.optim.Adam(ps, eps=0.0),
    lambda ps: hepnn.optim.AdamW(ps, weight_decay=float("inf")),
    lambda ps: hepnn.optim.RMSprop(ps, alpha=1.5),
    lambda ps: hepnn.optim.Adagrad(ps, lr_decay=-1.0),
    lambda ps: hepnn.optim.Adam([], lr=1e-3),
])
def test_bad_hyperparameters_raise(make):
    with pytest.raises(ValueError):
        make(list(nn.Linear(2, 2).parameters()))


def test_nan_lr_set_later_is_caught_before_any_update():
    model = nn.Linear(2, 2)
    opt = hepnn.optim.SGD(model.parameters(), lr=0.1)
    model(hepnn.randn(3, 2)).sum().backward()
    before = model.weight.numpy().copy()
    opt.param_groups[0]["lr"] = float("nan")
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    np.testing.assert_array_equal(model.weight.numpy(), before)
