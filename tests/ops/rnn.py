"""Registry specs of the recurrent layer kernels (lstm_*, gru_*): one layer direction forward
(y, hn, cn) against NumPy float64 loops over time, backward (x, weights, biases, initial state)
against finite differences; forward and reverse, with and without lengths (zero and full lengths
included), without bias or initial state, and both directions written into one (L, B, 2H) y.
Shapes are (L, B, I, H): L steps, B batch, I input features, H hidden size.
"""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES = [(1, 1, 1, 1), (5, 3, 7, 9), (13, 17, 5, 33), (7, 40, 19, 65), (30, 64, 16, 64)]
GRAD_SHAPES = [(4, 3, 5, 6), (3, 17, 2, 5)]
GATES = {"lstm": 4, "gru": 3}


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def lstm_reference(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse):
    """One LSTM direction in float64, step by step, torch's equations and gate order."""
    L, B, _ = x.shape
    H = w_hh.shape[1]
    h = np.zeros((B, H)) if h0 is None else h0.copy()
    c = np.zeros((B, H)) if c0 is None else c0.copy()
    lengths = np.full(B, L) if lengths is None else lengths
    y = np.zeros((L, B, H))
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        g = x[t] @ w_ih.T + h @ w_hh.T
        if b_ih is not None:
            g = g + b_ih + b_hh
        i, f, gg, o = _sigmoid(g[:, :H]), _sigmoid(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), _sigmoid(g[:, 3 * H:])
        c_new = f * c + i * gg
        h_new = o * np.tanh(c_new)
        m = (t < lengths)[:, None]
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        y[t] = np.where(m, h_new, 0.0)
    return y, h, c


def gru_reference(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse):
    """One GRU direction in float64: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    L, B, _ = x.shape
    H = w_hh.shape[1]
    h = np.zeros((B, H)) if h0 is None else h0.copy()
    lengths = np.full(B, L) if lengths is None else lengths
    y = np.zeros((L, B, H))
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        gx = x[t] @ w_ih.T + (0.0 if b_ih is None else b_ih)
        gh = h @ w_hh.T + (0.0 if b_hh is None else b_hh)
        r = _sigmoid(gx[:, :H] + gh[:, :H])
        z = _sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        h_new = (1 - z) * n + z * h
        m = (t < lengths)[:, None]
        h = np.where(m, h_new, h)
        y[t] = np.where(m, h_new, 0.0)
    return y, h


def _spec(kind, reverse=False, lengths=False, bias=True, state=True, bidir=False):
    G = GATES[kind]
    lstm = kind == "lstm"
    label = kind + ("_reverse" if reverse else "") + ("_lengths" if lengths else "") + \
        ("" if bias else "_nobias") + ("" if state else "_nostate") + ("_bidir" if bidir else "")
    dirs = (False, True) if bidir else (reverse,)

    def make_inputs(rng, shape):
        L, B, I, H = shape
        s = 1.0 / np.sqrt(H)
        inp = {"x": rng.standard_normal((L, B, I)),
               "w_ih": rng.uniform(-2 * s, 2 * s, (G * H, I)),
               "w_hh": rng.uniform(-2 * s, 2 * s, (G * H, H))}
        if bias:
            inp["b_ih"] = rng.uniform(-s, s, G * H)
            inp["b_hh"] = rng.uniform(-s, s, G * H)
        if state:
            inp["h0"] = rng.standard_normal((B, H))
            if lstm:
                inp["c0"] = rng.standard_normal((B, H))
        if lengths:
            lens = rng.integers(0, L + 1, B)
            lens[0] = L
            if B > 2:
                lens[1] = 0
            inp["lengths"] = lens.astype(np.int64)
        return inp

    def reference(inp):
        args = [inp["x"], inp["w_ih"], inp["w_hh"], inp.get("b_ih"), inp.get("b_hh"), inp.get("h0")]
        ys, out = [], {}
        for d, rev in enumerate(dirs):
            if lstm:
                y, h, c = lstm_reference(*args, inp.get("c0"), inp.get("lengths"), rev)
                out[f"cn{d}"] = c
            else:
                y, h = gru_reference(*args, inp.get("lengths"), rev)
            ys.append(y)
            out[f"hn{d}"] = h
        out["y"] = np.concatenate(ys, axis=2)
        return out

    def _forward(inp, be):
        x = inp["x"]
        L, B, _ = x.shape
        H = inp["w_hh"].shape[1]
        dt = x.dtype
        out = {"y": be.empty((L, B, H * len(dirs)), dt)}
        ws = []
        for d, rev in enumerate(dirs):
            hn = out[f"hn{d}"] = be.empty((B, H), dt)
            gates, hs, aux = be.empty((L, B, G * H), dt), be.empty((L, B, H), dt), be.empty((L, B, H), dt)
            common = (x, inp["w_ih"], inp["w_hh"], inp.get("b_ih"), inp.get("b_hh"), inp.get("h0"))
            if lstm:
                cn = out[f"cn{d}"] = be.empty((B, H), dt)
                _core.lstm_forward(*common, inp.get("c0"), inp.get("lengths"), rev, out["y"], hn, cn,
                                   gates, hs, aux, stream=be.stream)
            else:
                _core.gru_forward(*common, inp.get("lengths"), rev, out["y"], hn, gates, hs, aux,
                                  stream=be.stream)
            ws.append((gates, hs, aux))
        return out, ws

    def forward(inp, be):
        return _forward(inp, be)[0]

    def backward(inp, gout, be):
        _, ws = _forward(inp, be)
        x, w_ih, w_hh = inp["x"], inp["w_ih"], inp["w_hh"]
        dt = x.dtype
        dx = be.empty(x.shape, dt)
        res = {"x": dx, "w_ih": be.xp.zeros(w_ih.shape, dt), "w_hh": be.xp.zeros(w_hh.shape, dt)}
        for name in ("b_ih", "b_hh", "h0", "c0"):
            if name in inp:
                res[name] = be.xp.zeros(inp[name].shape, dt)
        for d, rev in enumerate(dirs):
            gates, hs, aux = ws[d]
            dw_ih, dw_hh = be.empty(w_ih.shape, dt), be.empty(w_hh.shape, dt)
            db_ih = be.empty(inp["b_ih"].shape, dt) if bias else None
            db_hh = be.empty(inp["b_hh"].shape, dt) if bias else None
            dh0 = be.empty(inp["h0"].shape, dt) if state else None
            if lstm:
                dc0 = be.empty(inp["c0"].shape, dt) if state else None
                _core.lstm_backward(x, w_ih, w_hh, inp.get("h0"), inp.get("c0"), inp.get("lengths"), rev,
                                    gates, hs, aux, gout["y"], gout[f"hn{d}"], gout[f"cn{d}"], dx, d > 0,
                                    dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, stream=be.stream)
                if state:
                    res["c0"] += dc0
            else:
                _core.gru_backward(x, w_ih, w_hh, inp.get("h0"), inp.get("lengths"), rev, gates, hs, aux,
                                   gout["y"], gout[f"hn{d}"], dx, d > 0, dw_ih, dw_hh, db_ih, db_hh, dh0,
                                   stream=be.stream)
            res["w_ih"] += dw_ih
            res["w_hh"] += dw_hh
            if bias:
                res["b_ih"] += db_ih
                res["b_hh"] += db_hh
            if state:
                res["h0"] += dh0
        return res

    grad_inputs = ("x", "w_ih", "w_hh") + (("b_ih", "b_hh") if bias else ()) + \
        ((("h0", "c0") if lstm else ("h0",)) if state else ())
    # NOTE: float32 errors grow along the recurrence (30 steps at the largest shape).
    return OpSpec(name=label, make_inputs=make_inputs, forward=forward, reference=reference,
                  backward=backward, grad_inputs=grad_inputs, shapes=SHAPES, grad_shapes=GRAD_SHAPES,
                  tol={np.float32: (5e-5, 5e-5), np.float64: (1e-12, 1e-10)})


SPECS = []
for _kind in ("lstm", "gru"):
    SPECS += [_spec(_kind), _spec(_kind, reverse=True), _spec(_kind, lengths=True),
              _spec(_kind, reverse=True, lengths=True), _spec(_kind, bias=False, state=False),
              _spec(_kind, lengths=True, bidir=True)]
