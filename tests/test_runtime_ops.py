"""hepnn.runtime on the non-layer operators, each alone on odd shapes against NumPy (float64 where
float) and ONNX Runtime: elementwise math, comparisons and logic, Where, Clip, Cast, shape ops,
Gather, reductions, ArgMax, TopK; int64/bool inputs and outputs; constant folding at load and at
plan time (torch's shape subgraphs); shape-defining inputs that depend on data are refused."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
         np.dtype(np.bool_): TensorProto.BOOL}


def model(nodes, feeds, outputs, inits=None, opset=17):
    """feeds: {name: array} graph inputs (shapes fixed); outputs: [(name, dtype)]."""
    ins = [helper.make_tensor_value_info(k, TYPES[v.dtype], list(v.shape)) for k, v in feeds.items()]
    outs = [helper.make_tensor_value_info(k, TYPES[np.dtype(d)], None) for k, d in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    m = helper.make_model(helper.make_graph(nodes, "g", ins, outs, inits),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def check(data, feeds, refs, rtol=1e-5, atol=1e-6):
    got = rt.Session(data).run(feeds)
    others = [got]
    if ort is not None:
        others.append(ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds))
    for out in others:
        assert len(out) == len(refs)
        for g, r in zip(out, refs):
            r = np.asarray(r)
            assert g.shape == r.shape
            if r.dtype.kind == "f":
                assert g.dtype == np.float32
                np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)
            else:
                assert g.dtype == r.dtype
                np.testing.assert_array_equal(g, r)
    return got


def one(op, feeds, ref, out_dtype=None, inits=None, opset=17, **attrs):
    names = list(feeds) + list(inits or {})
    node = helper.make_node(op, names, ["y"], **attrs)
    dt = out_dtype or np.asarray(ref).dtype
    if np.dtype(dt).kind == "f":
        dt = np.float32
    return check(model([node], feeds, [("y", dt)], inits, opset), feeds, [ref])


rng = np.random.default_rng(0)
F = lambda *s: np.asarray(rng.standard_normal(s), np.float32)  # noqa: E731
I = lambda *s: np.asarray(rng.integers(-50, 50, s), np.int64)  # noqa: E731


@pytest.mark.parametrize("op,ref,pos", [("Exp", np.exp, False), ("Log", np.log, True), ("Sqrt", np.sqrt, True),
                                        ("Neg", np.negative, False), ("Abs", np.abs, False)])
@pytest.mark.parametrize("shape", [(1,), (7, 33), (2, 3, 5)])
def test_unary_math(op, ref, pos, shape):
    x = F(*shape)
    if pos:
        x = np.abs(x) + np.float32(0.1)
    one(op, {"x": x}, ref(x.astype(np.float64)))


@pytest.mark.parametrize("op", ["Neg", "Abs"])
def test_unary_int64(op):
    x = I(5, 7)
    one(op, {"x": x}, np.negative(x) if op == "Neg" else np.abs(x))


@pytest.mark.parametrize("sa,sb", [((7, 33), (33,)), ((2, 1, 5), (3, 1)), ((), (4,))])
def test_pow_broadcast(sa, sb):
    a = np.asarray(np.abs(F(*sa)) + np.float32(0.5))
    b = F(*sb)
    one("Pow", {"a": a, "b": b}, a.astype(np.float64) ** b)
    e = rng.integers(0, 4, sb).astype(np.int64)
    one("Pow", {"a": a, "e": e}, a.astype(np.float64) ** e)


@pytest.mark.parametrize("op,ref", [("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply)])
def test_int64_arithmetic(op, ref):
    a, b = I(3, 1, 5), I(4, 1)
    one(op, {"a": a, "b": b}, ref(a, b))


def test_int64_div_truncates_and_refuses_zero():
    a = np.array([7, -7, 7, -7, 0], np.int64)
    b = np.array([2, 2, -2, -2, 3], np.int64)
    one("Div", {"a": a, "b": b}, np.array([3, -3, -3, 3, 0], np.int64))  # C (and ORT) truncation
    s = rt.Session(model([helper.make_node("Div", ["a", "b"], ["y"])], {"a": a, "b": b}, [("y", np.int64)]))
    with pytest.raises(ValueError, match="Div: int64 division by zero"):
        s.run({"a": a, "b": np.zeros(5, np.int64)})


@pytest.mark.parametrize("op,ref", [("Equal", np.equal), ("Less", np.less), ("Greater", np.greater)])
@pytest.mark.parametrize("gen", [F, I])
def test_compare(op, ref, gen):
    a, b = gen(4, 1, 6), gen(3, 1)
    b[0, 0] = a[0, 0, 0]  # at least one equal pair
    one(op, {"a": a, "b": b}, ref(a, b))


def test_logic():
    a, b = rng.random((3, 5)) > 0.5, rng.random((5,)) > 0.5
    one("And", {"a": a, "b": b}, a & b)
    one("Not", {"a": a}, ~a)
    one("Equal", {"a": a, "b": b}, a == b, opset=19)


@pytest.mark.parametrize("sc,sx,sy", [((3, 4), (3, 4), (3, 4)), ((3, 1), (3, 4), ()), ((5,), (2, 1, 5), (1, 5))])
def test_where(sc, sx, sy):
    c = rng.random(sc) > 0.4
    a, b = F(*sx), F(*sy)
    one("Where", {"c": c, "a": a, "b": b}, np.where(c, a, b))
    ai, bi = I(*sx), I(*sy)
    one("Where", {"c": c, "a": ai, "b": bi}, np.where(c, ai, bi))


def test_clip():
    x = 3 * F(7, 9)
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
    inits = {"lo": np.array(-1, np.float32), "hi": np.array(0.5, np.float32)}
    check(model([node], {"x": x}, [("y", np.float32)], inits), {"x": x}, [np.clip(x, -1, 0.5)])
    only_max = helper.make_node("Clip", ["x", "", "hi"], ["y"])
    check(model([only_max], {"x": x}, [("y", np.float32)], inits), {"x": x}, [np.minimum(x, 0.5)])
    xi = I(4, 6)
    node_i = helper.make_node("Clip", ["x", "lo"], ["y"])
    check(model([node_i], {"x": xi}, [("y", np.int64)], {"lo": np.array(-3, np.int64)}), {"x": xi},
          [np.maximum(xi, -3)])


@pytest.mark.parametrize("src", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("dst", [np.float32, np.int64, np.bool_])
def test_cast(src, dst):
    x = {np.float32: np.array([[0.0, -2.7, 3.9, 1e-3, -0.0, 12345.5]], np.float32),
         np.int64: np.array([[0, -3, 7, 2**40, -1, 1]], np.int64),
         np.bool_: np.array([[True, False, True, True, False, False]])}[src]
    one("Cast", {"x": x}, x.astype(dst), out_dtype=dst, to=TYPES[np.dtype(dst)])


@pytest.mark.parametrize("perm", [None, [0, 2, 1], [2, 0, 1], [1, 0, 2]])
def test_transpose(perm):
    x = F(2, 3, 5)
    attrs = {} if perm is None else {"perm": perm}
    one("Transpose", {"x": x}, np.transpose(x, perm), **attrs)
    xi = I(2, 3, 5)
    one("Transpose", {"x": xi}, np.transpose(xi, perm), **attrs)


def test_squeeze_unsqueeze():
    x = F(1, 3, 1, 5)
    one("Squeeze", {"x": x}, x.reshape(3, 5))
    one("Squeeze", {"x": x}, x.reshape(1, 3, 5), inits={"axes": np.array([-2], np.int64)})
    one("Unsqueeze", {"x": x[0, :, 0]}, x[0, :, 0][None, :, :, None], inits={"axes": np.array([0, -1], np.int64)})


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    xs = {}
    for k, s in enumerate(shapes):
        s = list(s)
        s[axis] = k + 1
        xs[f"x{k}"] = F(*s)
    one("Concat", xs, np.concatenate(list(xs.values()), axis=axis), axis=axis)


@pytest.mark.parametrize("starts,ends,axes,steps", [([1], [4], [1], [1]), ([0, -1], [2, -10**18], [0, 2], [1, -2]),
                                                    ([10**18], [-1], [1], [-1]), ([0], [10], [2], [3])])
def test_slice(starts, ends, axes, steps):
    x = F(3, 6, 7)
    sl = [slice(None)] * 3
    for s, e, a, st in zip(starts, ends, axes, steps):
        sl[a] = slice(s, e if abs(e) < 10**9 else (None if e < 0 and st < 0 else e), st)
    inits = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64), "a": np.array(axes, np.int64),
             "t": np.array(steps, np.int64)}
    one("Slice", {"x": x}, x[tuple(sl)], inits=inits)


@pytest.mark.parametrize("axis,ishape", [(0, (4,)), (1, (2, 3)), (-1, ()), (2, (5,))])
def test_gather(axis, ishape):
    x = F(4, 5, 6)
    dim = x.shape[axis]
    idx = rng.integers(-dim, dim, ishape).astype(np.int64)
    one("Gather", {"x": x, "i": idx}, np.take(x, idx, axis=axis), axis=axis)


def test_gather_elements():
    x = F(4, 5)
    idx = rng.integers(-4, 4, (3, 5)).astype(np.int64)
    one("GatherElements", {"x": x, "i": idx}, np.take_along_axis(x, idx % 4, axis=0), axis=0)


def test_expand_tile():
    x = F(3, 1)
    one("Expand", {"x": x}, np.broadcast_to(x, (2, 3, 4)), inits={"s": np.array([2, 1, 4], np.int64)})
    y = F(2, 3)
    one("Tile", {"x": y}, np.tile(y, (3, 2)), inits={"r": np.array([3, 2], np.int64)})


def test_shape_constant_of_shape_range():
    x = F(2, 3, 5)
    one("Shape", {"x": x}, np.array([2, 3, 5], np.int64))
    one("Shape", {"x": x}, np.array([3], np.int64), opset=15, start=1, end=-1)
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(np.array([7], np.int64)))
    data = model([node, helper.make_node("Identity", ["x"], ["z"])], {"x": x}, [("y", np.int64), ("z", np.float32)],
                 {"s": np.array([2, 4], np.int64)})
    check(data, {"x": x}, [np.full((2, 4), 7, np.int64), x])
    r = helper.make_node("Range", ["a", "b", "d"], ["y"])
    data = model([r, helper.make_node("Identity", ["x"], ["z"])], {"x": x}, [("y", np.float32), ("z", np.float32)],
                 {"a": np.array(1.5, np.float32), "b": np.array(-2, np.float32), "d": np.array(-0.5, np.float32)})
    check(data, {"x": x}, [np.arange(1.5, -2, -0.5), x])


@pytest.mark.parametrize("op,ref", [("ReduceSum", np.sum), ("ReduceMean", np.mean), ("ReduceMax", np.max),
                                    ("ReduceMin", np.min)])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([0, 2], 0), ([-1], 0), (None, 1), ([1, 2], 1)])
def test_reduce(op, ref, axes, keepdims):
    x = F(3, 5, 7)
    want = ref(x.astype(np.float64), axis=None if axes is None else tuple(axes), keepdims=bool(keepdims))
    inits = {} if axes is None else {"axes": np.array(axes, np.int64)}
    one(op, {"x": x}, want, inits=inits, opset=18, keepdims=keepdims)
    if op != "ReduceMean":
        xi = I(3, 5, 7)
        one(op, {"x": xi}, ref(xi, axis=None if axes is None else tuple(axes), keepdims=bool(keepdims)),
            inits=inits, opset=18, keepdims=keepdims)


def test_reduce_axes_attribute_before_opset18():
    x = F(4, 6)
    one("ReduceMean", {"x": x}, x.astype(np.float64).mean(axis=1), opset=13, axes=[1], keepdims=0)


@pytest.mark.parametrize("axis,keepdims,last", [(0, 1, 0), (1, 0, 0), (-1, 1, 1)])
def test_argmax(axis, keepdims, last):
    x = rng.integers(0, 3, (4, 5, 6)).astype(np.float32)  # many ties
    if last:
        ref = x.shape[axis] - 1 - np.argmax(np.flip(x, axis), axis=axis)
    else:
        ref = np.argmax(x, axis=axis)
    if keepdims:
        ref = np.expand_dims(ref, axis)
    one("ArgMax", {"x": x}, ref.astype(np.int64), axis=axis, keepdims=keepdims, select_last_index=last)


@pytest.mark.parametrize("largest", [1, 0])
@pytest.mark.parametrize("axis,k", [(-1, 3), (0, 2), (1, 5)])
def test_topk(largest, axis, k):
    x = rng.integers(0, 6, (4, 5, 7)).astype(np.float32)  # ties: the lower index comes first
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)
    order = np.argsort(-x if largest else x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    data = model([node], {"x": x}, [("v", np.float32), ("i", np.int64)], {"k": np.array([k], np.int64)})
    check(data, {"x": x}, [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)])


def test_torch_style_shape_subgraph_folds():
    # x.view(x.shape[0], -1) as torch exports it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "ax0"], ["bu"]),
             helper.make_node("Concat", ["bu", "minus1"], ["spec"], axis=0),
             helper.make_node("Reshape", ["x", "spec"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "ax0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    m = helper.make_model(helper.make_graph(nodes, "g", ins, outs, [numpy_helper.from_array(v, k) for k, v in inits.items()]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    s = rt.Session(m.SerializeToString())
    for b in (1, 4, 2):
        x = F(b, 3, 5)
        np.testing.assert_array_equal(s.run({"x": x})[0], x.reshape(b, -1))
        assert s._s.live_steps == 1  # only the Reshape's copy runs


def test_constant_chain_folds_at_load():
    # Range -> Cast -> Mul by 2 -> Add to x: only the Add is left as a step.
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["r"]), helper.make_node("Cast", ["r"], ["rf"], to=1),
             helper.make_node("Mul", ["rf", "two"], ["r2"]), helper.make_node("Add", ["x", "r2"], ["y"])]
    inits = {"a": np.array(0, np.int64), "b": np.array(5, np.int64), "d": np.array(1, np.int64),
             "two": np.array(2, np.float32)}
    x = F(3, 5)
    data = model(nodes, {"x": x}, [("y", np.float32)], inits)
    assert rt.Model(data).steps == ["Add"]
    check(data, {"x": x}, [x + 2 * np.arange(5)])


def test_data_dependent_shapes_are_refused():
    x = F(2, 6)
    s = np.array([3, 4], np.int64)
    data = model([helper.make_node("Reshape", ["x", "s"], ["y"])], {"x": x, "s": s}, [("y", np.float32)])
    with pytest.raises((RuntimeError, ValueError), match="Reshape: the shape must be computable before running"):
        rt.Session(data)


def test_inconsistent_shapes_refused_at_load_with_op_name():
    nodes = [helper.make_node("Concat", ["a", "b"], ["y"], axis=0)]
    data = model(nodes, {"a": F(2, 3), "b": F(2, 4)}, [("y", np.float32)])
    with pytest.raises(RuntimeError, match="Concat: cannot concatenate"):
        rt.Model(data)
    data = model([helper.make_node("Add", ["a", "b"], ["y"])], {"a": F(2, 3), "b": F(4,)}, [("y", np.float32)])
    with pytest.raises(RuntimeError, match="Add: shapes .* do not broadcast"):
        rt.Model(data)


def test_wrong_input_dtype_is_a_type_error():
    data = model([helper.make_node("Gather", ["x", "i"], ["y"], axis=0)], {"x": F(4, 3), "i": I(2)}, [("y", np.float32)])
    s = rt.Session(data)
    assert s.model.input_dtypes == [np.float32, np.int64]
    with pytest.raises(TypeError, match="expected int64"):
        s._s.run([F(4, 3), np.zeros(2, np.float32)])
