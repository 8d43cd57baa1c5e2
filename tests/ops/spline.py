"""Registry specs of the rational-quadratic spline: forward (y, log|dy/dx|) and inverse (x,
log|dx/dy|) against a NumPy float64 reference written from the paper's knot form (cumsum + knot
search, not the kernels' per-bin arithmetic); backward (dx and the unnormalised widths, heights,
derivatives from one call) against finite differences. Inputs reach 1.3 * bound so the linear
tails are exercised. A shape is (S, K): x of shape S, K bins."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

BOUND, MIN_W, MIN_H, MIN_D = 2.5, 1e-3, 2e-3, 1e-3
SHAPES = [((1,), 2), ((7, 5), 8), ((33,), 5), ((4, 3, 11), 16), ((257,), 3), ((129, 3), 64)]
GRAD_SHAPES = [((5, 3), 4), ((7,), 2)]
KW = dict(bound=BOUND, min_width=MIN_W, min_height=MIN_H, min_derivative=MIN_D)


def make_params(rng, S, K, scale=1.0):
    return {"w": rng.standard_normal(S + (K,)) * scale, "h": rng.standard_normal(S + (K,)) * scale,
            "d": rng.standard_normal(S + (K - 1,)) * scale}


def _make(rng, shape, key="x"):
    S, K = shape
    inp = {key: rng.uniform(-1.3 * BOUND, 1.3 * BOUND, S)}
    inp.update(make_params(rng, S, K))
    return inp


def _knots(p, minimum, bound):
    K = p.shape[-1]
    e = np.exp(p - p.max(-1, keepdims=True))
    sizes = minimum + (1 - minimum * K) * e / e.sum(-1, keepdims=True)
    c = np.concatenate([np.zeros(p.shape[:-1] + (1,)), np.cumsum(sizes, -1)], -1)
    knots = -bound + 2 * bound * c
    knots[..., -1] = bound
    return knots


def rq_spline_reference(v, w, h, d, inverse=False, bound=BOUND, min_width=MIN_W, min_height=MIN_H,
                        min_derivative=MIN_D):
    """(out, logdet) of the spline (inverse=False: x -> y, log dy/dx; True: y -> x, log dx/dy)."""
    K = w.shape[-1]
    kx, ky = _knots(w, min_width, bound), _knots(h, min_height, bound)
    ones = np.ones(d.shape[:-1] + (1,))
    dk = np.concatenate([ones, min_derivative + np.log1p(np.exp(d)), ones], -1)
    inside = np.abs(v) <= bound
    search = ky if inverse else kx
    k = np.clip(np.sum(search[..., 1:K] <= v[..., None], -1), 0, K - 1)[..., None]
    take = lambda a, o=0: np.take_along_axis(a, k + o, -1)[..., 0]  # noqa: E731
    xk, wk = take(kx), take(kx, 1) - take(kx)
    yk, hk = take(ky), take(ky, 1) - take(ky)
    d0, d1 = take(dk), take(dk, 1)
    s = hk / wk
    if inverse:
        dy = v - yk
        a = hk * (s - d0) + dy * (d0 + d1 - 2 * s)
        b = hk * d0 - dy * (d0 + d1 - 2 * s)
        c = -s * dy
        with np.errstate(invalid="ignore", divide="ignore"):  # tail elements, masked below
            xi = 2 * c / (-b - np.sqrt(b * b - 4 * a * c))
        out = xi * wk + xk
    else:
        xi = (v - xk) / wk
        out = yk + hk * (s * xi**2 + d0 * xi * (1 - xi)) / (s + (d0 + d1 - 2 * s) * xi * (1 - xi))
    num = s**2 * (d1 * xi**2 + 2 * s * xi * (1 - xi) + d0 * (1 - xi) ** 2)
    den = (s + (d0 + d1 - 2 * s) * xi * (1 - xi)) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        logdet = np.log(num) - np.log(den)
    if inverse:
        logdet = -logdet
    return np.where(inside, out, v), np.where(inside, logdet, 0.0)


def _reference(inp):
    y, ld = rq_spline_reference(inp["x"], inp["w"], inp["h"], inp["d"])
    return {"y": y, "logdet": ld}


def _reference_inverse(inp):
    x, ld = rq_spline_reference(inp["y"], inp["w"], inp["h"], inp["d"], inverse=True)
    return {"x": x, "logdet": ld}


def _forward(inp, be):
    x = inp["x"]
    y, ld = be.empty(x.shape, x.dtype), be.empty(x.shape, x.dtype)
    _core.spline_forward(x, inp["w"], inp["h"], inp["d"], y, ld, **KW, stream=be.stream)
    return {"y": y, "logdet": ld}


def _inverse(inp, be):
    y = inp["y"]
    x, ld = be.empty(y.shape, y.dtype), be.empty(y.shape, y.dtype)
    _core.spline_inverse(y, inp["w"], inp["h"], inp["d"], x, ld, **KW, stream=be.stream)
    return {"x": x, "logdet": ld}


def _backward(inp, gout, be):
    x = inp["x"]
    dx = be.empty(x.shape, x.dtype)
    dw, dh = be.empty(inp["w"].shape, x.dtype), be.empty(inp["h"].shape, x.dtype)
    dd = be.empty(inp["d"].shape, x.dtype)
    _core.spline_backward(x, inp["w"], inp["h"], inp["d"], gout["y"], gout["logdet"], dx, dw, dh, dd,
                          **KW, stream=be.stream)
    return {"x": dx, "w": dw, "h": dh, "d": dd}


# NOTE: float32 kernels compute in float32, and a bin's slope s = h / w amplifies the rounding of
# x - xk (forward) or y - yk (inverse) by s or 1 / s: with K = 64 bins and parameters of unit
# scale, s reaches ~1e2 and errors ~1e-4 are the conditioning, not the kernel.
TOL = {np.float32: (5e-4, 5e-4), np.float64: (1e-10, 1e-9)}

SPECS = [
    OpSpec(name="spline_forward", make_inputs=_make, forward=_forward, reference=_reference,
           shapes=SHAPES, backward=_backward, grad_inputs=("x", "w", "h", "d"),
           grad_outputs=("y", "logdet"), grad_shapes=GRAD_SHAPES, tol=TOL),
    OpSpec(name="spline_inverse", make_inputs=lambda rng, shape: _make(rng, shape, "y"),
           forward=_inverse, reference=_reference_inverse, shapes=SHAPES, tol=TOL),
]
