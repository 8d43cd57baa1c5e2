"""Hostile files aimed at the runtime's shape and index operators: absurd Range/Tile/Expand/
ConstantOfShape sizes, int64 overflow in shape arithmetic, constant expansion bombs, out-of-range
Gather indices at run time, and random byte flips of a model with a shape subgraph. Each must be
an exception naming the op (a crash fails the suite), quickly and without unbounded allocation."""
import time

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

from tests.runtime_flips import ERRORS, flipped_sessions, run_ones


def graph(nodes, inits, x_shape=("N", 4), x_type=TensorProto.FLOAT, out="y", extra_inputs=()):
    ins = [helper.make_tensor_value_info("x", x_type, list(x_shape)), *extra_inputs]
    g = helper.make_graph(nodes, "h", ins, [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def refused(data, match):
    t0 = time.perf_counter()
    with pytest.raises(ERRORS, match=match):
        rt.Session(data).run({"x": np.ones((2, 4), np.float32)})
    assert time.perf_counter() - t0 < 5


def add_to_x(op_nodes, inits):
    # op output "c" (float) is added to x, so the graph is otherwise valid.
    return graph(op_nodes + [helper.make_node("Add", ["x", "c"], ["y"])], inits)


@pytest.mark.parametrize("a,b,d,match", [(0, 2**62, 1, "Range: .*2\\^31"), (0, 10, 0, "Range: delta is 0"),
                                         (-2**63, 2**63 - 1, 1, "Range: .*2\\^31")])
def test_absurd_int_range(a, b, d, match):
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["r"]), helper.make_node("Cast", ["r"], ["c"], to=1)]
    refused(add_to_x(nodes, {"a": np.array(a, np.int64), "b": np.array(b, np.int64), "d": np.array(d, np.int64)}), match)


@pytest.mark.parametrize("a,b,d", [(0, 1e30, 1e-30), (0, np.inf, 1), (np.nan, 1, 1), (0, 1, np.nan)])
def test_absurd_float_range(a, b, d):
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["c"])]
    refused(add_to_x(nodes, {"a": np.array(a, np.float32), "b": np.array(b, np.float32),
                             "d": np.array(d, np.float32)}), "Range")


def test_absurd_tile_expand_constant_of_shape():
    tile = [helper.make_node("Tile", ["x", "r"], ["y"])]
    refused(graph(tile, {"r": np.array([2**31, 2**31], np.int64)}), "Tile.*2\\^31")
    refused(graph(tile, {"r": np.array([-1, 1], np.int64)}), "Tile: invalid repeat")
    refused(graph(tile, {"r": np.array([2**62, 1], np.int64)}), "Tile: invalid repeat")
    expand = [helper.make_node("Expand", ["x", "s"], ["y"])]
    refused(graph(expand, {"s": np.array([2**20, 2**20, 1, 4], np.int64)}), "Expand.*2\\^31")
    refused(graph(expand, {"s": np.array([-5, 4], np.int64)}), "Expand: invalid")
    # Below 2^31 but beyond the expansion limit (2^25): a few bytes must not become gigabytes.
    refused(graph(expand, {"s": np.array([2**14, 2**12, 1, 4], np.int64)}), "Expand: .*limit of 2\\^25")
    refused(graph(tile, {"r": np.array([2**24, 2**4], np.int64)}), "Tile: .*limit of 2\\^25")
    cos = [helper.make_node("ConstantOfShape", ["s"], ["c"])]
    refused(add_to_x(cos, {"s": np.array([2**16, 2**16, 2**16], np.int64)}), "ConstantOfShape.*2\\^31")
    refused(add_to_x(cos, {"s": np.array([4, -1], np.int64)}), "ConstantOfShape: invalid")


def test_shape_arithmetic_overflow_refused():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Mul", ["s", "big"], ["t"]),
             helper.make_node("Reshape", ["x", "t"], ["y"])]
    refused(graph(nodes, {"big": np.array([2**62, 2**62], np.int64)}), "Mul: int64 overflow")
    nodes[1] = helper.make_node("Div", ["s", "zero"], ["t"])
    refused(graph(nodes, {"zero": np.array([0, 1], np.int64)}), "Div: int64 division by zero")
    nodes[1] = helper.make_node("Neg", ["s"], ["t"])
    refused(graph(nodes, {}), "Reshape: invalid target dimension")


def test_constant_expansion_is_bounded():
    # 64 ConstantOfShape nodes of 2^24 floats each (4 GiB if all were folded): folding stops at its
    # budget and the rest stay steps; loading is quick and bounded.
    nodes, prev = [], "x"
    for k in range(64):
        nodes += [helper.make_node("ConstantOfShape", ["s"], [f"c{k}"]),
                  helper.make_node("ReduceSum", [f"c{k}"], [f"r{k}"], keepdims=0),
                  helper.make_node("Add", [prev, f"r{k}"], [f"a{k}"])]
        prev = f"a{k}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    t0 = time.perf_counter()
    m = rt.Model(graph(nodes, {"s": np.array([2**24], np.int64)}))
    assert time.perf_counter() - t0 < 10
    assert len(m.steps) > 64  # not everything was folded


def test_out_of_range_gather_indices_at_run_time():
    idx = helper.make_tensor_value_info("i", TensorProto.INT64, [3])
    data = graph([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], {}, extra_inputs=[idx])
    s = rt.Session(data)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(s.run({"x": x, "i": np.array([3, -4, 0])})[0], x[:, [3, 0, 0]])
    for bad in ([4, 0, 0], [0, -5, 1], [2**62, 0, 0], [-2**63, 0, 0]):
        with pytest.raises(ValueError, match="Gather: index .* out of range"):
            s.run({"x": x, "i": np.array(bad)})
    np.testing.assert_array_equal(s.run({"x": x, "i": np.array([1, 1, 2])})[0], x[:, [1, 1, 2]])  # still usable
    idx2 = helper.make_tensor_value_info("i", TensorProto.INT64, [2, 4])
    ge = graph([helper.make_node("GatherElements", ["x", "i"], ["y"], axis=0)], {}, extra_inputs=[idx2])
    with pytest.raises(ValueError, match="GatherElements: index"):
        rt.Session(ge).run({"x": x, "i": np.array([[0, 1, 2, 0], [1, 1, 1, 1]])})


def test_bad_attributes_and_arities():
    bad = [
        ([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0])], "Transpose: perm"),
        ([helper.make_node("Concat", ["x", "x"], ["y"])], "Concat: the axis attribute is required"),
        ([helper.make_node("Concat", ["x", "x"], ["y"], axis=5)], "Concat: axis 5"),
        ([helper.make_node("Gather", ["x", "x"], ["y"])], "Gather: indices"),
        ([helper.make_node("Softmax", ["x"], ["y"], axis=-3)], "Softmax: axis"),
        ([helper.make_node("Cast", ["x"], ["y"], to=10)], "Cast: cast to element type 10"),
        ([helper.make_node("Where", ["x", "x", "x"], ["y"])], "Where: condition"),
        ([helper.make_node("TopK", ["x", "k"], ["y", "j"], axis=1)], "TopK: K = 9"),
        ([helper.make_node("Slice", ["x", "z", "z", "z", "z"], ["y"])], "Slice: step 0"),
        ([helper.make_node("Unsqueeze", ["x", "many"], ["y"])], "Unsqueeze: more than 8"),
        ([helper.make_node("ReduceSum", ["x", "k"], ["y"])], "ReduceSum: axis 9"),
    ]
    inits = {"k": np.array([9], np.int64), "z": np.array([0], np.int64), "many": np.arange(8, dtype=np.int64)}
    for nodes, match in bad:
        refused(graph(nodes, inits), match)


def test_random_byte_flips_of_a_shape_subgraph_never_crash():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "ax"], ["bu"]), helper.make_node("Concat", ["bu", "m1"], ["t"], axis=0),
             helper.make_node("Reshape", ["x", "t"], ["f"]), helper.make_node("TopK", ["f", "k"], ["v", "i"]),
             helper.make_node("Cast", ["i"], ["ic"], to=1), helper.make_node("Tile", ["ic", "rep"], ["ti"]),
             helper.make_node("Slice", ["ti", "st", "en", "ax1"], ["sl"]), helper.make_node("Add", ["sl", "v"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "ax": np.array([0], np.int64), "m1": np.array([-1], np.int64),
             "k": np.array([2], np.int64), "rep": np.array([1, 2], np.int64), "st": np.array([1], np.int64),
             "en": np.array([3], np.int64), "ax1": np.array([1], np.int64)}
    data = graph(nodes, inits, x_shape=("N", 2, 2))
    x = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    assert rt.Session(data).run({"x": x})[0].shape == (2, 2)
    rng = np.random.default_rng(5)
    loaded = 0
    for s in flipped_sessions(rt, data, rng, 1500):
        loaded += 1
        run_ones(s, ((2, 2, 2), (3, 1, 4), (1, 7)))
    assert loaded < 1500
