"""Registry specs of the axis reductions: sum, mean and max (+ argmax, compared exactly) over
every axis of 3-D arrays and over long 1-D rows, against NumPy float64; a tie-heavy input checks
that argmax picks the first maximum. No backward: the autograd broadcasts dy for these."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES_3D = [(7, 33, 5), (1, 1, 1), (2, 257, 3), (3, 5, 129), (3, 257, 129)]
ROW_SHAPES = [(1,), (7,), (33,), (100003,)]


def make_inputs(rng, shape):
    """Mixed signs and magnitudes with a nonzero mean, so sums cancel partly."""
    return {"x": 0.3 + rng.standard_normal(shape) * np.exp(rng.uniform(-3, 3, shape))}


def make_ties(rng, shape):
    """Small integers: many equal maxima along every axis."""
    return {"x": rng.integers(-4, 5, shape).astype(np.float64)}


def _spec(op, axis, shapes, label, make=make_inputs):
    def forward(inp, be):
        x = inp["x"]
        out_shape = tuple(s for i, s in enumerate(x.shape) if i != axis % x.ndim)
        y = be.empty(out_shape, x.dtype)
        out = {"y": y}
        if op == "max":
            out["argmax"] = be.empty(out_shape, np.int64)
            _core.reduce(x, y, axis, op, out["argmax"], stream=be.stream)
        else:
            _core.reduce(x, y, axis, op, stream=be.stream)
        return out

    def reference(inp):
        x = inp["x"]
        ref = {"y": getattr(np, op)(x, axis=axis)}
        if op == "max":
            ref["argmax"] = np.argmax(x, axis=axis)
        return ref

    # NOTE: sums accumulate in double and round once, so float32 is good to its own rounding
    # relative to |result| (the atol covers results that cancel to near zero).
    tol = {np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-12)}
    return OpSpec(name=f"reduce_{op}_{label}", make_inputs=make, forward=forward, reference=reference,
                  shapes=shapes, tol=tol)


SPECS = []
for _op in ("sum", "mean", "max"):
    for _axis in (0, 1, 2, -1):
        SPECS.append(_spec(_op, _axis, SHAPES_3D, f"axis{_axis}"))
    SPECS.append(_spec(_op, 0, ROW_SHAPES, "rows"))
for _axis in (0, 1, 2):
    SPECS.append(_spec("max", _axis, SHAPES_3D, f"ties_axis{_axis}", make_ties))
SPECS.append(_spec("max", 0, ROW_SHAPES, "ties_rows", make_ties))
