"""Registry specs of the elementwise activations: for each one, act_forward against a NumPy
float64 formula, act_backward against the analytic derivative (every dtype) and against finite
differences; one shape is above the kernels' 32K-element threading grain."""
import math

import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES = [(1,), (7,), (33, 5), (257, 129), (301, 211)]
GRAD_SHAPES = [(7,), (33, 5)]

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_erf = np.vectorize(math.erf, otypes=[float])
_erfc = np.vectorize(math.erfc, otypes=[float])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _gelu_tanh_parts(x):
    k = math.sqrt(2.0 / math.pi)
    t = np.tanh(k * (x + 0.044715 * x**3))
    return t, k * (1.0 + 3 * 0.044715 * x**2)


# name -> (alpha, f(x, alpha), f'(x, alpha)); NumPy float64, written from the definitions.
ACTIVATIONS = {
    "none": (0.0, lambda x, a: x, lambda x, a: np.ones_like(x)),
    "relu": (0.0, lambda x, a: np.maximum(x, 0.0), lambda x, a: (x > 0).astype(float)),
    "leaky_relu": (0.1, lambda x, a: np.where(x > 0, x, a * x), lambda x, a: np.where(x > 0, 1.0, a)),
    "elu": (0.7, lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
            lambda x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))),
    "selu": (0.0, lambda x, a: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda x, a: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0)))),
    "gelu": (0.0, lambda x, a: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
             lambda x, a: 0.5 * _erfc(-x / math.sqrt(2.0)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
    "gelu_tanh": (0.0, lambda x, a: 0.5 * x * (1.0 + _gelu_tanh_parts(x)[0]),
                  lambda x, a: 0.5 * (1.0 + _gelu_tanh_parts(x)[0])
                  + 0.5 * x * (1.0 - _gelu_tanh_parts(x)[0] ** 2) * _gelu_tanh_parts(x)[1]),
    "sigmoid": (0.0, lambda x, a: _sigmoid(x), lambda x, a: _sigmoid(x) * (1.0 - _sigmoid(x))),
    "tanh": (0.0, lambda x, a: np.tanh(x), lambda x, a: 1.0 - np.tanh(x) ** 2),
    "softplus": (0.0, lambda x, a: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))),
                 lambda x, a: np.where(x > 20, 1.0, _sigmoid(x))),
}

# float32 tolerances: the piecewise-linear ones are exact; exp/erf/tanh-based ones carry a few
# ulps of libm error, and their backward one more rounding of dy * f'.
EXACT_TOL = {np.float32: (1e-6, 1e-6), np.float64: (1e-15, 1e-15)}
LIBM_TOL = {np.float32: (2e-6, 4e-6), np.float64: (1e-13, 1e-12)}
BACKWARD_TOL = {np.float32: (4e-6, 8e-6), np.float64: (1e-13, 1e-12)}


def make_inputs(rng, shape):
    """|x| >= 0.05 (no kink inside a finite-difference step) and ~5% large values (22..60), so
    sigmoid/softplus/gelu tails and the softplus threshold are exercised; dy is the upstream grad."""
    u = rng.standard_normal(shape)
    x = np.sign(u) * (0.05 + 3.0 * np.abs(u))
    big = rng.random(shape) < 0.05
    x = np.where(big, np.sign(u) * rng.uniform(22.0, 60.0, shape), x)
    return {"x": x, "dy": rng.standard_normal(shape)}


def _specs(name):
    alpha, f, df = ACTIVATIONS[name]

    def forward(inp, be):
        y = be.empty(inp["x"].shape, inp["x"].dtype)
        _core.act_forward(name, inp["x"], y, alpha, stream=be.stream)
        return {"y": y}

    def backward(inp, gout, be):
        y = forward(inp, be)["y"]
        dx = be.empty(inp["x"].shape, inp["x"].dtype)
        _core.act_backward(name, inp["x"], y, gout["y"], dx, alpha, stream=be.stream)
        return {"x": dx}

    def backward_as_forward(inp, be):
        return {"dx": backward(inp, {"y": inp["dy"]}, be)["x"]}

    exact = name in ("none", "relu", "leaky_relu")
    fwd = OpSpec(
        name=f"act_{name}",
        make_inputs=make_inputs,
        forward=forward,
        reference=lambda inp: {"y": f(inp["x"], alpha)},
        shapes=SHAPES,
        backward=backward,
        grad_inputs=("x",),
        grad_shapes=GRAD_SHAPES,
        tol=EXACT_TOL if exact else LIBM_TOL,
    )
    bwd = OpSpec(
        name=f"act_{name}_backward",
        make_inputs=make_inputs,
        forward=backward_as_forward,
        reference=lambda inp: {"dx": inp["dy"] * df(inp["x"], alpha)},
        shapes=SHAPES,
        tol=EXACT_TOL if exact else BACKWARD_TOL,
    )
    return [fwd, bwd]


SPECS = [spec for name in ACTIVATIONS for spec in _specs(name)]
