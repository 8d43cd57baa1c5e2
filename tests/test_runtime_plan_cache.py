"""A Session's plan cache (cpp/runtime/planner.cpp): one session cycling through more input shapes
than it keeps plans for (so plans are evicted and rebuilt) gives, for every call, what a fresh
session gives for that shape, including a graph whose Reshape target is folded per shape."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402


def shape_model():
    """x (N, 12) -> Reshape to (N, 3, 4) from Shape/Gather/Concat -> ReduceMax over 2 -> Gemm (3 -> 5)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    inits = {"zero": i64([0]), "tail": i64([3, 4]), "W": w, "b": rng.standard_normal(5).astype(np.float32)}
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Concat", ["n", "tail"], ["spec"], axis=0),
             helper.make_node("Reshape", ["x", "spec"], ["xr"]),
             helper.make_node("ReduceMax", ["xr"], ["m"], axes=[2], keepdims=0),
             helper.make_node("Gemm", ["m", "W", "b"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString(), w, inits["b"]


def test_cycling_shapes_match_fresh_sessions():
    data, w, b = shape_model()
    model = rt.Model(data)
    sess = rt.Session(model)
    rng = np.random.default_rng(0)
    batches = [7, 1, 5, 7, 3, 64, 2, 9, 1, 7, 11, 5, 64, 1]  # more distinct sizes than cached plans
    for n in batches:
        x = rng.standard_normal((n, 12)).astype(np.float32)
        (y,) = sess.run({"x": x})
        (y_fresh,) = rt.Session(model).run({"x": x})
        assert y.shape == (n, 5)
        np.testing.assert_array_equal(y, y_fresh)
        ref = x.astype(np.float64).reshape(n, 3, 4).max(2) @ w.T.astype(np.float64) + b
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_failed_shape_keeps_cached_plans():
    data, _, _ = shape_model()
    sess = rt.Session(data)
    x = np.ones((4, 12), np.float32)
    (y0,) = sess.run({"x": x})
    with pytest.raises(ValueError, match="expects"):
        sess.run({"x": np.ones((4, 13), np.float32)})
    (y1,) = sess.run({"x": x})
    np.testing.assert_array_equal(y0, y1)
