"""The spline kernels beyond the registry: round trips, monotonicity and the log-det as the
slope, thread-count determinism, the inverse's autograd rule against finite differences, and
the binding's refusals (shape, dtype, bin count, bounds, NaN parameters, aliasing)."""
import numpy as np
import pytest

import hepnn
from hepnn import _core
from hepnn._ops_spline import rq_spline


def _params(rng, S, K, dtype=np.float64, scale=1.0):
    return [(rng.standard_normal(S + (k,)) * scale).astype(dtype) for k in (K, K, K - 1)]


def _run(fn, v, W, H, D, **kw):
    fill = np.nan if v.dtype.kind == "f" else 0
    out, ld = np.full_like(v, fill), np.full_like(v, fill)
    fn(v, W, H, D, out, ld, **kw)
    return out, ld


def test_round_trip_and_inverse_logdet():
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, (301, 7))
    W, H, D = _params(rng, x.shape, 10)
    y, ld = _run(_core.spline_forward, x, W, H, D)
    x2, ld2 = _run(_core.spline_inverse, y, W, H, D)
    np.testing.assert_allclose(x2, x, atol=1e-12)
    np.testing.assert_allclose(ld2, -ld, atol=1e-10)
    outside = np.abs(x) > 3.0
    assert outside.any() and np.array_equal(y[outside], x[outside]) and np.all(ld[outside] == 0)


def test_monotone_continuous_and_logdet_is_the_slope():
    rng = np.random.default_rng(1)
    x = np.linspace(-3.5, 3.5, 20001)
    W, H, D = (np.broadcast_to(p, x.shape + p.shape[1:]).copy() for p in _params(rng, (1,), 7, scale=1.5))
    y, ld = _run(_core.spline_forward, x, W, H, D)
    assert np.all(np.diff(y) > 0)
    slope = np.gradient(y, x)
    # NOTE: at a knot f' is continuous but f'' jumps, so the central difference there is off by
    # O(step * jump): a handful of points (one per knot at most) get a looser bound.
    rel = np.abs(np.exp(ld[1:-1]) / slope[1:-1] - 1)
    assert np.sum(rel > 2e-3) <= 8 and rel.max() < 0.05
    assert np.max(np.abs(np.diff(y))) < 10 * (x[1] - x[0]) * np.exp(ld).max()  # no jumps at knots


def test_same_result_for_any_thread_count():
    rng = np.random.default_rng(2)
    x = rng.uniform(-3, 3, 5001).astype(np.float32)
    W, H, D = _params(rng, x.shape, 8, np.float32)
    prev = hepnn.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            hepnn.set_num_threads(n)
            dx, dw, dh, dd = (np.empty_like(a) for a in (x, W, H, D))
            _core.spline_backward(x, W, H, D, np.ones_like(x), np.ones_like(x), dx, dw, dh, dd)
            outs.append((_run(_core.spline_forward, x, W, H, D), dx, dw, dh, dd))
    finally:
        hepnn.set_num_threads(prev)
    for o in outs[1:]:
        for a, b in zip(outs[0][0] + outs[0][1:], o[0] + o[1:]):
            assert np.array_equal(a, b)


def test_inverse_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    y0 = rng.uniform(-3.5, 3.5, 9)
    args = [y0] + _params(rng, y0.shape, 5)
    c1, c2 = rng.standard_normal(9), rng.standard_normal(9)

    def objective(*a):
        x, ld = rq_spline(*(hepnn.tensor(v) for v in a), inverse=True)
        return float((x.numpy() * c1 + ld.numpy() * c2).sum())

    ts = [hepnn.tensor(a, requires_grad=True) for a in args]
    x, ld = rq_spline(*ts, inverse=True)
    ((x * hepnn.tensor(c1)).sum() + (ld * hepnn.tensor(c2)).sum()).backward()
    for i, a in enumerate(args):
        for j in np.ndindex(a.shape):
            plus, minus = [v.copy() for v in args], [v.copy() for v in args]
            plus[i][j] += 1e-6
            minus[i][j] -= 1e-6
            fd = (objective(*plus) - objective(*minus)) / 2e-6
            assert abs(ts[i].grad[j] - fd) < 1e-6 + 1e-5 * abs(fd), (i, j)


def _inputs(K=4, S=(3, 2), dtype=np.float64):
    rng = np.random.default_rng(4)
    return [rng.uniform(-2, 2, S).astype(dtype)] + _params(rng, S, K, dtype)


@pytest.mark.parametrize("mutate,exc,msg", [
    (lambda a: a.__setitem__(0, a[0].astype(np.int32)), TypeError, r"\[spline\] x has dtype int32"),
    (lambda a: a.__setitem__(2, a[2].astype(np.float32)), TypeError, r"\[spline\] heights"),
    (lambda a: a.__setitem__(1, a[1][..., None]), ValueError, r"\[spline\] widths must have shape x.shape \+ \(K,\)"),
    (lambda a: a.__setitem__(2, a[2][..., :3]), ValueError, r"\[spline\] heights"),
    (lambda a: a.__setitem__(3, a[3][..., :2]), ValueError, r"\[spline\] derivatives"),
    (lambda a: a.__setitem__(1, np.asfortranarray(np.ones((3, 2, 4)))[:, ::-1]), ValueError, r"\[spline\] widths"),
])
def test_binding_rejects_bad_operands(mutate, exc, msg):
    a = _inputs()
    mutate(a)
    with pytest.raises(exc, match=msg):
        _run(_core.spline_forward, *a)


@pytest.mark.parametrize("K", [1, 257])
def test_binding_rejects_bin_counts(K):
    x = np.zeros(3)
    W = np.zeros((3, K))
    with pytest.raises(ValueError, match=r"\[spline\] bin count K .* must be in \[2, 256\]"):
        _run(_core.spline_forward, x, W, W, np.zeros((3, max(K - 1, 0))))


@pytest.mark.parametrize("kw,msg", [
    ({"bound": 0.0}, "bound must be finite and > 0"), ({"bound": float("nan")}, "bound must be finite"),
    ({"min_width": 0.3}, r"min_width must be > 0 with min_width \* K < 1"), ({"min_height": 0.0}, "min_height must be > 0"),
    ({"min_derivative": -1.0}, "min_derivative must be finite and > 0"),
])
def test_binding_rejects_bad_configuration(kw, msg):
    with pytest.raises(ValueError, match=r"\[spline\] " + msg):
        _run(_core.spline_forward, *_inputs(), **kw)


@pytest.mark.parametrize("which", [1, 2, 3])
@pytest.mark.parametrize("fn", ["spline_forward", "spline_inverse"])
def test_nan_parameters_are_refused(which, fn):
    a = _inputs()
    a[which].flat[3] = np.nan
    with pytest.raises(ValueError, match=r"\[" + fn + r"\] widths, heights or derivatives contain NaN"):
        _run(getattr(_core, fn), *a)
    with pytest.raises(ValueError, match=r"\[spline_backward\] .* contain NaN"):
        _core.spline_backward(*a, np.ones_like(a[0]), None, np.empty_like(a[0]), None, None, None)


def test_nan_inputs_propagate_without_harm():
    a = _inputs()
    a[0][0, 0] = np.nan
    y, ld = _run(_core.spline_forward, *a)
    assert np.isnan(y[0, 0]) and np.isfinite(y.ravel()[1:]).all()


def test_outputs_may_not_alias_inputs():
    a = _inputs()
    with pytest.raises(ValueError, match=r"\[spline\] y shares memory with x"):
        _core.spline_forward(*a, a[0], np.empty_like(a[0]))
    with pytest.raises(ValueError, match=r"\[spline\] dwidths shares memory with widths"):
        _core.spline_backward(*a, np.ones_like(a[0]), None, None, a[1], None, None)


def test_empty_and_zero_dimensional_inputs():
    x, W, D = np.zeros((0, 3)), np.zeros((0, 3, 4)), np.zeros((0, 3, 3))
    assert _run(_core.spline_forward, x, W, W, D)[0].shape == (0, 3)
    _core.spline_backward(x, W, W, D, None, None, np.empty_like(x), np.empty_like(W), np.empty_like(W),
                          np.empty_like(D))
    y, ld = _run(_core.spline_forward, np.full((), 0.5), np.zeros(4), np.zeros(4), np.full(3, 0.541))
    # equal bins with every knot derivative softplus(0.541) + 1e-3 ~ 1: close to the identity
    assert abs(float(y) - 0.5) < 1e-2 and abs(float(ld)) < 1e-2
