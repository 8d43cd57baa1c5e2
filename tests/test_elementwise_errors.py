"""Boundary checks of act_forward/act_backward, softmax_forward/backward and reduce: bad input
raises ValueError/TypeError naming the op; plus the edge cases the registry cannot express (NaN
propagation, torch's conventions at kinks, thread-count independence, aliased outputs, and the
portable path when the AVX2 kernels are the default)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from hepnn import _core

ACTS = ["none", "relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "sigmoid", "tanh", "softplus"]


def _x(shape=(5, 7), dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _out(shape=(5, 7), dtype=np.float64):
    return np.full(shape, np.nan, dtype=dtype)


# ---- activations -------------------------------------------------------------------------------

def test_act_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"\[act_forward\] unknown activation 'swish'.*gelu_tanh"):
        _core.act_forward("swish", _x(), _out())
    with pytest.raises(ValueError, match=r"\[act_backward\] unknown activation 'Relu'"):
        _core.act_backward("Relu", _x(), _x(), _x(), _out())


def test_act_shape_mismatch():
    with pytest.raises(ValueError, match=r"\[act_forward\] y has shape \(7, 5\), expected \(5, 7\)"):
        _core.act_forward("relu", _x(), _out((7, 5)))
    with pytest.raises(ValueError, match=r"\[act_backward\] dy has shape"):
        _core.act_backward("relu", _x(), _x(), _x((35,)), _out())


def test_act_dtype_mismatch_and_int_input():
    with pytest.raises(TypeError, match=r"\[act_forward\] y has dtype float32, expected float64"):
        _core.act_forward("tanh", _x(), _out(dtype=np.float32))
    with pytest.raises(TypeError, match=r"\[act_forward\] x has dtype int64, expected float32 or float64"):
        _core.act_forward("tanh", np.arange(35).reshape(5, 7), _out())
    with pytest.raises(TypeError, match=r"\[act_backward\] dx has dtype float32"):
        _core.act_backward("tanh", _x(), _x(), _x(), _out(dtype=np.float32))


def test_act_non_contiguous():
    x = _x((7, 5)).T
    with pytest.raises(ValueError, match=r"\[act_forward\] x is not C-contiguous"):
        _core.act_forward("relu", x, _out())
    with pytest.raises(ValueError, match=r"\[act_forward\] y is not C-contiguous"):
        _core.act_forward("relu", _x(), _out((7, 5)).T)


@pytest.mark.parametrize("alpha", [np.nan, np.inf])
def test_act_non_finite_alpha(alpha):
    with pytest.raises(ValueError, match=r"\[act_forward\] alpha must be finite"):
        _core.act_forward("leaky_relu", _x(), _out(), alpha)
    with pytest.raises(ValueError, match=r"\[act_backward\] alpha must be finite"):
        _core.act_backward("elu", _x(), _x(), _x(), _out(), alpha)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_act_nan_propagates(act, dtype):
    x = np.array([np.nan, 1.5, -1.5, np.nan], dtype=dtype)
    y, dx = _out((4,), dtype), _out((4,), dtype)
    _core.act_forward(act, x, y, 0.1)
    assert np.isnan(y[[0, 3]]).all() and np.isfinite(y[1:3]).all()
    _core.act_backward(act, x, y, np.ones(4, dtype), dx, 0.1)
    assert np.isfinite(dx[1:3]).all()
    if act != "none":  # identity's derivative is 1 whatever x is
        assert np.isnan(dx[[0, 3]]).all()


def test_act_extreme_inputs_stay_finite():
    x = np.array([-1e30, -1000.0, -88.0, 88.0, 1000.0, 1e30], dtype=np.float32)
    for act in ACTS:
        y, dx = _out((6,), np.float32), _out((6,), np.float32)
        _core.act_forward(act, x, y, 0.5)
        _core.act_backward(act, x, y, np.ones(6, np.float32), dx, 0.5)
        if act in ("sigmoid", "tanh"):
            assert np.isfinite(y).all(), act
        assert np.isfinite(dx).all(), act


@pytest.mark.parametrize("run,out_shape", [
    (lambda x, y: _core.act_forward("gelu", x, y), (513, 129)),
    (lambda x, y: _core.softmax_forward(x, y, 1, False), (513, 129)),
    (lambda x, y: _core.softmax_forward(x, y, 0, True), (513, 129)),
    (lambda x, y: _core.reduce(x, y, 0, "sum"), (129,)),
    (lambda x, y: _core.reduce(x, y, 1, "max"), (513,)),
], ids=["act", "softmax_last", "log_softmax_first", "sum_first", "max_last"])
def test_threads_do_not_change_results(run, out_shape):
    x = _x((513, 129), np.float32, seed=3)
    before = _core.get_num_threads()
    try:
        outs = []
        for n in (1, 3):
            _core.set_num_threads(n)
            y = _out(out_shape, np.float32)
            run(x, y)
            outs.append(y)
    finally:
        _core.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_act_matches_torch_conventions_at_kinks():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([-30.0, -1.0, -0.0, 0.0, 1.0, 19.99, 20.0, 20.01, 30.0])
    fns = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.2), "elu": lambda t: F.elu(t, 0.2),
           "selu": F.selu, "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
           "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softplus": F.softplus}
    for act, fn in fns.items():
        t = torch.tensor(x, requires_grad=True)
        out = fn(t)
        out.backward(torch.ones_like(out))
        y, dx = _out((9,)), _out((9,))
        _core.act_forward(act, x, y, 0.2)
        _core.act_backward(act, x, y, np.ones(9), dx, 0.2)
        np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=act)
        np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=act)


# ---- softmax -----------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [3, -4, 100])
def test_softmax_axis_out_of_range(axis):
    x = _x((2, 3, 4))
    with pytest.raises(ValueError, match=rf"\[softmax_forward\] axis {axis} is out of range for a 3-d array"):
        _core.softmax_forward(x, _out(x.shape), axis)
    with pytest.raises(ValueError, match=r"\[log_softmax_backward\] axis .* out of range"):
        _core.softmax_backward(x, x, _out(x.shape), axis, True)


def test_softmax_bad_operands():
    x = _x((2, 3, 4))
    with pytest.raises(ValueError, match=r"\[softmax_forward\] y has shape \(2, 3, 3\)"):
        _core.softmax_forward(x, _out((2, 3, 3)), -1)
    with pytest.raises(TypeError, match=r"\[softmax_forward\] y has dtype float32"):
        _core.softmax_forward(x, _out(x.shape, np.float32), -1)
    with pytest.raises(TypeError, match=r"\[softmax_forward\] x has dtype int32"):
        _core.softmax_forward(np.ones((2, 3), np.int32), _out((2, 3)), -1)
    with pytest.raises(ValueError, match=r"\[softmax_backward\] dy is not C-contiguous"):
        _core.softmax_backward(_x((4, 3)), _x((3, 4)).T, _out((4, 3)), 0)
    with pytest.raises(ValueError, match=r"\[softmax_forward\] needs an array with at least 1 dimension"):
        _core.softmax_forward(np.array(1.0), np.array(np.nan), 0)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_nan_poisons_only_its_slice(axis, log):
    x = _x((4, 6))
    x[2, 3] = np.nan
    y = _out(x.shape)
    _core.softmax_forward(x, y, axis, log)
    bad = np.zeros(x.shape, bool)
    if axis == 1:
        bad[2, :] = True
    else:
        bad[:, 3] = True
    assert np.isnan(y[bad]).all() and np.isfinite(y[~bad]).all()


# ---- reduce ------------------------------------------------------------------------------------

def test_reduce_bad_op_and_axis():
    x = _x((2, 3, 4))
    with pytest.raises(ValueError, match=r"\[reduce\] unknown op 'min'"):
        _core.reduce(x, _out((2, 4)), 1, "min")
    with pytest.raises(ValueError, match=r"\[reduce\] axis -4 is out of range for a 3-d array"):
        _core.reduce(x, _out((2, 4)), -4, "sum")


def test_reduce_bad_operands():
    x = _x((2, 3, 4))
    with pytest.raises(ValueError, match=r"\[reduce\] y has shape \(2, 3\), expected \(2, 4\)"):
        _core.reduce(x, _out((2, 3)), 1, "sum")
    with pytest.raises(TypeError, match=r"\[reduce\] y has dtype float32"):
        _core.reduce(x, _out((2, 4), np.float32), 1, "mean")
    with pytest.raises(TypeError, match=r"\[reduce\] x has dtype int64"):
        _core.reduce(np.ones((2, 3), np.int64), _out((2,)), 1, "sum")
    with pytest.raises(ValueError, match=r"\[reduce\] x is not C-contiguous"):
        _core.reduce(_x((4, 3)).T, _out((3,)), 1, "max")
    with pytest.raises(ValueError, match=r"\[reduce\] max over an empty axis"):
        _core.reduce(np.ones((2, 0)), _out((2,)), 1, "max")


def test_reduce_bad_argmax():
    x = _x((2, 3, 4))
    with pytest.raises(ValueError, match=r"\[reduce\] argmax is only produced by op 'max', got 'sum'"):
        _core.reduce(x, _out((2, 4)), 1, "sum", np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match=r"\[reduce\] argmax has dtype int32, expected int64"):
        _core.reduce(x, _out((2, 4)), 1, "max", np.zeros((2, 4), np.int32))
    with pytest.raises(ValueError, match=r"\[reduce\] argmax has shape \(4, 2\)"):
        _core.reduce(x, _out((2, 4)), 1, "max", np.zeros((4, 2), np.int64))


@pytest.mark.parametrize("shape,axis,first", [((9,), 0, 4), ((3, 9), 1, 4), ((9, 3), 0, 4), ((2, 9, 3), 1, 4),
                                               ((2, 50), 1, 33), ((50, 2), 0, 33), ((2, 70), 1, 66),
                                               ((2, 50), 1, 0), ((50, 3), 0, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reduce_max_nan_propagates_and_argmax_points_at_first_nan(shape, axis, first, dtype):
    x = np.moveaxis(np.zeros(shape, dtype), axis, -1).copy()
    x[...] = np.arange(x.shape[-1])  # increasing: the max is last unless a NaN comes first
    x[..., first] = np.nan
    x[..., first + 2] = np.nan
    x = np.ascontiguousarray(np.moveaxis(x, -1, axis))
    out_shape = tuple(s for i, s in enumerate(shape) if i != axis)
    y, am = _out(out_shape, dtype), np.full(out_shape, -1, np.int64)
    _core.reduce(x, y, axis, "max", am)
    assert np.isnan(y).all()
    assert (am == first).all() and (am == np.argmax(x, axis=axis)).all()
    y2 = _out(out_shape, dtype)
    _core.reduce(x, y2, axis, "max")  # the argmax-free path propagates NaN too
    assert np.isnan(y2).all()


def test_reduce_empty_axis_sum_and_mean():
    y = _out((3,))
    _core.reduce(np.ones((3, 0)), y, 1, "sum")
    assert (y == 0).all()
    _core.reduce(np.ones((3, 0)), y, 1, "mean")
    assert np.isnan(y).all()


# ---- aliasing and the portable path ----------------------------------------------------------

def test_in_place_outputs_match():
    x = _x((37, 9), np.float32, seed=5)
    y = _out(x.shape, np.float32)
    _core.act_forward("gelu", x, y)
    xi = x.copy()
    _core.act_forward("gelu", xi, xi)
    np.testing.assert_array_equal(xi, y)
    for log in (False, True):
        for axis in (0, 1):
            y = _out(x.shape, np.float32)
            _core.softmax_forward(x, y, axis, log)
            dy = _x(x.shape, np.float32, seed=6)
            dx = _out(x.shape, np.float32)
            _core.softmax_backward(y, dy, dx, axis, log)
            g = dy.copy()
            _core.softmax_backward(y, g, g, axis, log)  # dx is dy
            np.testing.assert_array_equal(g, dx)


@pytest.mark.skipif(not _core.cpu_features()["avx2_kernels"], reason="the portable path is the default here")
def test_portable_path_passes_the_registry():
    """With AVX2 kernels on by default, rerun the specs with vector paths (elementwise, BCE, CE) with
    HEPNN_DISABLE_AVX2=1."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, HEPNN_DISABLE_AVX2="1")
    probe = subprocess.run([sys.executable, "-c", "import hepnn; print(hepnn._core.cpu_features()['avx2_kernels'])"],
                           env=env, cwd=root, capture_output=True, text=True)
    assert probe.stdout.strip() == "False", probe.stdout + probe.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_registry.py",
                          "-k", "act_ or softmax or reduce or bce_with_logits or cross_entropy"], env=env, cwd=root, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
