"""Bad input to the GEMM and fused-linear bindings raises TypeError/ValueError naming the op and
the operand, never a crash."""
import numpy as np
import pytest

import hepnn._core as core


def _f32(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize(
    "a,b,out,kwargs,exc,match",
    [
        (_f32(3, 4), _f32(5, 2), _f32(3, 2), {}, ValueError,
         r"\[gemm\] a has shape \(3, 4\) but b has shape \(5, 2\): inner dimensions 4 and 5 differ"),
        (_f32(4, 3), _f32(5, 2), _f32(3, 2), {"trans_a": True}, ValueError, r"\[gemm\] .*inner dimensions"),
        (_f32(3, 4), _f32(4, 2), _f32(2, 3), {}, ValueError, r"\[gemm\] out has shape \(2, 3\), expected \(3, 2\)"),
        (_f32(3, 4), _f32(4, 2).astype(np.float64), _f32(3, 2), {}, TypeError, r"\[gemm\] b has dtype float64"),
        (_f32(3, 4), _f32(4, 2), np.ones((3, 2)), {}, TypeError, r"\[gemm\] out has dtype float64"),
        (np.ones((3, 4), np.int32), _f32(4, 2), _f32(3, 2), {}, TypeError, r"\[gemm\] a has dtype int32"),
        (np.ones((3, 4), np.int64), np.ones((4, 2), np.int64), np.ones((3, 2), np.int64), {}, TypeError,
         r"\[gemm\] a has dtype int64"),
        (_f32(4, 3).T, _f32(4, 2), _f32(3, 2), {}, ValueError, r"\[gemm\] a is not C-contiguous"),
        (_f32(3, 4), _f32(2, 4).T, _f32(3, 2), {}, ValueError, r"\[gemm\] b is not C-contiguous"),
        (_f32(3, 4), _f32(4, 2), _f32(2, 3).T, {}, ValueError, r"\[gemm\] out is not C-contiguous"),
        (_f32(12), _f32(4, 2), _f32(3, 2), {}, ValueError, r"\[gemm\] a has shape \(12,\), expected 2 or 3"),
        (_f32(2, 3, 4), _f32(3, 4, 2), _f32(3, 3, 2), {}, ValueError, r"\[gemm\] .*batch sizes 2 and 3 differ"),
        (_f32(2, 3, 4), _f32(4, 2), _f32(3, 2), {}, ValueError, r"\[gemm\] out has shape \(3, 2\), expected \(2, 3, 2\)"),
        (_f32(3, 4), _f32(4, 2), _f32(3, 2), {"alpha": float("nan")}, ValueError, r"\[gemm\] alpha and beta must be finite"),
        (_f32(3, 4), _f32(4, 2), _f32(3, 2), {"beta": float("inf")}, ValueError, r"\[gemm\] alpha and beta must be finite"),
    ],
)
def test_gemm_rejects(a, b, out, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        core.gemm(a, b, out, **kwargs)


def test_gemm_rejects_aliased_output():
    a = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match=r"\[gemm\] out shares memory with a"):
        core.gemm(a, np.ones((4, 4), np.float32), a)


def test_gemm_accepts_readonly_inputs():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    a.setflags(write=False)
    out = np.full((2, 2), np.nan)
    core.gemm(a, a, out, trans_b=True)
    np.testing.assert_allclose(out, a @ a.T)


def _linear_args(B=4, I=3, O=2, dtype=np.float32):
    return dict(x=np.ones((B, I), dtype), w=np.ones((O, I), dtype), b=np.ones(O, dtype),
                y=np.empty((B, O), dtype), z=np.empty((B, O), dtype))


@pytest.mark.parametrize(
    "change,exc,match",
    [
        ({"w": np.ones((2, 5), np.float32)}, ValueError,
         r"\[linear_forward\] x has shape \(4, 3\) but w has shape \(2, 5\): input features 3 and 5 differ"),
        ({"b": np.ones(3, np.float32)}, ValueError, r"\[linear_forward\] b has shape \(3,\), expected \(2,\)"),
        ({"y": np.empty((4, 3), np.float32)}, ValueError, r"\[linear_forward\] y has shape \(4, 3\), expected \(4, 2\)"),
        ({"z": np.empty((2, 4), np.float32)}, ValueError, r"\[linear_forward\] z has shape"),
        ({"w": np.ones((2, 3))}, TypeError, r"\[linear_forward\] w has dtype float64"),
        ({"x": np.ones((4, 3), np.int64)}, TypeError, r"\[linear_forward\] x has dtype int64"),
        ({"x": np.ones((3, 4), np.float32).T}, ValueError, r"\[linear_forward\] x is not C-contiguous"),
        ({"x": np.ones((4, 3, 1), np.float32)}, ValueError, r"\[linear_forward\] x has shape \(4, 3, 1\), expected 2"),
        ({"act": "swish"}, ValueError, r"\[linear_forward\] unknown activation 'swish'; valid names: none, relu"),
        ({"act": "elu", "alpha": float("nan")}, ValueError, r"\[linear_forward\] alpha must be finite"),
    ],
)
def test_linear_forward_rejects(change, exc, match):
    args = _linear_args()
    args.update(change)
    with pytest.raises(exc, match=match):
        core.linear_forward(**args)


def test_linear_forward_rejects_aliasing():
    args = _linear_args(B=2, I=2, O=2)
    args["y"] = args["w"]
    with pytest.raises(ValueError, match=r"\[linear_forward\] y shares memory with w"):
        core.linear_forward(**args)


def _backward_args(B=4, I=3, O=2, dtype=np.float32):
    return dict(x=np.ones((B, I), dtype), w=np.ones((O, I), dtype), z=np.ones((B, O), dtype),
                y=np.ones((B, O), dtype), dy=np.ones((B, O), dtype), dx=np.empty((B, I), dtype),
                dw=np.empty((O, I), dtype), db=np.empty(O, dtype))


@pytest.mark.parametrize(
    "change,exc,match",
    [
        ({"z": None, "act": "gelu"}, ValueError, r"\[linear_backward\] activation 'gelu' needs the pre-activation z"),
        ({"dy": np.ones((4, 3), np.float32)}, ValueError, r"\[linear_backward\] dy has shape \(4, 3\), expected \(4, 2\)"),
        ({"dx": np.empty((3, 4), np.float32)}, ValueError, r"\[linear_backward\] dx has shape \(3, 4\), expected \(4, 3\)"),
        ({"dw": np.empty((3, 2), np.float32)}, ValueError, r"\[linear_backward\] dw has shape"),
        ({"db": np.empty((2, 1), np.float32)}, ValueError, r"\[linear_backward\] db has shape"),
        ({"y": np.ones((4, 2))}, TypeError, r"\[linear_backward\] y has dtype float64"),
        ({"dy": np.ones((2, 4), np.float32).T}, ValueError, r"\[linear_backward\] dy is not C-contiguous"),
        ({"act": "Relu"}, ValueError, r"\[linear_backward\] unknown activation 'Relu'"),
    ],
)
def test_linear_backward_rejects(change, exc, match):
    args = _backward_args()
    args.update(change)
    with pytest.raises(exc, match=match):
        core.linear_backward(**args)


def test_act_needs_preactivation():
    assert [a for a in ("none", "relu", "sigmoid", "tanh") if core.act_needs_preactivation(a)] == []
    for act in ("leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "softplus"):
        assert core.act_needs_preactivation(act)
    with pytest.raises(ValueError, match=r"\[act_needs_preactivation\] unknown activation"):
        core.act_needs_preactivation("gelu_erf")
