"""Registry specs of layer norm over the last axis: with weight and bias, weight only and
neither; forward (y, row mean, 1/std) against NumPy float64, backward (dx, dweight, dbias from
one call) against finite differences. Rows carry a +-100 offset (no E[x^2] - E[x]^2 shortcut
survives that in float32). Shapes are (R, C)."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES = [(1, 1), (7, 33), (257, 129), (3, 1000), (1000, 3)]
GRAD_SHAPES = [(5, 7), (3, 2)]
EPS = 1e-5


def _make(affine):
    def make_inputs(rng, shape):
        R, C = shape
        inp = {"x": 100.0 * rng.choice([-1, 1]) + rng.standard_normal((R, C)) * rng.uniform(0.5, 2)}
        if affine in ("weight", "both"):
            inp["w"] = rng.standard_normal(C)
        if affine == "both":
            inp["b"] = rng.standard_normal(C)
        return inp
    return make_inputs


def _reference(inp):
    x = inp["x"]
    mean = x.mean(-1)
    rstd = 1.0 / np.sqrt(((x - mean[:, None]) ** 2).mean(-1) + EPS)
    y = (x - mean[:, None]) * rstd[:, None]
    if "w" in inp:
        y = y * inp["w"]
    if "b" in inp:
        y = y + inp["b"]
    return {"y": y, "mean": mean, "rstd": rstd}


def _forward(inp, be):
    x = inp["x"]
    y = be.empty(x.shape, x.dtype)
    mean, rstd = be.empty(x.shape[:1], x.dtype), be.empty(x.shape[:1], x.dtype)
    _core.layer_norm_forward(x, inp.get("w"), inp.get("b"), y, mean, rstd, EPS, stream=be.stream)
    return {"y": y, "mean": mean, "rstd": rstd}


def _backward(inp, gout, be):
    x = inp["x"]
    f = _forward(inp, be)
    dx = be.empty(x.shape, x.dtype)
    dw = be.empty(x.shape[1:], x.dtype) if "w" in inp else None
    db = be.empty(x.shape[1:], x.dtype) if "b" in inp else None
    _core.layer_norm_backward(x, inp.get("w"), f["mean"], f["rstd"], gout["y"], dx, dw, db,
                              stream=be.stream)
    grads = {"x": dx}
    if dw is not None:
        grads["w"] = dw
    if db is not None:
        grads["b"] = db
    return grads


SPECS = [
    OpSpec(name=f"layer_norm_{affine}", make_inputs=_make(affine), forward=_forward,
           reference=_reference, shapes=SHAPES, backward=_backward,
           grad_inputs=("x",) + {"none": (), "weight": ("w",), "both": ("w", "b")}[affine],
           grad_outputs=("y",), grad_shapes=GRAD_SHAPES,
           # NOTE: float32 inputs at +-100 hold ~1e-5 absolute, i.e. ~1e-5 relative on y.
           tol={np.float32: (1e-4, 1e-4), np.float64: (1e-11, 1e-10)})
    for affine in ("none", "weight", "both")
]
