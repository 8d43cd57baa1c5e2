"""Behaviour of the DisCo term (hepnn.nn._disco.disco over _core.disco_loss): the statistics it
must show (independence ~ 0, dependence large, invariances, weights as event multiplicities),
determinism across thread counts, the gradient convention at ties, the autograd op inside a
training step (gradient into model parameters vs finite differences), and bad inputs."""
import numpy as np
import pytest

import hepnn
import hepnn.nn.functional as F
from hepnn import _core
from hepnn.nn._disco import disco
from tests.ops.disco import dcorr2_reference


def _kernel(x, y, w=None, power=1.0, grad=True):
    loss = np.full(1, np.nan, dtype=x.dtype)
    g = np.full(x.shape, np.nan, dtype=x.dtype) if grad else None
    _core.disco_loss(x, y, w, loss, g, power)
    return float(loss[0]), g


def _reference_grad(x, y, w=None, power=1.0):
    """d dCorr2^power / dx from the full matrices: d dCov2(x,y)/dx_k = 2 p_k sum_j p_j B_kj s_kj,
    d dCov2(x,x)/dx_k = 4 p_k sum_j p_j A_kj s_kj, s = sign(x_k - x_j) (0 at ties)."""
    p = np.ones(len(x)) if w is None else w.astype(np.float64)
    p = p / p.sum()

    def centred(v):
        a = np.abs(v[:, None] - v[None, :])
        r = a @ p
        return a - r[:, None] - r[None, :] + p @ r

    A, Bm = centred(x), centred(y)
    pp = np.outer(p, p)
    sab, saa, sbb = np.sum(pp * A * Bm), np.sum(pp * A * A), np.sum(pp * Bm * Bm)
    s = np.sign(x[:, None] - x[None, :])
    d_ab = 2 * p * ((s * Bm) @ p)
    d_aa = 4 * p * ((s * A) @ p)
    r = sab / np.sqrt(saa * sbb)
    dr = d_ab / np.sqrt(saa * sbb) - 0.5 * sab * d_aa / (saa * np.sqrt(saa * sbb))
    return power * r ** (power - 1) * dr


# ---- statistics ---------------------------------------------------------------------------------
def test_independent_variables_give_nearly_zero():
    rng = np.random.default_rng(1)
    vals = [_kernel(rng.standard_normal(3000), rng.uniform(50, 150, 3000), grad=False)[0] for _ in range(3)]
    # The V-statistic's bias under independence is O(1/B); a weak dependence would give >= 0.01.
    assert all(0.0 <= v < 2e-3 for v in vals), vals
    # ... and it shrinks with B.
    small = np.mean([_kernel(rng.standard_normal(100), rng.standard_normal(100), grad=False)[0] for _ in range(20)])
    assert small > 5 * np.mean(vals)


def test_dependent_variables_give_large_values():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(2000)
    assert _kernel(x, np.exp(x), grad=False)[0] > 0.8           # monotonic, non-linear
    assert _kernel(x, -3.0 * x + 2.0, grad=False)[0] == pytest.approx(1.0, abs=1e-12)  # linear
    # Not monotonic and uncorrelated in Pearson's sense, yet dependent: the point of DisCo.
    assert abs(np.corrcoef(x, x**2)[0, 1]) < 0.1
    assert _kernel(x, x**2, grad=False)[0] > 0.1


def test_invariant_to_shift_and_scale_of_x_and_y_and_to_weight_scale():
    rng = np.random.default_rng(3)
    x, y, w = rng.standard_normal(301), rng.standard_normal(301), rng.uniform(0.1, 3.0, 301)
    y = y + 0.5 * x
    base, gbase = _kernel(x, y, w)
    for xs, ys, ws in [(3.0 * x + 7.0, y, w), (x, -0.01 * y + 100.0, w), (-x, 5 * y, w), (x, y, 1e-3 * w)]:
        v, _ = _kernel(xs, ys, ws)
        assert v == pytest.approx(base, rel=1e-10)
    # Weight scale changes nothing, gradient included; x -> c x scales the gradient by 1/c.
    assert np.allclose(_kernel(x, y, 1e-3 * w)[1], gbase, rtol=1e-9, atol=1e-15)
    assert np.allclose(_kernel(4.0 * x, y, w)[1], gbase / 4.0, rtol=1e-9, atol=1e-15)


def test_integer_weights_equal_repeated_events():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal(40), rng.standard_normal(40) + 0.3 * rng.standard_normal(40)
    counts = rng.integers(0, 4, 40)
    counts[0] = 1
    v_w, g_w = _kernel(x, y, counts.astype(np.float64))
    xr, yr = np.repeat(x, counts), np.repeat(y, counts)
    v_r, g_r = _kernel(xr, yr)
    assert v_w == pytest.approx(v_r, rel=1e-12)
    # The gradient for an event with weight k is the sum over its k copies.
    summed = np.zeros(40)
    np.add.at(summed, np.repeat(np.arange(40), counts), g_r)
    np.testing.assert_allclose(g_w, summed, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5, 3.0])
def test_value_and_gradient_match_reference_for_powers(power):
    rng = np.random.default_rng(5)
    x, y, w = rng.standard_normal(65), rng.standard_normal(65), rng.uniform(0.2, 2.0, 65)
    y = y + np.sin(2 * x)
    v, g = _kernel(x, y, w, power)
    assert v == pytest.approx(dcorr2_reference(x, y, w, power), rel=1e-12)
    np.testing.assert_allclose(g, _reference_grad(x, y, w, power), rtol=1e-9, atol=1e-14)


def test_ties_use_zero_derivative():
    # Scores saturate (sigmoid outputs of 0 and 1 repeat): |x_i - x_j| contributes no slope at ties.
    rng = np.random.default_rng(6)
    x = rng.choice([0.0, 0.25, 1.0], size=50)
    y = x + rng.standard_normal(50)
    v, g = _kernel(x, y)
    np.testing.assert_allclose(g, _reference_grad(x, y), rtol=1e-9, atol=1e-14)
    assert np.isfinite(v)


def test_zero_spread_gives_zero_value_and_gradient():
    rng = np.random.default_rng(7)
    y = rng.standard_normal(9)
    assert _kernel(np.full(9, 0.3), y) == (0.0, pytest.approx(np.zeros(9)))
    v, g = _kernel(rng.standard_normal(9), np.full(9, 2.0))
    assert v == 0.0 and np.all(g == 0.0)
    w = np.zeros(9)
    w[4] = 1.0  # all the weight on one event: no spread under the weights
    v, g = _kernel(rng.standard_normal(9), y, w)
    assert v == 0.0 and np.all(g == 0.0)


def test_two_events_are_fully_correlated():
    v, g = _kernel(np.array([0.1, 0.7]), np.array([5.0, 3.0]))
    assert v == pytest.approx(1.0) and np.allclose(g, 0.0)


def test_bitwise_identical_for_any_thread_count_and_close_across_dtypes():
    rng = np.random.default_rng(8)
    x, y, w = rng.standard_normal(1001), rng.standard_normal(1001), rng.uniform(0.5, 1.5, 1001)
    prev = _core.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            _core.set_num_threads(n)
            results.append(_kernel(x, y, w))
    finally:
        _core.set_num_threads(prev)
    for v, g in results[1:]:
        assert v == results[0][0] and np.array_equal(g, results[0][1])
    v32, g32 = _kernel(x.astype(np.float32), y.astype(np.float32), w.astype(np.float32))
    assert v32 == pytest.approx(results[0][0], rel=1e-5)
    np.testing.assert_allclose(g32, results[0][1], rtol=1e-4, atol=1e-6 * np.abs(results[0][1]).max())


def test_matches_dcor_package_when_installed():
    dcor = pytest.importorskip("dcor")
    rng = np.random.default_rng(9)
    x = rng.standard_normal(200)
    y = x**2 + rng.standard_normal(200)
    assert _kernel(x, y, grad=False)[0] == pytest.approx(dcor.distance_correlation_sqr(x, y), rel=1e-9)


# ---- autograd op ----------------------------------------------------------------------------------
def _model_loss(model, X, labels, mass, w, lam):
    logits = model(hepnn.tensor(X)).reshape(-1)
    bce = F.binary_cross_entropy_with_logits(logits, hepnn.tensor(labels), event_weight=w)
    return bce + lam * disco(F.sigmoid(logits), mass, event_weight=w)


def test_gradient_flows_into_model_parameters_and_matches_finite_differences():
    rng = np.random.default_rng(10)
    B = 64
    X = rng.standard_normal((B, 3))
    mass = X[:, 0] * 10.0 + 80.0 + rng.standard_normal(B)  # the score can learn the mass through X0
    labels = (X[:, 1] + 0.5 * X[:, 0] > 0).astype(np.float64)
    w = rng.uniform(0.5, 2.0, B)
    hepnn.manual_seed(0)
    model = hepnn.nn.Sequential(hepnn.nn.Linear(3, 4, dtype=np.float64), hepnn.nn.Tanh(),
                                hepnn.nn.Linear(4, 1, dtype=np.float64))
    loss = _model_loss(model, X, labels, mass, w, lam=2.0)
    loss.backward()
    params = list(model.parameters())
    assert all(p.grad is not None for p in params)
    eps = 1e-6
    with hepnn.no_grad():
        for p in params:
            flat = p.data.reshape(-1)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + eps
                up = _model_loss(model, X, labels, mass, w, 2.0).item()
                flat[i] = old - eps
                down = _model_loss(model, X, labels, mass, w, 2.0).item()
                flat[i] = old
                fd = (up - down) / (2 * eps)
                assert p.grad.data.reshape(-1)[i] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_training_on_the_disco_term_decorrelates():
    rng = np.random.default_rng(11)
    B = 256
    X = rng.standard_normal((B, 2))
    mass = 3.0 * X[:, 0] + 0.3 * rng.standard_normal(B)
    hepnn.manual_seed(1)
    model = hepnn.nn.Linear(2, 1, dtype=np.float64)
    with hepnn.no_grad():
        model.weight.data[...] = [[1.0, 0.2]]
    opt = hepnn.optim.SGD(model.parameters(), lr=0.5)
    first = None
    for _ in range(40):
        opt.zero_grad()
        d = disco(model(hepnn.tensor(X)), mass)  # a (B, 1) score is accepted
        first = d.item() if first is None else first
        d.backward()
        opt.step()
    last = disco(model(hepnn.tensor(X)), mass).item()
    assert first > 0.5 and last < 0.1 * first


def test_autograd_op_details():
    rng = np.random.default_rng(12)
    x = rng.standard_normal(20)
    y = rng.standard_normal(20) + x
    s = hepnn.tensor(x, requires_grad=True)
    d = disco(s, hepnn.tensor(y), power=2)
    assert d.shape == () and d.requires_grad
    d.backward()
    np.testing.assert_allclose(s.grad.numpy(), _reference_grad(x, y, power=2.0), rtol=1e-9, atol=1e-14)
    with hepnn.no_grad():
        assert not disco(s, y).requires_grad
    assert disco(hepnn.tensor(x.astype(np.float32)), y).dtype == np.float32  # mass follows the score's dtype
    with pytest.raises(RuntimeError, match=r"\[disco\] mass gets no gradient"):
        disco(s, hepnn.tensor(y, requires_grad=True))


# ---- bad inputs -----------------------------------------------------------------------------------
def _buffers(B=5, dtype=np.float64):
    return np.full(1, np.nan, dtype), np.full(B, np.nan, dtype)


@pytest.mark.parametrize("case, exc, msg", [
    ("one_event", ValueError, "at least 2 events"),
    ("length", ValueError, "y has shape"),
    ("two_d", ValueError, "x has shape"),
    ("int", TypeError, "x has dtype"),
    ("mixed", TypeError, "y has dtype"),
    ("strided", ValueError, "not C-contiguous"),
    ("nan_x", ValueError, "x has a non-finite value at index 2"),
    ("inf_y", ValueError, "y has a non-finite value"),
    ("neg_w", ValueError, "negative value at index 1"),
    ("zero_w", ValueError, "sum to zero"),
    ("power0", ValueError, "power must be finite and > 0"),
    ("power_nan", ValueError, "power must be finite and > 0"),
    ("loss_size", ValueError, "loss must have exactly 1 element"),
    ("grad_shape", ValueError, "grad has shape"),
])
def test_bad_inputs_raise_and_leave_outputs_alone(case, exc, msg):
    rng = np.random.default_rng(13)
    x, y, w = rng.standard_normal(5), rng.standard_normal(5), rng.uniform(0.5, 1.0, 5)
    loss, grad = _buffers()
    power = 1.0
    if case == "one_event":
        x, y, grad = x[:1], y[:1], grad[:1]
    elif case == "length":
        y = y[:4]
    elif case == "two_d":
        x = x.reshape(5, 1)
    elif case == "int":
        x = np.arange(5)
    elif case == "mixed":
        y = y.astype(np.float32)
    elif case == "strided":
        y = rng.standard_normal(10)[::2]
    elif case == "nan_x":
        x[2] = np.nan
    elif case == "inf_y":
        y[3] = np.inf
    elif case == "neg_w":
        w[1] = -0.1
    elif case == "zero_w":
        w[:] = 0.0
    elif case == "power0":
        power = 0.0
    elif case == "power_nan":
        power = float("nan")
    elif case == "loss_size":
        loss = np.full(2, np.nan)
    elif case == "grad_shape":
        grad = np.full(4, np.nan)
    with pytest.raises(exc, match=r"\[disco\] .*" + msg):
        _core.disco_loss(x, y, w, loss, grad, power)
    assert np.isnan(loss).all() and np.isnan(grad).all()


def test_autograd_op_bad_inputs():
    s = hepnn.tensor(np.arange(6.0), requires_grad=True)
    with pytest.raises(ValueError, match=r"\[disco\] mass must have shape \(6,\)"):
        disco(s, np.arange(5.0))
    with pytest.raises(ValueError, match=r"\[disco\] score must have shape"):
        disco(hepnn.tensor(np.ones((3, 2))), np.ones(3))
    with pytest.raises(ValueError, match=r"\[disco\] event_weight must have shape"):
        disco(s, np.arange(6.0), event_weight=np.ones(7))
    with pytest.raises(ValueError, match=r"\[disco\] power must be finite"):
        disco(s, np.arange(6.0), power=-1)
    with pytest.raises(ValueError, match=r"\[disco\] needs at least 2 events"):
        disco(hepnn.tensor(np.ones(1)), np.ones(1))
    with pytest.raises(TypeError, match=r"\[disco\] score must be a hepnn Tensor"):
        disco(np.arange(6.0), np.arange(6.0))
    with pytest.raises(ValueError, match=r"\[disco\] .*negative value"):
        disco(s, np.arange(6.0), event_weight=-np.ones(6))


_STANDIN_CHECK = r"""
import numpy as np
from tests.cupy_standin import install
cp = install()
import hepnn
from hepnn.nn._disco import disco

rng = np.random.default_rng(3)
x, mass = rng.standard_normal(40), rng.uniform(50.0, 150.0, 40)
weights = list(rng.uniform(0.5, 2.0, 40))
out = {}
for device in ("cpu", "cuda"):
    s = hepnn.tensor(x, device=device, requires_grad=True)
    d = disco(s * 2.0, mass + x, event_weight=weights)  # mass and weights arrive on the host
    d.backward()
    assert d.device == device and s.grad.device == device
    out[device] = (d.item(), s.grad.cpu().numpy())
assert out["cpu"][0] == out["cuda"][0]
np.testing.assert_array_equal(out["cpu"][1], out["cuda"][1])
print("ok")
"""


def test_python_cuda_path_with_a_cupy_standin():
    """The op's device handling (host mass and weights moved to the score's device, the stream
    passed on) runs against the NumPy-backed CuPy stand-in and must give the CPU result."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", _STANDIN_CHECK], capture_output=True, text=True, cwd=root,
                         env=os.environ.copy())
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")

# ---- CUDA (skipped without a GPU and CuPy; the registry also runs every spec there) ---------------
def _cupy():
    if not (_core.cuda_built() and _core.cuda_device_count() > 0):
        pytest.skip("no CUDA build or no CUDA device")
    return pytest.importorskip("cupy")


@pytest.mark.parametrize("B", [2, 7, 129, 1001])
def test_cuda_matches_cpu_and_is_deterministic(B):
    cp = _cupy()
    rng = np.random.default_rng(14)
    x, w = rng.standard_normal(B), rng.uniform(0.2, 2.0, B)
    y = np.abs(x) + rng.standard_normal(B)
    v_cpu, g_cpu = _kernel(x, y, w)
    runs = []
    for _ in range(2):
        loss, grad = cp.full(1, cp.nan), cp.full(B, cp.nan)
        _core.disco_loss(cp.asarray(x), cp.asarray(y), cp.asarray(w), loss, grad, 1.0,
                         cp.cuda.get_current_stream().ptr)
        runs.append((loss.get(), grad.get()))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][0][0] == pytest.approx(v_cpu, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(runs[0][1], g_cpu, rtol=1e-9, atol=1e-14)


def test_cuda_bad_values_give_nan_instead_of_raising():
    cp = _cupy()
    x, y = cp.asarray(np.linspace(0.0, 1.0, 9)), cp.asarray(np.linspace(1.0, 3.0, 9) ** 2)
    for w in (-cp.ones(9), cp.zeros(9)):
        loss, grad = cp.zeros(1), cp.zeros(9)
        _core.disco_loss(x, y, w, loss, grad, 1.0, cp.cuda.get_current_stream().ptr)
        assert bool(cp.isnan(loss).all()) and bool(cp.isnan(grad).all())
    xn = x.copy()
    xn[3] = cp.nan
    loss = cp.zeros(1)
    _core.disco_loss(xn, y, None, loss, None, 1.0, cp.cuda.get_current_stream().ptr)
    assert bool(cp.isnan(loss).all())
