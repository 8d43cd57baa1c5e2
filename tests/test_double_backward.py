"""Second derivatives: hepnn.autograd.grad(create_graph=True) against finite differences of the
first-order gradient (float64, odd shapes) and a WGAN-GP gradient penalty against PyTorch."""
import numpy as np
import pytest

import hepnn
import hepnn.nn as nn
import hepnn.nn.functional as F

RNG = np.random.default_rng(7)


def _t(a):
    return hepnn.tensor(np.array(a, dtype=np.float64), requires_grad=True)


def _penalty(fn, x_np, v_np):
    """h(x) = sum(grad_x f(x) * v) and its gradient through create_graph."""
    x = _t(x_np)
    (g,) = hepnn.autograd.grad(fn(x).sum(), x, create_graph=True)
    h = (g * hepnn.tensor(v_np)).sum()
    (dh,) = hepnn.autograd.grad(h, x)
    return float(h.item()), dh.numpy()


def _first_order(fn, x_np, v_np):
    x = _t(x_np)
    fn(x).sum().backward()
    return float((x.grad.numpy() * v_np).sum())


CASES = {
    "mul_add": lambda x: x * x * 3.0 + x,
    "div_pow": lambda x: (x ** 3) / (x * x + 2.0),
    "exp_log": lambda x: (x * 0.3).exp() + (x * x + 1.0).log(),
    "sqrt": lambda x: (x * x + 0.5).sqrt(),
    "tanh_sigmoid": lambda x: x.tanh() * x.sigmoid(),
    "softplus_elu": lambda x: F.softplus(x) + F.elu(x, 0.7),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2) * x,
    "reshape_transpose": lambda x: (x.reshape(5, 3).T @ x.reshape(5, 3)),
    "mean_keepdim": lambda x: x * x.mean(dim=1, keepdim=True),
    "clamp_broadcast": lambda x: x.clamp(-0.7, 0.9) * x * x[:1, :],
    "cat_getitem": lambda x: hepnn.cat([x[:, :2] * x[:, 1:3], x], 1) ** 2,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_matches_finite_differences(name):
    fn = CASES[name]
    x0 = RNG.normal(size=(3, 5))
    v = RNG.normal(size=(3, 5))
    h, dh = _penalty(fn, x0, v)
    assert h == pytest.approx(_first_order(fn, x0, v), rel=1e-10, abs=1e-12)
    eps = 1e-6
    fd = np.empty_like(x0)
    for i in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += eps
        xm[i] -= eps
        fd[i] = (_first_order(fn, xp, v) - _first_order(fn, xm, v)) / (2 * eps)
    np.testing.assert_allclose(dh, fd, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_matches_torch():
    torch = pytest.importorskip("torch")
    critic = nn.Sequential(nn.Linear(7, 11, dtype=np.float64), nn.LeakyReLU(0.2),
                           nn.Linear(11, 5, dtype=np.float64), nn.Tanh(),
                           nn.Linear(5, 1, dtype=np.float64))
    ref = torch.nn.Sequential(torch.nn.Linear(7, 11), torch.nn.LeakyReLU(0.2),
                              torch.nn.Linear(11, 5), torch.nn.Tanh(),
                              torch.nn.Linear(5, 1)).double()
    with torch.no_grad():
        for mine, theirs in zip(critic.parameters(), ref.parameters()):
            theirs.copy_(torch.from_numpy(mine.numpy().copy()))
    x_np = RNG.normal(size=(9, 7))

    x = _t(x_np)
    (g,) = hepnn.autograd.grad(critic(x).sum(), x, create_graph=True)
    gp = ((((g * g).sum(dim=1) + 1e-12).sqrt() - 1.0) ** 2).mean() * 10.0
    gp.backward()

    xt = torch.from_numpy(x_np.copy()).requires_grad_(True)
    (gt,) = torch.autograd.grad(ref(xt).sum(), xt, create_graph=True)
    gpt = ((((gt * gt).sum(1) + 1e-12).sqrt() - 1.0) ** 2).mean() * 10.0
    gpt.backward()

    assert gp.item() == pytest.approx(gpt.item(), rel=1e-10)
    np.testing.assert_allclose(g.numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(critic.parameters(), ref.parameters()):
        if theirs.grad is None:  # the last bias does not enter the input gradient
            assert mine.grad is None or not np.any(mine.grad.numpy())
            continue
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_grad_leaves_dot_grad_alone_and_checks_unused():
    x, y = _t([1.0, 2.0]), _t([3.0])
    (g,) = hepnn.autograd.grad((x ** 2).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert x.grad is None
    with pytest.raises(RuntimeError):
        hepnn.autograd.grad((x ** 2).sum(), [x, y])
    gx, gy = hepnn.autograd.grad((x ** 2).sum(), [x, y], allow_unused=True)
    assert gy is None and gx is not None


def test_grad_outputs_weight_a_vector_output():
    x = _t([1.0, 2.0, 3.0])
    (g,) = hepnn.autograd.grad(x * x, x, grad_outputs=hepnn.tensor([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(g.numpy(), [2.0, 2.0, 0.0])


def test_op_without_a_differentiable_rule_is_refused_by_name():
    x = _t(RNG.normal(size=(2, 4)))
    with pytest.raises(RuntimeError, match="does not support create_graph"):
        hepnn.autograd.grad(x.softmax(-1)[:, 0].sum(), x, create_graph=True)
