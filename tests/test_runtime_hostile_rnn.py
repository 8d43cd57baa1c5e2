"""Hostile GRU/LSTM/Mod nodes: unsupported attributes (other activations, clip, input_forget,
peepholes) refused at load naming the node; bad arities, element types and shapes; a few bytes of
file asking for a huge scratch; out-of-range sequence_lens at run time; Mod by zero; random byte
flips of a recurrent model. Each must be an exception naming the op (a crash fails the suite)."""
import time

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

from tests.runtime_flips import ERRORS, flipped_sessions, run_ones
T, B, I, H = 3, 2, 4, 5


def weights(op, D=1, h=H, i=I):
    G = 4 if op == "LSTM" else 3
    rng = np.random.default_rng(0)
    return {"W": rng.standard_normal((D, G * h, i)).astype(np.float32),
            "R": rng.standard_normal((D, G * h, h)).astype(np.float32),
            "Bias": rng.standard_normal((D, 2 * G * h)).astype(np.float32)}


def model(op, inputs=("x", "W", "R"), outputs=("Y", "Y_h"), inits=None, x_type=TensorProto.FLOAT, x_shape=(T, B, I),
          extra_inputs=(), name="rnn0", **attrs):
    inits = weights(op) if inits is None else inits
    nodes = [helper.make_node(op, list(inputs), list(outputs), name=name, **attrs)]
    ins = [helper.make_tensor_value_info("x", x_type, list(x_shape)), *extra_inputs]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o]
    if not outs:  # a node with no outputs: the graph still needs one
        nodes.append(helper.make_node("Identity", ["x"], ["z"]))
        outs = [helper.make_tensor_value_info("z", x_type, None)]
    g = helper.make_graph(nodes, "h", ins, outs, [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def refused(data, match, x_shape=(T, B, I)):
    t0 = time.perf_counter()
    with pytest.raises(ERRORS, match=match):
        rt.Session(data).run({"x": np.ones(x_shape, np.float32)})
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_unsupported_attributes_are_refused_at_load_with_the_node_name(op):
    acts = ["Relu", "Tanh"] + (["Tanh"] if op == "LSTM" else [])
    bad = [
        (dict(activations=acts), r"activations \[Relu, Tanh"),
        (dict(activations=["Sigmoid"]), r"activations \[Sigmoid\] are not supported"),
        (dict(clip=3.0), "clip is not supported"),
        (dict(activation_alpha=[0.5]), "activation_alpha"),
        (dict(direction="sideways"), "direction 'sideways'"),
        (dict(layout=2), "layout 2 is not 0 or 1"),
        (dict(hidden_size=0), "hidden_size 0 is not positive"),
        (dict(hidden_size=-3), "hidden_size -3 is not positive"),
    ]
    if op == "LSTM":
        bad.append((dict(input_forget=1), "input_forget is not supported"))
    for attrs, match in bad:
        with pytest.raises(ERRORS, match=f"{op} node 'rnn0': {match}"):
            rt.Model(model(op, **attrs))
    with pytest.raises(ERRORS, match=f"{op}: unsupported attribute 'speed'"):
        rt.Model(model(op, speed=2))
    # The defaults spelled out (one list per direction) are accepted.
    acts = ["Sigmoid", "Tanh"] + (["Tanh"] if op == "LSTM" else [])
    s = rt.Session(model(op, activations=acts * 2, direction="bidirectional", inits=weights(op, D=2)))
    assert s.run({"x": np.ones((T, B, I), np.float32)})[1].shape == (2, B, H)


def test_peepholes_are_refused():
    inits = {**weights("LSTM"), "P": np.zeros((1, 3 * H), np.float32)}
    with pytest.raises(ERRORS, match="LSTM node 'rnn0': peephole weights"):
        rt.Model(model("LSTM", inputs=("x", "W", "R", "", "", "", "", "P"), inits=inits))


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_bad_arities_and_element_types(op):
    n_in = 8 if op == "LSTM" else 6
    with pytest.raises(ERRORS, match=f"{op} node 'rnn0' has 2 inputs, expected 3 to {n_in}"):
        rt.Model(model(op, inputs=("x", "W")))
    with pytest.raises(ERRORS, match=f"has {n_in + 1} inputs"):
        rt.Model(model(op, inputs=("x", "W", "R") + ("",) * (n_in - 2)))
    with pytest.raises(ERRORS, match="required input W is empty"):
        rt.Model(model(op, inputs=("x", "", "R")))
    n_out = 3 if op == "LSTM" else 2
    with pytest.raises(ERRORS, match=f"has {n_out + 1} outputs, expected 1 to {n_out}"):
        rt.Model(model(op, outputs=tuple(f"o{k}" for k in range(n_out + 1))))
    with pytest.raises(ERRORS, match=f"{op} node 'rnn0' has no outputs"):
        rt.Model(model(op, outputs=("", "")))
    with pytest.raises(ERRORS, match="X 'x' is int64, expected float32"):
        rt.Model(model(op, x_type=TensorProto.INT64))
    inits = {**weights(op), "lens": np.full(B, 2, np.float32)}
    with pytest.raises(ERRORS, match="sequence_lens 'lens' is float32, expected int32 or int64"):
        rt.Model(model(op, inputs=("x", "W", "R", "", "lens"), inits=inits))


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_inconsistent_shapes_are_refused(op):
    G = 4 if op == "LSTM" else 3
    w = weights(op)
    bad = [
        ({**w, "W": w["W"][:, :-1]}, ("x", "W", "R"), f"W has shape \\(1, {G * H - 1}, {I}\\), expected \\(1, {G * H}, {I}\\)"),
        ({**w, "R": w["R"][:, :-1]}, ("x", "W", "R"), f"R has shape \\(1, {G * H - 1}, {H}\\), expected"),
        ({**w, "R": w["R"][0]}, ("x", "W", "R"), "R has shape .* expected 3-D"),
        ({**w, "Bias": w["Bias"][:, 1:]}, ("x", "W", "R", "Bias"), "B has shape"),
        ({**w, "lens": np.full(B + 1, 2, np.int32)}, ("x", "W", "R", "", "lens"), "sequence_lens has shape"),
        ({**w, "h0": np.zeros((1, B + 1, H), np.float32)}, ("x", "W", "R", "", "", "h0"), "initial_h has shape"),
    ]
    if op == "LSTM":
        bad.append(({**w, "c0": np.zeros((B, 1, H), np.float32)}, ("x", "W", "R", "", "", "", "c0"),
                    "initial_c has shape"))
    for inits, inputs, match in bad:
        refused(model(op, inputs=inputs, inits=inits), f"{op}: {match}")
    refused(model(op, hidden_size=H + 1), f"{op}: hidden_size {H + 1} does not match R")
    refused(model(op, hidden_size=2**62), f"{op}: hidden_size {2**62} does not match R")
    refused(model(op, direction="bidirectional"), f"{op}: W has shape \\(1,")
    refused(model(op, x_shape=(T, B)), f"{op}: X has shape \\({T}, {B}\\), expected 3-D", x_shape=(T, B))
    # A layout-1 model fed a time-major batch: the features still match, the states do not.
    h0 = {**w, "h0": np.zeros((1, B, H), np.float32)}
    refused(model(op, inputs=("x", "W", "R", "", "", "h0"), inits=h0, layout=1), f"{op}: initial_h has shape")


def test_empty_input_cannot_ask_for_a_huge_scratch():
    # I = 0 makes X empty whatever T and B say, but the gate buffer would be T*B*3H floats.
    inits = weights("GRU", i=0)
    data = model("GRU", inits=inits, x_shape=("T", "B", 0))
    s = rt.Session(data)
    with pytest.raises(ValueError, match="GRU gate buffer has more than 2\\^31 elements"):
        s.run({"x": np.ones((2**16, 2**12, 0), np.float32)})
    assert s.run({"x": np.ones((2, 3, 0), np.float32)})[0].shape == (2, 1, 3, H)


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_out_of_range_sequence_lens_at_run_time(op):
    lens = helper.make_tensor_value_info("lens", TensorProto.INT64, [B])
    s = rt.Session(model(op, inputs=("x", "W", "R", "", "lens"), extra_inputs=[lens]))
    x = np.ones((T, B, I), np.float32)
    for bad in ([T + 1, 1], [1, -1], [2**62, 0], [-2**63, 0]):
        with pytest.raises(ValueError, match=f"{op}: sequence_lens\\[[01]\\] = .* is outside \\[0, {T}\\]"):
            s.run({"x": x, "lens": np.array(bad)})
    y, yh = s.run({"x": x, "lens": np.array([T, 0])})  # still usable; a 0 length keeps the initial state
    assert np.all(y[:, 0, 1] == 0) and np.all(yh[0, 1] == 0) and np.any(yh[0, 0] != 0)


def test_mod_by_zero_and_int64_min():
    def mod_model(fmod, t=TensorProto.INT64):
        vi = [helper.make_tensor_value_info(n, t, [3]) for n in ("a", "b")]
        g = helper.make_graph([helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)], "m", vi,
                              [helper.make_tensor_value_info("y", t, None)])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    lo = np.iinfo(np.int64).min
    for fmod in (0, 1):
        s = rt.Session(mod_model(fmod))
        with pytest.raises(ValueError, match="Mod: int64 division by zero"):
            s.run({"a": np.array([1, 2, 3]), "b": np.array([1, 0, 1])})
        a, b = np.array([lo, -7, 7]), np.array([-1, 3, -3])
        want = np.fmod(a, b) if fmod else np.mod(a, b)
        np.testing.assert_array_equal(s.run({"a": a, "b": b})[0], want)
    s = rt.Session(mod_model(0, TensorProto.FLOAT))
    a = np.array([-1.0, 5.5, 0.0], np.float32)
    b = np.array([np.inf, 0.0, -2.0], np.float32)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(s.run({"a": a, "b": b})[0], np.mod(a, b))
    with pytest.raises(ERRORS, match="Mod node 'm': inputs"):
        vi = [helper.make_tensor_value_info("a", TensorProto.INT64, [3]), helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])]
        g = helper.make_graph([helper.make_node("Mod", ["a", "b"], ["y"], name="m")], "m", vi,
                              [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
        rt.Model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_random_byte_flips_of_a_recurrent_model_never_crash(op):
    G = 4 if op == "LSTM" else 3
    inits = {**weights(op, D=2), "lens": np.array([3, 1], np.int32), "h0": np.zeros((2, B, H), np.float32)}
    inputs = ("x", "W", "R", "Bias", "lens", "h0")
    outputs = ("Y", "Y_h") + (("Y_c",) if op == "LSTM" else ())
    data = model(op, inputs=inputs, outputs=outputs, inits=inits, direction="bidirectional", x_shape=("T", B, I),
                 hidden_size=H, **({} if op == "LSTM" else {"linear_before_reset": 1}))
    assert rt.Session(data).run({"x": np.ones((T, B, I), np.float32)})[0].shape == (T, 2, B, H)
    rng = np.random.default_rng(G)
    loaded = 0
    for s in flipped_sessions(rt, data, rng, 800):
        loaded += 1
        run_ones(s, ((T, B, I), (1, B, I), (0, B, I), (T, 3, I)))
    assert loaded < 800
