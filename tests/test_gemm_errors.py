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
