"""Registry specs for the fused linear layer y = act(x @ w.T + b): every activation, with and
without bias, forward (y and the kept pre-activation z) against NumPy float64 and backward
(dx, dw, db from one linear_backward call) against finite differences. Shapes are (B, I, O).
"""
import math

import numpy as np

import hepnn._core as core
from tests.registry import OpSpec

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(z):
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


# name -> (reference activation in float64, alpha passed to the kernel)
ACTS = {
    "none": (lambda z, a: z, 0.0),
    "relu": (lambda z, a: np.maximum(z, 0), 0.0),
    "leaky_relu": (lambda z, a: np.where(z > 0, z, a * z), 0.07),
    "elu": (lambda z, a: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0))), 1.3),
    "selu": (lambda z, a: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))), 0.0),
    "gelu": (lambda z, a: 0.5 * z * (1 + _erf(z / math.sqrt(2))), 0.0),
    "gelu_tanh": (lambda z, a: 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3))), 0.0),
    "sigmoid": (lambda z, a: _sigmoid(z), 0.0),
    "tanh": (lambda z, a: np.tanh(z), 0.0),
    "softplus": (lambda z, a: np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20)))), 0.0),
}

# (B, I, O): odd sizes, the MLP benchmark's 256 x 128 -> 128, a K block crossing (I = 300),
# and I = 0 (y = act(b)).
SHAPES = [(1, 1, 1), (7, 33, 5), (33, 17, 257), (257, 65, 129), (256, 128, 128), (19, 300, 23), (5, 0, 3)]
GRAD_SHAPES = [(7, 5, 3), (4, 9, 6)]


def _spec(act, bias):
    fn, alpha = ACTS[act]
    needs_z = core.act_needs_preactivation(act)
    # With a bias, z is always requested (checks the kept pre-activation); without, only when
    # the backward needs it (checks z=None in forward and backward).
    keep_z = bias or needs_z

    def make_inputs(rng, shape):
        B, I, O = shape
        inputs = {
            "x": rng.standard_normal((B, I)),
            "w": rng.standard_normal((O, I)) / math.sqrt(max(I, 1)),
        }
        if bias:
            inputs["b"] = rng.standard_normal(O)
        return inputs

    def reference(inputs):
        z = inputs["x"] @ inputs["w"].T
        if bias:
            z = z + inputs["b"]
        out = {"y": fn(z, alpha)}
        if keep_z:
            out["z"] = z
        return out

    def forward(inputs, be):
        x, w = inputs["x"], inputs["w"]
        B, O = x.shape[0], w.shape[0]
        y = be.empty((B, O), x.dtype)
        z = be.empty((B, O), x.dtype) if keep_z else None
        core.linear_forward(x, w, inputs.get("b"), y, z, act=act, alpha=alpha, stream=be.stream)
        return {"y": y, "z": z} if keep_z else {"y": y}

    def backward(inputs, grads, be):
        x, w = inputs["x"], inputs["w"]
        out = forward(inputs, be)
        dx = be.empty(x.shape, x.dtype)
        dw = be.empty(w.shape, w.dtype)
        db = be.empty((w.shape[0],), x.dtype) if bias else None
        core.linear_backward(x, w, out["z"] if needs_z else None, out["y"], grads["y"], dx, dw, db,
                             act=act, alpha=alpha, stream=be.stream)
        res = {"x": dx, "w": dw}
        if bias:
            res["b"] = db
        return res

    return OpSpec(
        name=f"linear_{act}" + ("" if bias else "_nobias"),
        make_inputs=make_inputs,
        forward=forward,
        reference=reference,
        backward=backward,
        grad_inputs=("x", "w", "b") if bias else ("x", "w"),
        grad_outputs=("y",),
        shapes=SHAPES,
        grad_shapes=GRAD_SHAPES,
        tol={np.float32: (1e-4, 1e-4), np.float64: (1e-12, 1e-10)},
    )


SPECS = [_spec(act, bias) for act in ACTS for bias in (True, False)]
