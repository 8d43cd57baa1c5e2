"""hepnn.runtime.Session against NumPy float64 and ONNX Runtime: MLPs (Gemm and MatMul+Add forms,
fused), every supported op alone on odd shapes with broadcasting, a PyTorch export, threads."""
import threading

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

RTOL, ATOL = 1e-5, 1e-6


def make_model(nodes, inputs, outputs, inits=(), opset=17):
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    g = helper.make_graph(nodes, "g", [vi(n, s) for n, s in inputs], [vi(n, s) for n, s in outputs],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def check(model, feeds, ref, rtol=RTOL, atol=ATOL):
    out = rt.Session(model).run(feeds)
    assert len(out) == len(ref)
    for o, r in zip(out, ref):
        assert o.dtype == np.float32 and o.shape == np.shape(r)
        np.testing.assert_allclose(o, r, rtol=rtol, atol=atol)
    if ort is not None:
        o2 = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
        for o, r in zip(out, o2):
            np.testing.assert_allclose(o, r, rtol=rtol, atol=atol)
    return out


def weights(rng, sizes):
    return [(rng.standard_normal((o, i)).astype(np.float32) / np.float32(np.sqrt(i)),
             rng.standard_normal(o).astype(np.float32)) for i, o in zip(sizes[:-1], sizes[1:])]


def mlp_ref(x, ws, act=lambda h: np.maximum(h, 0)):
    h = x.astype(np.float64)
    for k, (w, b) in enumerate(ws):
        h = h @ w.T.astype(np.float64) + b
        if k < len(ws) - 1:
            h = act(h)
    return h


def gemm_mlp(ws, act="Relu", batch="N"):
    nodes, inits, prev = [], {}, "x"
    for k, (w, b) in enumerate(ws):
        inits[f"W{k}"], inits[f"B{k}"] = w, b
        nodes.append(helper.make_node("Gemm", [prev, f"W{k}", f"B{k}"], [f"h{k}"], transB=1))
        prev = f"h{k}"
        if k < len(ws) - 1:
            nodes.append(helper.make_node(act, [prev], [f"a{k}"]))
            prev = f"a{k}"
    return make_model(nodes, [("x", [batch, ws[0][0].shape[1]])], [(prev, [batch, ws[-1][0].shape[0]])], inits)


@pytest.mark.parametrize("batch", [1, 7, 257])
def test_mlp_gemm_relu(batch):
    rng = np.random.default_rng(batch)
    ws = weights(rng, [30, 128, 128, 128, 1])
    model = gemm_mlp(ws)
    assert rt.Model(model).steps == ["Gemm+Relu"] * 3 + ["Gemm"]
    x = rng.standard_normal((batch, 30)).astype(np.float32)
    check(model, {"x": x}, [mlp_ref(x, ws)])


@pytest.mark.parametrize("act,ref", [("Sigmoid", lambda h: 1 / (1 + np.exp(-h))), ("Tanh", np.tanh),
                                     ("Elu", lambda h: np.where(h > 0, h, np.expm1(h)))])
def test_mlp_matmul_add_act(act, ref):
    rng = np.random.default_rng(3)
    ws = weights(rng, [13, 33, 7])
    nodes, inits, prev = [], {}, "x"
    for k, (w, b) in enumerate(ws):
        inits[f"W{k}"], inits[f"B{k}"] = np.ascontiguousarray(w.T), b
        nodes += [helper.make_node("MatMul", [prev, f"W{k}"], [f"m{k}"]),
                  helper.make_node("Add", [f"B{k}", f"m{k}"], [f"h{k}"])]  # bias first: either order fuses
        prev = f"h{k}"
        if k < len(ws) - 1:
            nodes.append(helper.make_node(act, [prev], [f"a{k}"]))
            prev = f"a{k}"
    model = make_model(nodes, [("x", ["N", 13])], [(prev, ["N", 7])], inits)
    assert rt.Model(model).steps == [f"MatMul+Add+{act}", "MatMul+Add"]
    x = rng.standard_normal((9, 13)).astype(np.float32)
    check(model, {"x": x}, [mlp_ref(x, ws, ref)])


def test_matmul_add_on_3d_input():
    # (batch, particles, features) @ W + b: the fused linear kernel sees batch*particles rows.
    rng = np.random.default_rng(16)
    w = rng.standard_normal((13, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["h"]),
             helper.make_node("LeakyRelu", ["h"], ["y"], alpha=0.2)]
    model = make_model(nodes, [("x", ["N", 5, 13])], [("y", ["N", 5, 6])], {"W": w, "B": b})
    assert rt.Model(model).steps == ["MatMul+Add+LeakyRelu"]
    x = rng.standard_normal((3, 5, 13)).astype(np.float32)
    h = x.astype(np.float64) @ w + b
    check(model, {"x": x}, [np.where(h > 0, h, 0.2 * h)])


def test_dropout_with_ratio_and_training_mode_false():
    x = np.random.default_rng(17).standard_normal((4, 9)).astype(np.float32)
    nodes = [helper.make_node("Dropout", ["x", "r", "t"], ["y"])]
    inits = {"r": np.array(0.5, np.float32), "t": np.array(False)}
    check(make_model(nodes, [("x", [4, 9])], [("y", [4, 9])], inits), {"x": x}, [x])


def test_fusion_respects_other_consumers():
    # h0 is both a graph output and the Relu's input: the Gemm must not swallow the Relu.
    rng = np.random.default_rng(4)
    (w, b), = weights(rng, [5, 6])
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, [("x", [3, 5])], [("h", [3, 6]), ("y", [3, 6])], {"W": w, "B": b})
    x = rng.standard_normal((3, 5)).astype(np.float32)
    h = x.astype(np.float64) @ w.T + b
    check(model, {"x": x}, [h, np.maximum(h, 0)])


@pytest.mark.parametrize("ta,tb,alpha,beta,cshape", [
    (0, 0, 1.0, 1.0, (7,)), (1, 0, 0.5, 2.0, (5, 7)), (0, 1, 1.5, 0.25, (5, 1)), (1, 1, -1.0, 1.0, ()),
    (0, 0, 2.0, 0.0, (7,)), (0, 0, 1.0, 1.0, None)])
@pytest.mark.parametrize("const_b", [True, False])
def test_gemm(ta, tb, alpha, beta, cshape, const_b):
    rng = np.random.default_rng(5)
    M, K, N = 5, 33, 7
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    ins = ["A", "B"] + ([] if cshape is None else ["C"])
    node = helper.make_node("Gemm", ins, ["Y"], alpha=alpha, beta=beta, transA=ta, transB=tb)
    inits, inputs, feeds = {}, [("A", list(A.shape))], {"A": A}
    if const_b:
        inits["B"] = B
    else:
        inputs.append(("B", list(B.shape)))
        feeds["B"] = B
    ref = alpha * ((A.T if ta else A).astype(np.float64) @ (B.T if tb else B))
    if cshape is not None:
        C = rng.standard_normal(cshape).astype(np.float32)
        inits["C"] = C
        ref = ref + beta * C
    check(make_model([node], inputs, [("Y", [M, N])], inits), feeds, [ref])


@pytest.mark.parametrize("sa,sb", [((1, 33), (33, 7)), ((3, 5, 33), (33, 7)), ((3, 5, 33), (3, 33, 7)),
                                   ((5, 33), (3, 33, 7)), ((2, 3, 4, 6), (2, 3, 6, 5))])
def test_matmul(sa, sb):
    _matmul(sa, sb)


def _matmul(sa, sb):
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", list(sa)), ("b", list(sb))],
                       [("y", None)])
    check(model, {"a": a, "b": b}, [a.astype(np.float64) @ b])


@pytest.mark.parametrize("sa,sb", [((33,), (33, 7)), ((2, 5, 33), (33,)), ((33,), (33,)), ((3, 1, 5, 4), (1, 2, 4, 6)),
                                   ((4, 1, 1, 5, 3), (2, 3, 2))])
def test_matmul_1d_and_broadcast(sa, sb):
    _matmul(sa, sb)
    rng = np.random.default_rng(21)
    if len(sb) == 2:  # constant weight: the fused linear path
        a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
        model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", list(sa))], [("y", None)], {"b": b})
        assert rt.Model(model).steps == ["MatMul"]
        check(model, {"a": a}, [a.astype(np.float64) @ b])



BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("sa,sb", [((7, 33), (7, 33)), ((7, 33), (33,)), ((7, 1), (1, 33)), ((), (5, 3)),
                                   ((2, 1, 4, 1), (3, 1, 5)), ((1,), (257,)), ((3, 0, 2), (2,))])
def test_binary_broadcast(op, sa, sb):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])], [("a", list(sa)), ("b", list(sb))], [("y", None)])
    check(model, {"a": a, "b": b}, [BINARY[op](a.astype(np.float64), b)])


def _gelu(x):
    from math import erf
    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


UNARY = [
    ("Relu", {}, lambda x: np.maximum(x, 0)),
    ("LeakyRelu", {"alpha": 0.13}, lambda x: np.where(x > 0, x, 0.13 * x)),
    ("LeakyRelu", {}, lambda x: np.where(x > 0, x, 0.01 * x)),
    ("Elu", {"alpha": 0.7}, lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    ("Selu", {}, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
    ("Selu", {"alpha": 2.0, "gamma": 0.5}, lambda x: 0.5 * np.where(x > 0, x, 2.0 * np.expm1(x))),
    ("Sigmoid", {}, lambda x: 1 / (1 + np.exp(-x))),
    ("Tanh", {}, np.tanh),
    ("Softplus", {}, lambda x: np.log1p(np.exp(x))),
    ("Erf", {}, lambda x: np.vectorize(__import__("math").erf)(x)),
    ("Identity", {}, lambda x: x),
    ("Dropout", {}, lambda x: x),
]


@pytest.mark.parametrize("op,attrs,ref", UNARY, ids=[u[0] + str(i) for i, u in enumerate(UNARY)])
@pytest.mark.parametrize("shape", [(1,), (7, 33), (2, 3, 5)])
def test_unary(op, attrs, ref, shape):
    rng = np.random.default_rng(8)
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", list(shape))], [("y", list(shape))])
    check(model, {"x": x}, [ref(x.astype(np.float64))])


@pytest.mark.parametrize("approx", ["none", "tanh"])
def test_gelu_opset20(approx):
    rng = np.random.default_rng(9)
    x = (2 * rng.standard_normal((7, 33))).astype(np.float32)
    xd = x.astype(np.float64)
    ref = _gelu(xd) if approx == "none" else 0.5 * xd * (1 + np.tanh(np.sqrt(2 / np.pi) * (xd + 0.044715 * xd**3)))
    model = make_model([helper.make_node("Gelu", ["x"], ["y"], approximate=approx)], [("x", [7, 33])],
                       [("y", [7, 33])], opset=20)
    check(model, {"x": x}, [ref])


def test_erf_gelu_pattern():
    # The form torch.onnx exports for nn.GELU at opset 17.
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 17)).astype(np.float32)
    c = {"s2": np.array(np.sqrt(2), np.float32), "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("Div", ["x", "s2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["p"]), helper.make_node("Mul", ["x", "p"], ["q"]),
             helper.make_node("Mul", ["q", "half"], ["y"])]
    model = make_model(nodes, [("x", [3, 17])], [("y", [3, 17])], c)
    assert rt.Model(model).steps == ["Gelu(erf pattern)"]
    check(model, {"x": x}, [_gelu(x.astype(np.float64))])
    # The same pattern with an intermediate exposed as an output is left alone.
    exposed = make_model(nodes, [("x", [3, 17])], [("y", [3, 17]), ("e", [3, 17])], c)
    assert len(rt.Model(exposed).steps) == 5
    from math import erf
    check(exposed, {"x": x}, [_gelu(x.astype(np.float64)), np.vectorize(erf)(x / np.sqrt(2.0))])


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [((7, 33), -1), ((7, 33), 0), ((2, 3, 5), 1), ((1,), 0)])
def test_softmax(op, shape, axis):
    rng = np.random.default_rng(11)
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    xd = x.astype(np.float64)
    e = np.exp(xd - xd.max(axis=axis, keepdims=True))
    ref = e / e.sum(axis=axis, keepdims=True)
    if op == "LogSoftmax":
        ref = np.log(ref)
    model = make_model([helper.make_node(op, ["x"], ["y"], axis=axis)], [("x", list(shape))], [("y", list(shape))])
    check(model, {"x": x}, [ref])


@pytest.mark.parametrize("axis", [0, 1, 2, -1, 3])
def test_flatten(axis):
    x = np.random.default_rng(12).standard_normal((2, 3, 5)).astype(np.float32)
    lead = int(np.prod(x.shape[:axis % 4 if axis >= 0 else axis + 3]))
    model = make_model([helper.make_node("Flatten", ["x"], ["y"], axis=axis)], [("x", [2, 3, 5])], [("y", None)])
    check(model, {"x": x}, [x.reshape(lead, -1)])


@pytest.mark.parametrize("spec,allowzero", [([5, -1], 0), ([0, 15], 0), ([-1], 0), ([2, 3, 5, 1], 0), ([30], 1)])
def test_reshape_constant_shape(spec, allowzero):
    x = np.random.default_rng(13).standard_normal((2, 15)).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(np.array(spec, np.int64))),
             helper.make_node("Reshape", ["x", "s"], ["y"], allowzero=allowzero)]
    want = [x.shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(spec)]
    check(make_model(nodes, [("x", [2, 15])], [("y", None)]), {"x": x}, [x.reshape(want)])


def test_constant_float_and_shape_errors():
    nodes = [helper.make_node("Constant", [], ["c"], value_floats=[1.5, -2.0, 3.0]),
             helper.make_node("Mul", ["x", "c"], ["y"])]
    model = make_model(nodes, [("x", ["N", 3])], [("y", ["N", 3])])
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    check(model, {"x": x}, [x * np.array([1.5, -2.0, 3.0])])
    s = rt.Session(model)
    with pytest.raises(ValueError, match="expects"):
        s.run({"x": np.zeros((4, 5), np.float32)})
    with pytest.raises(ValueError, match="missing input"):
        s.run({})
    with pytest.raises(ValueError, match="unknown input"):
        s.run({"x": x, "z": x})
    np.testing.assert_allclose(s.run({"x": x})[0], x * np.array([1.5, -2.0, 3.0]))  # still usable


def test_memory_plan_reuses_buffers():
    # 12 layers of width 64 at batch 100: liveness-based reuse needs two activation buffers
    # (ping-pong), not twelve.
    rng = np.random.default_rng(18)
    ws = weights(rng, [64] * 13)
    nodes, inits, prev = [], {}, "x"
    for k, (w, b) in enumerate(ws):  # unfused chain: MatMul, Add, Tanh are separate steps
        inits[f"W{k}"], inits[f"B{k}"] = np.ascontiguousarray(w.T), b
        nodes += [helper.make_node("MatMul", [prev, f"W{k}"], [f"m{k}"]),
                  helper.make_node("Add", [f"m{k}", f"m{k}"], [f"d{k}"]),
                  helper.make_node("Add", [f"d{k}", f"B{k}"], [f"h{k}"]),
                  helper.make_node("Tanh", [f"h{k}"], [f"t{k}"])]
        prev = f"t{k}"
    model = make_model(nodes, [("x", ["N", 64])], [(prev, ["N", 64])], inits)
    s = rt.Session(model)
    x = rng.standard_normal((100, 64)).astype(np.float32)
    h = x.astype(np.float64)
    for w, b in ws:
        h = np.tanh(2 * (h @ w.T) + b)
    # 12 float32 layers accumulate rounding: a looser bound than the single-op tests.
    np.testing.assert_allclose(s.run({"x": x})[0], h, rtol=1e-4, atol=2e-5)
    assert len(rt.Model(model).steps) == 48
    assert s._s.arena_floats <= 2 * 100 * 64 + 64


def test_long_chain_plans_in_linear_time():
    # 3000 fused Gemm+Relu layers: fusion and the memory plan must not be quadratic in graph size.
    import time
    rng = np.random.default_rng(20)
    ws = [(np.eye(4, dtype=np.float32) + 0.01 * rng.standard_normal((4, 4)).astype(np.float32),
           0.01 * rng.standard_normal(4).astype(np.float32)) for _ in range(3000)]
    model = gemm_mlp(ws)
    t0 = time.perf_counter()
    s = rt.Session(model)
    x = np.abs(rng.standard_normal((2, 4))).astype(np.float32)
    y = s.run({"x": x})[0]
    assert time.perf_counter() - t0 < 10
    assert len(s.model.steps) == 3000
    assert s._s.arena_floats <= 3 * 16 + 16
    np.testing.assert_allclose(y, mlp_ref(x, ws), rtol=1e-3, atol=1e-4)


def test_graph_input_as_output_and_two_outputs():
    x = np.random.default_rng(19).standard_normal((2, 3)).astype(np.float32)
    model = make_model([helper.make_node("Sigmoid", ["x"], ["y"])], [("x", [2, 3])], [("y", [2, 3]), ("x", [2, 3])])
    check(model, {"x": x}, [1 / (1 + np.exp(-x.astype(np.float64))), x])


def test_shape_change_replans():
    rng = np.random.default_rng(14)
    ws = weights(rng, [30, 64, 3])
    s = rt.Session(gemm_mlp(ws))
    for b in [1, 7, 1, 33, 7]:
        x = rng.standard_normal((b, 30)).astype(np.float32)
        np.testing.assert_allclose(s.run({"x": x})[0], mlp_ref(x, ws), rtol=RTOL, atol=ATOL)


def test_torch_export_mlp(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.GELU(),
                              torch.nn.Linear(128, 128), torch.nn.Tanh(), torch.nn.Linear(128, 1),
                              torch.nn.Sigmoid()).eval()
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(net, (torch.zeros(1, 30),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    s = rt.Session(path)
    assert s.input_names == ["x"] and s.output_names == ["y"]
    assert s.model.steps == ["Gemm+Relu", "Gemm+Gelu(erf pattern)", "Gemm+Tanh", "Gemm+Sigmoid"]
    for b in [1, 64]:
        x = torch.randn(b, 30)
        with torch.no_grad():
            ref = net(x).numpy()
        np.testing.assert_allclose(s.run({"x": x.numpy()})[0], ref, rtol=1e-5, atol=1e-6)


def test_threads_share_one_model():
    rng = np.random.default_rng(15)
    ws = weights(rng, [30, 128, 128, 128, 1])
    model = rt.Model(gemm_mlp(ws))
    xs = [rng.standard_normal((b, 30)).astype(np.float32) for b in [1, 7, 64, 1, 33]]
    single = [rt.Session(model).run({"x": x})[0] for x in xs]
    errors, results = [], {}

    def work(t):
        try:
            s = rt.Session(model)
            out = []
            for _ in range(50):
                out = [s.run({"x": x})[0] for x in xs]
                if not all(np.array_equal(a, b) for a, b in zip(out, single)):
                    break
            results[t] = out
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for t in range(8):
        for a, b in zip(results[t], single):
            assert np.array_equal(a, b)
