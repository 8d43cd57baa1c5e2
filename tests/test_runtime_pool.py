"""MaxPool through the runtime (values only, the inference path of cpp/ops/conv_pool.cpp and its
AVX2 2x2 rows in pool_avx2.cpp) against NumPy float64: odd sizes around the vector width, strides,
paddings, ceil_mode, planes holding NaN; once as built and once with HEPNN_DISABLE_AVX2=1 (a
subprocess, since the choice is made once per process)."""
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

# (H, W, kernel, strides, pads (top, left, bottom, right), ceil_mode)
CASES = [(2, 2, 2, 2, (0, 0, 0, 0), 0), (9, 37, 2, 2, (0, 0, 0, 0), 0), (40, 40, 2, 2, (0, 0, 0, 0), 0),
         (7, 33, 2, 2, (0, 0, 0, 0), 1), (5, 17, 2, 2, (1, 1, 0, 0), 0), (11, 13, 3, 2, (1, 1, 1, 1), 1),
         (6, 31, 3, 1, (0, 1, 0, 1), 0), (3, 50, 2, 2, (0, 0, 0, 0), 0)]


def ref(x, k, s, pads, ceil):
    B, C, H, W = x.shape
    size = lambda n, p0, p1: (n + p0 + p1 - k + (s - 1 if ceil else 0)) // s + 1  # noqa: E731
    OH, OW = size(H, pads[0], pads[2]), size(W, pads[1], pads[3])
    # ONNX: a window starting inside the bottom/right padding is dropped in ceil mode.
    if ceil and (OH - 1) * s >= H + pads[0]:
        OH -= 1
    if ceil and (OW - 1) * s >= W + pads[1]:
        OW -= 1
    xp = np.full((B, C, H + pads[0] + pads[2] + k, W + pads[1] + pads[3] + k), -np.inf)
    xp[:, :, pads[0]:pads[0] + H, pads[1]:pads[1] + W] = x
    y = np.empty((B, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            win = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(B, C, -1)
            y[:, :, i, j] = np.where(np.isnan(win).any(-1), np.nan, np.nanmax(np.where(np.isnan(win), -np.inf, win), -1))
    return y


def run_cases():
    rng = np.random.default_rng(0)
    for H, W, k, s, pads, ceil in CASES:
        node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[k, k], strides=[s, s], pads=list(pads),
                                ceil_mode=ceil)
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        x = rng.standard_normal((2, 3, H, W)).astype(np.float32)
        x[1, 2, rng.integers(H), rng.integers(W)] = np.nan  # one plane with NaN (the NaN-aware path)
        (y,) = rt.Session(m.SerializeToString()).run({"x": x})
        r = ref(x.astype(np.float64), k, s, pads, ceil)
        assert y.shape == r.shape, (H, W, k, s, pads, ceil)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
        np.testing.assert_allclose(y, r, rtol=0, atol=0)


def test_max_pool_runtime():
    run_cases()


def test_max_pool_runtime_portable():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # the hepnn being tested (the installed wheel in CI, python/ in a dev tree), not the sources
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(rt.__file__)))
    env = dict(os.environ, HEPNN_DISABLE_AVX2="1", PYTHONPATH=os.pathsep.join([pkg_parent, root]))
    code = ("import hepnn._core as c; assert not c.cpu_features()['avx2_kernels']; "
            "from tests.test_runtime_pool import run_cases; run_cases()")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
