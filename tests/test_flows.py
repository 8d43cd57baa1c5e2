"""hepnn.flows: invertibility, exact densities (the log-det against a numerical Jacobian, the
density integrating to one), log_prob against a float64 PyTorch re-implementation with the same
weights, error messages, doctests, and the two flow examples in quick mode."""
import doctest
import importlib
import os
import sys

import numpy as np
import pytest

import hepnn
from hepnn import flows



def _randomise(flow, rng, scale=0.3):
    """Non-zero conditioner outputs: a freshly built flow is the identity by construction."""
    for p in flow.parameters():
        p.data[...] = (rng.standard_normal(p.shape) * scale).astype(p.dtype)
    return flow


def _flow(kind, features, context, dtype=np.float64, seed=0, layers=3, bins=6):
    rng = np.random.default_rng(seed)
    f = flows.build_flow(features, context, layers=layers, kind=kind, bins=bins, hidden=16,
                         bound=2.5, seed=seed, dtype=dtype)
    return _randomise(f, rng)


@pytest.mark.parametrize("kind", ["spline", "affine"])
# NOTE: float32 round trips lose what a steep bin's slope amplifies (the rounding of y times
# dx/dy, compounded over layers): ~1e-3 at worst here, the same with a float64 inverse.
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-3)])
def test_inverse_of_forward_is_identity(kind, dtype, tol):
    rng = np.random.default_rng(1)
    f = _flow(kind, 5, 2, dtype)
    x = hepnn.tensor((rng.standard_normal((257, 5)) * 1.5).astype(dtype))
    c = hepnn.tensor(rng.standard_normal((257, 2)).astype(dtype))
    z, ld = f(x, c)
    assert float(abs(z - x).max().item()) > 1e-2  # the flow really moves the points
    x2, ld_inv = f.inverse(z, c)
    np.testing.assert_allclose(x2.numpy(), x.numpy(), atol=tol, rtol=tol)
    np.testing.assert_allclose(ld_inv.numpy(), -ld.numpy(), atol=10 * tol, rtol=10 * tol)


@pytest.mark.parametrize("kind", ["spline", "affine"])
def test_logdet_is_log_abs_det_of_numerical_jacobian(kind):
    rng = np.random.default_rng(2)
    f = _flow(kind, 3, 1)
    x0 = rng.standard_normal((4, 3)) * 1.2
    c = hepnn.tensor(rng.standard_normal((4, 1)))
    _, ld = f(hepnn.tensor(x0), c)
    eps = 1e-6
    for n in range(4):
        J = np.empty((3, 3))
        for j in range(3):
            xp, xm = x0.copy(), x0.copy()
            xp[n, j] += eps
            xm[n, j] -= eps
            J[:, j] = (f(hepnn.tensor(xp), c)[0].numpy()[n] - f(hepnn.tensor(xm), c)[0].numpy()[n]) / (2 * eps)
        assert abs(np.log(abs(np.linalg.det(J))) - ld.numpy()[n]) < 1e-6


@pytest.mark.parametrize("kind", ["spline", "affine"])
def test_density_integrates_to_one_1d(kind):
    f = _flow(kind, 1, 1, layers=2, seed=3)
    grid = np.linspace(-12, 12, 24001)
    for ctx in (-1.0, 0.7):
        c = np.full((grid.size, 1), ctx)
        p = np.exp(f.log_prob(hepnn.tensor(grid[:, None]), hepnn.tensor(c)).numpy())
        assert abs(np.trapezoid(p, grid) - 1.0) < 1e-6


def test_density_integrates_to_one_2d():
    f = _flow("spline", 2, 0, seed=4)
    g = np.linspace(-9, 9, 481)
    X, Y = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], 1)
    p = np.exp(f.log_prob(hepnn.tensor(pts)).numpy()).reshape(X.shape)
    integral = np.trapezoid(np.trapezoid(p, g, axis=1), g)
    assert abs(integral - 1.0) < 5e-4  # trapezoid error at this spacing: ~1e-4


def test_samples_follow_the_density():
    """The sample mean of a 1-d flow matches the mean of its density (a numerical integral)."""
    f = _flow("spline", 1, 0, layers=2, seed=5)
    grid = np.linspace(-12, 12, 24001)
    p = np.exp(f.log_prob(hepnn.tensor(grid[:, None])).numpy())
    mean, sd = np.trapezoid(grid * p, grid), np.sqrt(np.trapezoid(grid**2 * p, grid))
    hepnn.manual_seed(0)
    with hepnn.no_grad():
        s = f.sample(40000).numpy()[:, 0]
    assert abs(s.mean() - mean) < 5 * sd / np.sqrt(s.size)


@pytest.mark.parametrize("kind", ["spline", "affine"])
def test_log_prob_matches_torch(kind):
    torch = pytest.importorskip("torch")
    from tests import torch_flows as TF

    rng = np.random.default_rng(6)
    f = _flow(kind, 6, 2, layers=4)
    f.transforms.append(flows.Permutation(6, order=9))  # exercised inside the chain too
    f = flows.Flow([flows.Standardize(rng.uniform(-1, 1, 6), rng.uniform(0.5, 2, 6))] + list(f.transforms))
    x = rng.standard_normal((300, 6)) * 2.0  # some values beyond the spline's bound
    c = rng.standard_normal((300, 2))
    got = f.log_prob(hepnn.tensor(x), hepnn.tensor(c)).numpy()
    with torch.no_grad():
        ref = TF.flow_log_prob(f, x, c).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_gradients_match_torch():
    """d(mean log_prob)/d(every weight) against torch autograd through the same computation."""
    torch = pytest.importorskip("torch")
    from tests import torch_flows as TF

    rng = np.random.default_rng(7)
    f = _flow("spline", 4, 1, layers=2)
    x, c = rng.standard_normal((64, 4)), rng.standard_normal((64, 1))
    f.log_prob(hepnn.tensor(x), hepnn.tensor(c)).mean().backward()
    params = list(f.parameters())
    tparams = [torch.tensor(np.asarray(p.data), requires_grad=True) for p in params]
    saved = [p.data for p in params]
    for p, tp in zip(params, tparams):
        p.data = tp  # the torch reference reads weights through .data
    try:
        TF.flow_log_prob(f, x, c).mean().backward()
    finally:
        for p, d in zip(params, saved):
            p.data = d
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_training_lowers_the_nll():
    rng = np.random.default_rng(8)
    c = rng.uniform(-1, 1, (2000, 1)).astype(np.float32)
    x = np.concatenate([c + 0.3 * rng.standard_normal((2000, 1)),
                        np.abs(rng.standard_normal((2000, 1))) - c], 1).astype(np.float32)
    hepnn.manual_seed(0)
    f = flows.build_flow(2, 1, layers=2, bins=8, hidden=32)
    opt = hepnn.optim.Adam(f.parameters(), lr=3e-3)
    X, C = hepnn.tensor(x), hepnn.tensor(c)
    start = -float(f.log_prob(X, C).mean().item())
    for _ in range(150):
        loss = -f.log_prob(X, C).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert -float(f.log_prob(X, C).mean().item()) < start - 0.5


def test_errors():
    f = flows.build_flow(3, 2, layers=2)
    x = hepnn.randn(4, 3)
    with pytest.raises(ValueError, match=r"\[RQSpline\] input must be \(N, 3\)"):
        f.log_prob(hepnn.randn(4, 2), hepnn.randn(4, 2))
    with pytest.raises(ValueError, match=r"\[Flow\] needs a context"):
        f.log_prob(x)
    with pytest.raises(ValueError, match=r"\[Flow\] context has 5 rows for 4 events"):
        f.log_prob(x, hepnn.randn(5, 2))
    with pytest.raises(ValueError, match=r"\[Flow\] built without context"):
        flows.build_flow(3).log_prob(x, hepnn.randn(4, 2))
    with pytest.raises(ValueError, match=r"\[RQSpline\] bins must be in \[2, 256\]"):
        flows.RQSpline(3, bins=1)
    with pytest.raises(ValueError, match=r"\[Flow\] the transforms disagree"):
        flows.Flow([flows.RQSpline(3), flows.Permutation(4)])
    with pytest.raises(ValueError, match=r"\[Standardize\] .*std finite and > 0"):
        flows.Standardize(np.zeros(2), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\[Flow\] sample needs n >= 1"):
        f.sample(0, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"\[build_flow\] kind"):
        flows.build_flow(3, kind="maf")


@pytest.mark.parametrize("module", ["hepnn.flows", "hepnn.flows.flow", "hepnn.flows.coupling",
                                    "hepnn.flows.training", "hepnn.flows.transforms",
                                    "hepnn._ops_spline"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_calo_flow_quick(example, capsys):
    res = example("calo_flow").main(["--quick"])
    assert res["val_nll"][-1] < res["val_nll"][0]
    assert res["generated"].shape == res["reference"].shape == (2000, 500)
    assert np.all(res["generated"] >= 0) and np.all(np.isfinite(res["w1"]))
    total_gen, total_ref = res["generated"].sum(1).mean(), res["reference"].sum(1).mean()
    assert abs(total_gen / total_ref - 1) < 0.5  # 4 epochs: the right scale, not yet the right shape
    out = capsys.readouterr().out
    assert "showers/s at batch 1" in out and "layer energy W1" in out


def test_anomaly_flow_quick(example):
    res = example("anomaly_flow").main(["--quick"])
    for r in res.values():
        assert 0.5 < r["auc"] <= 1.0 and r["rejection"] > 1.0


_STANDIN_CHECK = r"""
import numpy as np
from tests.cupy_standin import install
cp = install()
import hepnn
from hepnn import flows

rng = np.random.default_rng(3)
x = rng.standard_normal((40, 4)).astype(np.float32)
c = rng.standard_normal((40, 1)).astype(np.float32)
out = {}
for device in ("cpu", "cuda"):
    hepnn.manual_seed(0)
    body = flows.build_flow(4, 1, layers=2, hidden=8)
    for p in body.parameters():
        p.data[...] = np.random.default_rng(p.numel()).standard_normal(p.shape).astype(np.float32) * 0.2
    flow = flows.Flow([flows.Standardize(np.zeros(4, np.float32), np.full(4, 1.5, np.float32))]
                      + list(body.transforms)).to(device)
    xt = hepnn.tensor(x, device=device, requires_grad=True)
    lp = flow.log_prob(xt, c)  # a host context for a device flow: moved by Flow
    lp.sum().backward()
    assert lp.device == device and xt.grad.device == device
    hepnn.manual_seed(1)
    s = flow.sample(5, c[0])
    assert s.device == device
    out[device] = [lp.cpu().numpy(), xt.grad.cpu().numpy(), s.cpu().numpy()]
for a, b in zip(out["cpu"], out["cuda"]):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
print("ok")
"""


def test_python_cuda_path_with_a_cupy_standin():
    """A flow moved to 'cuda' (buffers, context, base samples on the device) against the
    NumPy-backed CuPy stand-in gives the CPU result."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", _STANDIN_CHECK], capture_output=True, text=True,
                         cwd=root, env=os.environ.copy())
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")
