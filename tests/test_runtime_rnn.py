"""The runtime's ONNX GRU and LSTM against a NumPy float64 reference of ONNX's equations, on
random odd sizes: every direction and layout, with and without B, sequence_lens and initial
states, GRU's linear_before_reset 0 and 1, absent outputs, stale buffers, and thread counts."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hepnn  # noqa: E402
import hepnn.runtime as rt  # noqa: E402


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference(op, x, W, R, B=None, lens=None, h0=None, c0=None, direction="forward", layout=0, lbr=0):
    """ONNX GRU/LSTM (default activations) in float64; returns Y, Y_h and, for LSTM, Y_c."""
    x, W, R = (np.asarray(a, np.float64) for a in (x, W, R))
    if layout:
        x = x.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    T, nb, _ = x.shape
    D, H = W.shape[0], R.shape[2]
    G = 4 if op == "LSTM" else 3
    Y = np.zeros((T, D, nb, H))
    Yh, Yc = np.zeros((D, nb, H)), np.zeros((D, nb, H))
    for d in range(D):
        w, r = W[d], R[d]
        wb, rb = (B[d, :G * H], B[d, G * H:]) if B is not None else (np.zeros(G * H), np.zeros(G * H))
        h = np.zeros((nb, H)) if h0 is None else h0[d].astype(np.float64)
        c = np.zeros((nb, H)) if c0 is None else c0[d].astype(np.float64)
        rev = direction == "reverse" or d == 1
        for step in range(T):
            t = T - 1 - step if rev else step
            act = np.ones(nb, bool) if lens is None else t < np.asarray(lens)
            gx = x[t] @ w.T + wb
            if op == "GRU":
                z = sigmoid(gx[:, :H] + h @ r[:H].T + rb[:H])
                rr = sigmoid(gx[:, H:2 * H] + h @ r[H:2 * H].T + rb[H:2 * H])
                if lbr:
                    n = np.tanh(gx[:, 2 * H:] + rr * (h @ r[2 * H:].T + rb[2 * H:]))
                else:
                    n = np.tanh(gx[:, 2 * H:] + (rr * h) @ r[2 * H:].T + rb[2 * H:])
                hn = (1 - z) * n + z * h
            else:
                g = gx + h @ r.T + rb
                i, o, f, cc = sigmoid(g[:, :H]), sigmoid(g[:, H:2 * H]), sigmoid(g[:, 2 * H:3 * H]), np.tanh(g[:, 3 * H:])
                cn = f * c + i * cc
                hn = o * np.tanh(cn)
                c = np.where(act[:, None], cn, c)
            h = np.where(act[:, None], hn, h)
            Y[t, d] = np.where(act[:, None], hn, 0.0)
        Yh[d], Yc[d] = h, c
    if layout:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return [Y, Yh] + ([Yc] if op == "LSTM" else [])


def rnn_model(op, shapes, inits, inputs, outputs, **attrs):
    """One GRU/LSTM node; `inputs` names its inputs in ONNX order ('' for absent), graph inputs
    are the float tensors in `shapes` not in `inits`, plus int64 'lens' when listed in shapes."""
    node = helper.make_node(op, inputs, outputs, **attrs)
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64 if n == "lens" else TensorProto.FLOAT, list(s))
           for n, s in shapes.items() if n not in inits]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o]
    g = helper.make_graph([node], "rnn", ins, outs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def case(rng, op, direction, layout, bias, lens, init, T=11, nb=5, I=7, H=6):
    G, D = (4 if op == "LSTM" else 3), (2 if direction == "bidirectional" else 1)
    x = rng.standard_normal((nb, T, I) if layout else (T, nb, I)).astype(np.float32)
    W = (rng.standard_normal((D, G * H, I)) * 0.5).astype(np.float32)
    R = (rng.standard_normal((D, G * H, H)) * 0.5).astype(np.float32)
    data = {"x": x, "W": W, "R": R}
    if bias:
        data["B"] = rng.standard_normal((D, 2 * G * H)).astype(np.float32)
    if lens:
        data["lens"] = rng.integers(0, T + 1, size=nb).astype(np.int32)
        data["lens"][0] = T
    state = (nb, D, H) if layout else (D, nb, H)
    if init:
        data["h0"] = rng.standard_normal(state).astype(np.float32)
        if op == "LSTM":
            data["c0"] = rng.standard_normal(state).astype(np.float32)
    return data


def names(op, data):
    order = ["x", "W", "R", "B", "lens", "h0"] + (["c0"] if op == "LSTM" else [])
    inputs = [n if n in data else "" for n in order]
    while not inputs[-1]:
        inputs.pop()
    return inputs


OPTIONS = [(False, False, False, 0), (True, True, True, 1), (True, False, True, 0), (False, True, False, 1)]


@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_matches_numpy_reference(op, direction, layout):
    rng = np.random.default_rng([len(op), len(direction), layout])
    for bias, lens, init, lbr in OPTIONS:
        data = case(rng, op, direction, layout, bias, lens, init)
        outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
        attrs = dict(hidden_size=6, direction=direction, layout=layout)
        if op == "GRU":
            attrs["linear_before_reset"] = lbr
        # W, R, B and sequence_lens (int32, as ONNX types it) are initializers; x and states inputs.
        inits = {k: data[k] for k in ("W", "R", "B", "lens") if k in data}
        shapes = {k: v.shape for k, v in data.items()}
        s = rt.Session(rnn_model(op, shapes, inits, names(op, data), outs, **attrs))
        got = s.run({k: v for k, v in data.items() if k not in inits})
        want = reference(op, data["x"], data["W"], data["R"], data.get("B"), data.get("lens"), data.get("h0"),
                         data.get("c0"), direction, layout, lbr)
        for g, w, o in zip(got, want, outs):
            assert g.dtype == np.float32 and g.shape == w.shape, (o, g.shape, w.shape)
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=f"{op} {o} {bias, lens, init, lbr}")


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_absent_outputs_and_stale_buffers(op):
    rng = np.random.default_rng(3)
    data = case(rng, op, "bidirectional", 0, True, False, True, T=9, nb=3)
    data["lens"] = np.array([9, 9, 9], np.int64)  # an int64 input: same shapes, new lengths per call
    shapes = {k: v.shape for k, v in data.items()}
    inits = {k: data[k] for k in ("W", "R", "B")}
    outs = ["", "Y_h"] + (["Y_c"] if op == "LSTM" else [])  # Y unused, as torch's final-state models
    s = rt.Session(rnn_model(op, shapes, inits, names(op, data), outs, hidden_size=6, direction="bidirectional"))
    full = rt.Session(rnn_model(op, shapes, inits, names(op, data), ["Y", "Y_h"], hidden_size=6,
                                direction="bidirectional"))
    for lens in ([9, 9, 9], [4, 0, 9], [1, 9, 2]):
        data["lens"] = np.array(lens, np.int64)
        feeds = {k: v for k, v in data.items() if k not in inits}
        want = reference(op, data["x"], data["W"], data["R"], data["B"], data["lens"], data["h0"], data.get("c0"),
                         "bidirectional")
        got = s.run(feeds)
        for g, w in zip(got, want[1:]):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
        # The second session keeps its buffers from the previous call: padded steps must be zeroed.
        y, yh = full.run(feeds)
        np.testing.assert_allclose(y, want[0], rtol=1e-4, atol=1e-5)
        assert np.all(y[lens[1]:, :, 1] == 0)


@pytest.mark.parametrize("nb", [1, 37])
@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_thread_count_does_not_change_results(op, nb):
    rng = np.random.default_rng(11)
    data = case(rng, op, "bidirectional", 0, True, True, True, T=6, nb=nb, I=5, H=10)
    inits = {k: data[k] for k in ("W", "R", "B", "lens")}
    model = rnn_model(op, {k: v.shape for k, v in data.items()}, inits, names(op, data), ["Y", "Y_h"],
                      hidden_size=10, direction="bidirectional")
    feeds = {k: v for k, v in data.items() if k not in inits}
    before = hepnn.get_num_threads()
    try:
        hepnn.set_num_threads(1)
        one = rt.Session(model).run(feeds)
        hepnn.set_num_threads(3)
        three = rt.Session(model).run(feeds)
    finally:
        hepnn.set_num_threads(before)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


def test_zero_time_steps_and_zero_features():
    rng = np.random.default_rng(4)
    # T = 0: Y is empty, Y_h is the initial state.
    data = case(rng, "GRU", "forward", 0, True, False, True, T=0, nb=3)
    shapes = {k: v.shape for k, v in data.items()}
    y, yh = rt.Session(rnn_model("GRU", shapes, {}, names("GRU", data), ["Y", "Y_h"], hidden_size=6)).run(data)
    assert y.shape == (0, 1, 3, 6)
    np.testing.assert_array_equal(yh, data["h0"])
    # I = 0: the gates see biases and the hidden state only.
    data = case(rng, "LSTM", "reverse", 0, True, False, True, T=4, nb=3, I=0)
    shapes = {k: v.shape for k, v in data.items()}
    got = rt.Session(rnn_model("LSTM", shapes, {}, names("LSTM", data), ["Y", "Y_h", "Y_c"], hidden_size=6,
                               direction="reverse")).run(data)
    want = reference("LSTM", data["x"], data["W"], data["R"], data["B"], None, data["h0"], data["c0"], "reverse")
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_c_api_recurrent_model(tmp_path):
    """The C API program (tests/cpp/runtime_c_api.cpp: 16 threads, error paths, allocation count)
    on a GRU -> LSTM stack: x (N, T*F) reshaped to time-major, a bidirectional GRU with
    linear_before_reset, an LSTM over its Y, then [Y_h, Y_c] into a Gemm head. Steady-state runs
    must not allocate."""
    import re
    import subprocess
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    from test_runtime_cpp import build_program

    exe = build_program()
    rng = np.random.default_rng(2)
    T, F, H1, H2, N = 5, 4, 8, 6, 7
    gru = case(rng, "GRU", "bidirectional", 0, True, False, False, T=T, nb=N, I=F, H=H1)
    lstm = case(rng, "LSTM", "forward", 0, True, False, False, T=T, nb=N, I=2 * H1, H=H2)
    head = (rng.standard_normal((3, 2 * H2)) / 4).astype(np.float32)
    inits = {"s1": np.array([-1, T, F], np.int64), "gW": gru["W"], "gR": gru["R"], "gB": gru["B"],
             "s2": np.array([T, -1, 2 * H1], np.int64), "lW": lstm["W"], "lR": lstm["R"], "lB": lstm["B"],
             "ax0": np.array([0], np.int64), "head": head}
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["x3"]),
             helper.make_node("Transpose", ["x3"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("GRU", ["xt", "gW", "gR", "gB"], ["gy", "gh"], hidden_size=H1, direction="bidirectional",
                              linear_before_reset=1),
             helper.make_node("Transpose", ["gy"], ["gyt"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["gyt", "s2"], ["l_in"]),
             helper.make_node("LSTM", ["l_in", "lW", "lR", "lB"], ["", "lh", "lc"], hidden_size=H2),
             helper.make_node("Concat", ["lh", "lc"], ["hc"], axis=2),
             helper.make_node("Squeeze", ["hc", "ax0"], ["z"]),
             helper.make_node("Gemm", ["z", "head"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "rnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T * F])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    model = tmp_path / "rnn.onnx"
    model.write_bytes(m.SerializeToString())
    x = rng.standard_normal((N, T * F)).astype(np.float32)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    r = subprocess.run([str(exe), str(model), str(tmp_path / "x.bin"), str(N), str(T * F), str(tmp_path / "y.bin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
    assert int(re.search(r"allocations_in_1000_runs (\d+)", r.stdout).group(1)) == 0
    gy, _ = reference("GRU", x.reshape(N, T, F).transpose(1, 0, 2), gru["W"], gru["R"], gru["B"],
                      direction="bidirectional", lbr=1)
    _, lh, lc = reference("LSTM", gy.transpose(0, 2, 1, 3).reshape(T, N, 2 * H1), lstm["W"], lstm["R"], lstm["B"])
    want = np.concatenate([lh, lc], axis=2)[0] @ head.T.astype(np.float64)
    y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32).reshape(N, 3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_constant_inputs_fold_at_load(op):
    # Every input an initializer: the step runs once at load (fold.cpp) and its three outputs
    # become constants of the model.
    rng = np.random.default_rng(8)
    data = case(rng, op, "bidirectional", 1, True, True, True, T=4, nb=3)
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    model = rnn_model(op, {k: v.shape for k, v in data.items()}, data, names(op, data), outs, hidden_size=6,
                      direction="bidirectional", layout=1)
    s = rt.Session(model)
    assert s.model.steps == []
    got = s.run({})
    want = reference(op, data["x"], data["W"], data["R"], data["B"], data["lens"], data["h0"], data.get("c0"),
                     "bidirectional", 1)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
