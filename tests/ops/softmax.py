"""Registry specs of softmax and log_softmax over the first, middle and last axis of 3-D arrays
(plus -1 and 1-D/2-D rows): forward against NumPy float64, backward against the analytic rule
(every dtype) and finite differences. Inputs carry a +-1000 offset and scale-50 entries, which
overflow exp unless the kernel subtracts the maximum."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES_3D = [(7, 33, 5), (1, 1, 1), (2, 257, 3), (3, 5, 129), (40, 33, 65)]
GRAD_SHAPES_3D = [(7, 33, 5), (3, 4, 2)]
ROW_SHAPES = [(1,), (7,), (2049,), (257, 129), (301, 211)]  # 1-D/2-D, reduced over the last axis


def make_inputs(rng, shape):
    """Half the entries scale 3, half scale 50, plus one offset of +-1000 for the whole array."""
    wide = rng.random(shape) < 0.5
    offset = 1000.0 * (1 if rng.random() < 0.5 else -1)
    return {"x": offset + np.where(wide, 50.0, 3.0) * rng.standard_normal(shape),
            "dy": rng.standard_normal(shape)}


def _softmax(x, axis, log):
    z = x - np.max(x, axis=axis, keepdims=True)
    lse = np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
    return z - lse if log else np.exp(z - lse)


def _softmax_grad(x, dy, axis, log):
    y = _softmax(x, axis, False)
    if log:
        return dy - y * np.sum(dy, axis=axis, keepdims=True)
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def _specs(log, axis, shapes, grad_shapes, label):
    kind = "log_softmax" if log else "softmax"

    def forward(inp, be):
        y = be.empty(inp["x"].shape, inp["x"].dtype)
        _core.softmax_forward(inp["x"], y, axis, log, stream=be.stream)
        return {"y": y}

    def backward(inp, gout, be):
        y = forward(inp, be)["y"]
        dx = be.empty(y.shape, y.dtype)
        _core.softmax_backward(y, gout["y"], dx, axis, log, stream=be.stream)
        return {"x": dx}

    # NOTE: absolute tolerances: softmax outputs lie in [0, 1]; log_softmax outputs reach -300
    # here, where float32 holds ~2e-5, hence the relative part.
    tol = {np.float32: (2e-6, 2e-6), np.float64: (1e-14, 1e-13)}
    return [
        OpSpec(name=f"{kind}_{label}", make_inputs=make_inputs, forward=forward,
               reference=lambda inp: {"y": _softmax(inp["x"], axis, log)}, shapes=shapes,
               backward=backward, grad_inputs=("x",), grad_shapes=grad_shapes, tol=tol),
        OpSpec(name=f"{kind}_backward_{label}", make_inputs=make_inputs,
               forward=lambda inp, be: {"dx": backward(inp, {"y": inp["dy"]}, be)["x"]},
               reference=lambda inp: {"dx": _softmax_grad(inp["x"], inp["dy"], axis, log)},
               shapes=shapes, tol={np.float32: (1e-5, 1e-5), np.float64: (1e-13, 1e-12)}),
    ]


SPECS = []
for _log in (False, True):
    for _axis in (0, 1, 2):
        SPECS += _specs(_log, _axis, SHAPES_3D, GRAD_SHAPES_3D, f"axis{_axis}")
    SPECS += _specs(_log, -1, ROW_SHAPES, [(7,), (33, 5)], "last")
