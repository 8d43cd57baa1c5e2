"""Hostile Conv / ConvTranspose / pooling / normalisation nodes: absurd kernel shapes, zero
strides and dilations, negative pads, groups that do not divide the channels, weights that do not
match, windows wholly in the padding, scratch bombs, unsupported outputs and modes, and random
byte flips of a small CNN. Each must be an exception naming the op (and, at load, the node), never
a crash, quickly and without unbounded allocation."""
import time

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

from tests.runtime_flips import ERRORS, flipped_sessions, run_ones
RNG = np.random.default_rng(0)


def model(op, attrs, weights=(), x_shape=(1, 2, 5, 5), outputs=("y",), opset=17, x_type=TensorProto.FLOAT,
          weight_inputs=False):
    names = ["x"] + [f"w{i}" for i in range(len(weights))]
    ins = [helper.make_tensor_value_info("x", x_type, list(x_shape))]
    inits = []
    for n, w in zip(names[1:], weights):
        if weight_inputs:
            ins.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, list(w)))
        else:
            inits.append(numpy_helper.from_array(RNG.standard_normal(w).astype(np.float32), n))
    g = helper.make_graph([helper.make_node(op, names, list(outputs), name="n0", **attrs)], "h", ins,
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def refused(data, match, feeds=None):
    t0 = time.perf_counter()
    with pytest.raises(ERRORS, match=match):
        s = rt.Session(data)
        s.run(feeds if feeds is not None else {"x": np.ones((1, 2, 5, 5), np.float32)})
    assert time.perf_counter() - t0 < 5


W = (3, 2, 3, 3)
AT_LOAD = "Conv node 'n0'"


@pytest.mark.parametrize("attrs,match", [
    ({"kernel_shape": [2**20, 3]}, "kernel_shape .* must lie in"),
    ({"strides": [0, 1]}, "strides \\[0, 1\\] must lie in"),
    ({"strides": [2**40, 1]}, "strides .* must lie in"),
    ({"dilations": [1, 0]}, "dilations .* must lie in"),
    ({"pads": [1, -1, 1, 1]}, "pads .* must lie in"),
    ({"pads": [1, 1, 1]}, "pads .* not for a 1-d or 2-d input"),
    ({"kernel_shape": [3, 3, 3]}, "3-d and higher are not supported"),
    ({"kernel_shape": [3]}, "does not match the weight"),
    ({"group": 0}, "group 0 must lie in"),
    ({"group": 2}, "not a positive multiple of group 2"),
    ({"auto_pad": "SAME"}, "auto_pad 'SAME' is not"),
    ({"auto_pad": "VALID", "pads": [0, 0, 0, 0]}, "pads and auto_pad"),
    ({"kernel_shape": [5, 5]}, "kernel_shape \\[5, 5\\] does not match the weight"),
])
def test_conv_attributes_refused_at_load(attrs, match):
    with pytest.raises(RuntimeError, match=AT_LOAD + ": .*" + match):
        rt.Model(model("Conv", attrs, [W]))


def test_conv_weights_and_inputs_that_do_not_fit():
    refused(model("Conv", {}, [(3, 4, 3, 3)]), "Conv: input has 2 channels, the weight .* expects 4")
    refused(model("Conv", {}, [(3, 2, 3, 3, 3)]), "Conv node 'n0': weight has shape .* expected 3-d or 4-d")
    refused(model("Conv", {"strides": [1]}, [W]), "Conv: input has shape \\(1, 2, 5, 5\\) but the attributes are for a 1-d")
    refused(model("Conv", {}, [W, (4,)]), "Conv node 'n0': bias has shape \\[4\\], expected \\(3,\\)")
    refused(model("Conv", {}, [(3, 2, 7, 7)]), "Conv: input length 5 .* shorter than the window 7")
    refused(model("Conv", {}, [W], x_shape=(1, 2, 5, 5, 5)), "Conv: input has shape .* expected 3-d")
    refused(model("Conv", {}, [W], x_type=TensorProto.INT64), "Conv node 'n0': input 'x' is int64, expected float32")
    # Weights as graph inputs are checked when the shapes are known (here at load: fixed shapes).
    refused(model("Conv", {"group": 2}, [(4, 1, 3, 3)], x_shape=(1, 3, 5, 5), weight_inputs=True),
            "Conv: group 2 does not divide the channels")
    refused(model("Conv", {}, [(3, 2, 2**17, 1)], weight_inputs=True), "Conv: .*")
    # A dilated 64x64 kernel over a 1024x1024 plane: 2^12 x 2^20 im2col columns, refused before any allocation.
    refused(model("Conv", {"pads": [32, 32, 31, 31]}, [(1, 1, 64, 64)], x_shape=(1, 1, 1024, 1024), weight_inputs=True),
            "Conv: the im2col matrix needs more than 2\\^28")


def test_conv_transpose_refusals():
    w = (2, 3, 3, 3)
    refused(model("ConvTranspose", {"output_padding": [2, 0], "strides": [2, 2]}, [w]),
            "ConvTranspose node 'n0': output_padding \\[2, 0\\] must be smaller than the stride")
    refused(model("ConvTranspose", {"output_shape": [0, 5]}, [w]), "ConvTranspose node 'n0': output_shape .* out of range")
    refused(model("ConvTranspose", {"pads": [4, 4, 4, 4]}, [w]), "ConvTranspose: the output would have length -1")
    refused(model("ConvTranspose", {}, [(3, 3, 3, 3)]), "ConvTranspose: input has 2 channels, the weight")
    refused(model("ConvTranspose", {"group": 4}, [(2, 1, 3, 3)]), "ConvTranspose: group 4 does not divide")
    refused(model("ConvTranspose", {"strides": [2**16, 2**16]}, [w], x_shape=(1, 2, 2**12, 2**12)),
            "ConvTranspose.*(2\\^31|2\\^28)")


@pytest.mark.parametrize("op,attrs,match", [
    ("MaxPool", {}, "MaxPool node 'n0': the kernel_shape attribute is required"),
    ("MaxPool", {"kernel_shape": [0, 2]}, "kernel_shape .* must lie in"),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [0, 0]}, "strides .* must lie in"),
    ("MaxPool", {"kernel_shape": [2, 2], "pads": [2, 0, 0, 0]}, "pads .* must be smaller than the window"),
    ("MaxPool", {"kernel_shape": [2, 2], "pads": [-1, 0, 0, 0]}, "pads .* must lie in"),
    ("MaxPool", {"kernel_shape": [2, 2], "ceil_mode": 1, "auto_pad": "SAME_UPPER"}, "ceil_mode with auto_pad"),
    ("AveragePool", {"kernel_shape": [2, 2], "dilations": [2, 2]}, "dilations .* are not supported"),
    ("AveragePool", {"kernel_shape": [2, 2], "foo": 1}, "unsupported attribute 'foo'"),
])
def test_pool_attributes_refused_at_load(op, attrs, match):
    with pytest.raises(RuntimeError, match=match):
        rt.Model(model(op, attrs, opset=19))


def test_pool_shapes_refused():
    refused(model("MaxPool", {"kernel_shape": [2, 2]}, outputs=("y", "i")), "MaxPool node 'n0': the Indices output")
    # Dilation 3 over a length-2 axis with pad 2: the first window's taps (-2, 1, 4) ... (-2 + 3 = 1) fits,
    # but pad 2 with dilation 3 on length 1 steps over the input entirely.
    refused(model("MaxPool", {"kernel_shape": [1, 2], "dilations": [1, 3], "pads": [0, 2, 0, 2]}, x_shape=(1, 2, 5, 1)),
            "MaxPool: a window lies wholly in the padding", {"x": np.ones((1, 2, 5, 1), np.float32)})
    refused(model("AveragePool", {"kernel_shape": [3, 3], "pads": [0, 0, 1, 1], "count_include_pad": 1, "ceil_mode": 1,
                                  "strides": [2, 2]}), "AveragePool: ceil_mode with asymmetric pads and count_include_pad")
    refused(model("MaxPool", {"kernel_shape": [7, 2]}), "MaxPool: input length 5 .* shorter than the window 7")
    refused(model("GlobalMaxPool", {}, x_shape=(2, 3)), "GlobalMaxPool: input has shape \\(2, 3\\)",
            {"x": np.ones((2, 3), np.float32)})


def test_normalisation_refusals():
    c4 = [(2,)] * 4
    refused(model("BatchNormalization", {"training_mode": 1}, c4, opset=15),
            "BatchNormalization node 'n0': training_mode must be 0")
    refused(model("BatchNormalization", {}, c4, outputs=("y", "m", "v"), opset=15), "BatchNormalization node 'n0' has 3 outputs")
    refused(model("BatchNormalization", {}, [(2,), (2,), (3,), (2,)], opset=15),
            "BatchNormalization: input_mean has shape \\(3,\\), expected \\(2,\\)")
    refused(model("BatchNormalization", {}, [(2, 1)] * 4, opset=15), "BatchNormalization node 'n0': input 'w0' has shape")
    refused(model("LayerNormalization", {}, [(5,)], outputs=("y", "mean", "")), "LayerNormalization node 'n0': the Mean")
    refused(model("LayerNormalization", {"axis": 4}, [(5,)]), "LayerNormalization: axis 4 is out of range")
    refused(model("LayerNormalization", {"axis": 2}, [(5,)]), "LayerNormalization: Scale has shape \\(5,\\), expected")
    refused(model("LayerNormalization", {"stash_type": 0}, [(5,)]), "LayerNormalization node 'n0': stash_type")
    refused(model("LayerNormalization", {"epsilon": -1.0}, [(5,)]), "LayerNormalization node 'n0': epsilon")


def test_random_byte_flips_of_a_cnn_never_crash():
    rng = np.random.default_rng(7)
    init = lambda n, s: numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)  # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "s", "bb", "mu", "var"], ["n1"]),
             helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER"),
             helper.make_node("ConvTranspose", ["p1", "w2"], ["t1"], strides=[2, 2], output_padding=[1, 1]),
             helper.make_node("AveragePool", ["t1"], ["a1"], kernel_shape=[3, 3], pads=[1, 0, 1, 2], strides=[1, 2]),
             helper.make_node("LayerNormalization", ["a1", "g"], ["l1"], axis=-1),
             helper.make_node("GlobalAveragePool", ["l1"], ["y"])]
    inits = [init("w1", (4, 2, 3, 3)), init("b1", (4,)), init("s", (4,)), init("bb", (4,)), init("mu", (4,)),
             numpy_helper.from_array(np.full(4, 1.5, np.float32), "var"), init("w2", (4, 3, 2, 2)), init("g", (5,))]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 7, "W"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    data = m.SerializeToString()
    x = rng.standard_normal((2, 2, 7, 7)).astype(np.float32)
    assert rt.Session(data).run({"x": x})[0].shape == (2, 3, 1, 1)
    loaded = 0
    for s in flipped_sessions(rt, data, rng, 1500):
        loaded += 1
        run_ones(s, ((2, 2, 7, 7), (1, 2, 7, 3), (1, 2, 7, 1), (3, 2, 7)))
    assert 0 < loaded < 1500
