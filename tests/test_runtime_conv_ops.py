"""Single Conv / ConvTranspose / pooling / normalisation nodes with the attribute combinations the
backend cases leave out (asymmetric and auto pads with even kernels, strides with dilations,
groups, 1-d inputs, output_shape, ceil_mode, weights as graph inputs), on random odd-sized
inputs, through hepnn.runtime against onnx's reference evaluator and ONNX Runtime."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None


def node_model(op, x_shape, attrs, weights=(), const_weights=True, opset=17):
    rng = np.random.default_rng(abs(hash((op, x_shape, str(sorted(attrs.items()))))) % 2**32)
    names = ["x"] + [f"w{i}" for i in range(len(weights))]
    values = {n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names[1:], weights)}
    for n, s in zip(names[1:], weights):
        if op == "BatchNormalization" and n == "w3":
            values[n] = (rng.random(s) + 0.5).astype(np.float32)  # variances
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    inits = []
    for n in names[1:]:
        if const_weights:
            inits.append(numpy_helper.from_array(values[n], n))
        else:
            ins.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, list(values[n].shape)))
    g = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "t", ins,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    feeds = {"x": rng.standard_normal(x_shape).astype(np.float32)}
    if not const_weights:
        feeds.update(values)
    return m, feeds


def check(m, feeds, ref=None):
    """ref: the expected output when onnx's reference evaluator gets the case wrong."""
    (y,) = rt.Session(m.SerializeToString()).run(feeds)
    if ref is None:
        (ref,) = ReferenceEvaluator(m).run(None, feeds)
    assert y.shape == ref.shape, (y.shape, ref.shape)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    if ort is not None:
        (oy,) = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
        np.testing.assert_allclose(y, oy, rtol=1e-5, atol=1e-5)


CONV = [
    ((2, 3, 11, 9), (4, 3, 3, 3), {}),
    ((2, 3, 11, 9), (4, 3, 3, 3), {"pads": [1, 2, 1, 2], "strides": [2, 3]}),
    ((1, 4, 13, 7), (6, 2, 3, 2), {"group": 2, "dilations": [2, 1], "pads": [2, 0, 2, 0]}),
    ((1, 3, 9, 9), (5, 3, 4, 4), {"auto_pad": "SAME_UPPER"}),                  # pads (1, 2) each axis
    ((1, 3, 9, 9), (5, 3, 4, 2), {"auto_pad": "SAME_LOWER"}),                  # pads (2, 1) and (1, 0)
    ((2, 3, 10, 9), (5, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 2, 9, 8), (3, 2, 3, 3), {"auto_pad": "VALID", "strides": [2, 1]}),
    ((1, 2, 7, 7), (3, 2, 3, 3), {"pads": [2, 1, 0, 1]}),                      # begin > end: crop the tail
    ((1, 2, 7, 7), (3, 2, 3, 3), {"pads": [0, 1, 2, 1]}),                      # end > begin, stride 1
    ((1, 2, 9, 9), (3, 2, 3, 3), {"pads": [1, 1, 3, 1], "strides": [2, 1]}),   # end - begin a multiple of 2
    ((3, 6, 5, 5), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),         # depthwise
    ((2, 3, 17), (4, 3, 5), {"pads": [2, 2]}),
    ((2, 4, 17), (6, 2, 3), {"group": 2, "strides": [2], "dilations": [3], "pads": [1, 4]}),
    ((1, 3, 16), (2, 3, 4), {"auto_pad": "SAME_UPPER", "strides": [3]}),
    ((2, 8, 6, 5), (16, 8, 1, 1), {}),                                          # pointwise
]


@pytest.mark.parametrize("x,w,attrs", CONV, ids=[str(i) for i in range(len(CONV))])
@pytest.mark.parametrize("bias,const", [(True, True), (False, False)])
def test_conv(x, w, attrs, bias, const):
    check(*node_model("Conv", x, attrs, [w, (w[0],)] if bias else [w], const_weights=const))


CONV_T = [
    ((2, 3, 5, 4), (3, 2, 3, 3), {}),
    ((1, 4, 5, 5), (4, 3, 3, 2), {"strides": [2, 3], "pads": [1, 0, 1, 0], "output_padding": [1, 2]}),
    ((1, 4, 5, 5), (4, 1, 3, 3), {"group": 2, "strides": [2, 2], "pads": [0, 1, 2, 1]}),
    ((1, 2, 4, 6), (2, 2, 2, 3), {"dilations": [3, 2], "strides": [1, 2], "pads": [1, 2, 1, 1]}),
    ((1, 2, 4, 4), (2, 3, 3, 3), {"strides": [2, 2], "output_shape": [9, 10]}),
    ((1, 2, 4, 4), (2, 3, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 4, 4), (2, 3, 4, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((2, 3, 7), (3, 2, 4), {"strides": [3], "pads": [1, 2], "output_padding": [2]}),
]


@pytest.mark.parametrize("x,w,attrs", CONV_T, ids=[str(i) for i in range(len(CONV_T))])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose(x, w, attrs, bias):
    c = w[1] * attrs.get("group", 1)
    m, feeds = node_model("ConvTranspose", x, attrs, [w, (c,)] if bias else [w])
    if attrs.get("group", 1) > 1:  # onnx's reference evaluator has no grouped ConvTranspose
        if ort is None:
            pytest.skip("needs onnxruntime")
        check(m, feeds, ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0])
    else:
        check(m, feeds)


POOL = [
    ("MaxPool", (2, 3, 11, 9), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]}),
    ("MaxPool", (1, 2, 11, 10), {"kernel_shape": [3, 3], "dilations": [2, 3], "pads": [2, 1, 2, 1]}),
    ("MaxPool", (1, 2, 9, 9), {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("MaxPool", (1, 2, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("MaxPool", (2, 3, 19), {"kernel_shape": [4], "strides": [3], "pads": [2, 2], "ceil_mode": 1}),
    ("AveragePool", (2, 3, 11, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("AveragePool", (2, 3, 11, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                    "count_include_pad": 1}),
    ("AveragePool", (1, 2, 9, 8), {"kernel_shape": [2, 4], "auto_pad": "SAME_LOWER", "count_include_pad": 1}),
    ("AveragePool", (1, 2, 9, 8), {"kernel_shape": [2, 4], "auto_pad": "SAME_UPPER"}),
    ("AveragePool", (1, 2, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ("AveragePool", (3, 2, 15), {"kernel_shape": [5], "strides": [2], "pads": [2, 1]}),
    ("AveragePool", (1, 3, 9, 7), {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER",
                                   "count_include_pad": 1}),                 # pads (0, 1): shifted by a stride
    ("AveragePool", (1, 3, 9, 7), {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [0, 1, 1, 0],
                                   "count_include_pad": 1}),
]


@pytest.mark.parametrize("op,x,attrs", POOL, ids=[str(i) for i in range(len(POOL))])
def test_pool(op, x, attrs):
    check(*node_model(op, x, attrs, opset=19))


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("x", [(2, 3, 7), (3, 5, 4, 3), (1, 2, 3, 2, 3)])
def test_global_pool(op, x):
    m, feeds = node_model(op, x, {})
    # NOTE: onnx's reference GlobalMaxPool drops the channel axis of 1-d and 3-d inputs.
    axes = tuple(range(2, len(x)))
    f = np.max if op == "GlobalMaxPool" else np.mean
    check(m, feeds, f(feeds["x"].astype(np.float64), axis=axes, keepdims=True).astype(np.float32))


@pytest.mark.parametrize("x", [(5, 3), (2, 3, 7), (2, 3, 4, 5)])
def test_batchnorm(x):
    c = x[1]
    check(*node_model("BatchNormalization", x, {"epsilon": 1e-3}, [(c,)] * 4, opset=15))


@pytest.mark.parametrize("x,axis,bias", [((3, 7), -1, True), ((2, 5, 3), 1, False), ((2, 3, 4, 5), 2, True),
                                         ((4, 6), 0, True)])
def test_layernorm(x, axis, bias):
    norm = x[axis:]
    check(*node_model("LayerNormalization", x, {"axis": axis, "epsilon": 1e-4}, [norm, norm] if bias else [norm]))


@pytest.mark.parametrize("conv,pool", [
    ({"pads": [1, 1, 1, 1]}, {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ({"pads": [0, 1, 2, 1], "strides": [2, 1]}, {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ({"auto_pad": "SAME_UPPER"}, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
])
def test_conv_relu_maxpool_fused(conv, pool):
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((5, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **conv), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], **pool)]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 11, 9])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    assert rt.Model(m.SerializeToString()).steps == ["Conv+Relu+MaxPool"]
    check(m, {"x": rng.standard_normal((2, 3, 11, 9)).astype(np.float32)})
