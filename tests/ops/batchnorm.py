"""Registry specs of batch normalisation over (N, C, S) (2-D (N, C) inputs when S = 1): training
forward (y, saved mean and 1/std, the in-place running-stat update), eval forward, backward (both
modes) against finite differences, and the masked (padded particle set) variant. Shapes are
(N, C, S): odd sizes, channel blocks crossing the kernel's 64-channel block, S = 1 and S > 1.
"""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES = [(7, 5, 1), (3, 4, 5), (2, 3, 129), (17, 67, 1), (5, 2, 7), (1, 3, 9), (4, 65, 3),
          (2, 130, 1), (6, 9, 40)]
GRAD_SHAPES = [(5, 3, 1), (3, 2, 4)]
MOMENTUM, EPS = 0.3, 1e-3
TOL = {np.float32: (2e-5, 1e-4), np.float64: (1e-12, 1e-10)}


def _x_shape(shape):
    N, C, S = shape
    return (N, C) if S == 1 else (N, C, S)


def _make(masked, offset=100.0, scale=0.5):
    def make_inputs(rng, shape):
        N, C, S = shape
        inp = {"x": offset + scale * rng.standard_normal(_x_shape(shape)) * rng.uniform(0.5, 2, (1, C) + (1,) * (S > 1)),
               "w": rng.uniform(0.5, 1.5, C) * rng.choice([-1, 1], C), "b": rng.standard_normal(C),
               "rm": rng.standard_normal(C), "rv": rng.uniform(0.5, 2.0, C),
               "dy": rng.standard_normal(_x_shape(shape))}
        if masked:
            m = rng.random((N, S)) < 0.7
            m.flat[:2] = True  # at least two valid points per channel
            inp["mask"] = m.reshape((N, S) if S > 1 else (N,))
        return inp
    return make_inputs


def _stats(inp):
    x = inp["x"]
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)
    m = inp.get("mask")
    valid = np.ones((N, x3.shape[2]), bool) if m is None else m.reshape(N, -1).astype(bool)
    v = valid[:, None, :]
    M = valid.sum()
    mean = np.where(v, x3, 0).sum(axis=(0, 2)) / M
    var = np.where(v, (x3 - mean[None, :, None]) ** 2, 0).sum(axis=(0, 2)) / M
    return x3, v, M, mean, var


def _reference(training):
    def reference(inp):
        x3, v, M, mean, var = _stats(inp)
        if not training:
            mean, var = inp["rm"], inp["rv"]
        invstd = 1 / np.sqrt(var + EPS)
        y = (x3 - mean[None, :, None]) * (invstd * inp["w"])[None, :, None] + inp["b"][None, :, None]
        out = {"y": np.where(v, y, 0).reshape(inp["x"].shape), "save_mean": mean, "save_invstd": invstd}
        if training:
            out["running_mean"] = (1 - MOMENTUM) * inp["rm"] + MOMENTUM * mean
            out["running_var"] = (1 - MOMENTUM) * inp["rv"] + MOMENTUM * var * M / (M - 1)
        return out
    return reference


def _grad_reference(training):
    def reference(inp):
        x3, v, M, mean, var = _stats(inp)
        if not training:
            mean, var = inp["rm"], inp["rv"]
        invstd = 1 / np.sqrt(var + EPS)
        g = np.where(v, inp["dy"].reshape(x3.shape), 0)
        xhat = (x3 - mean[None, :, None]) * invstd[None, :, None]
        db = g.sum(axis=(0, 2))
        dw = (g * xhat).sum(axis=(0, 2))
        k = (inp["w"] * invstd)[None, :, None]
        if training:
            dx = k * (g - db[None, :, None] / M - xhat * dw[None, :, None] / M)
        else:
            dx = k * g
        return {"dx": np.where(v, dx, 0).reshape(inp["x"].shape), "dw": dw, "db": db}
    return reference


def _spec(training, masked, label, make_inputs=None, dtypes=(np.float32, np.float64), tol=TOL):
    def forward(inp, be):
        x = inp["x"]
        C = x.shape[1]
        # Copies: the kernel updates the running statistics in place, and finite differences
        # call forward many times with the same inputs.
        rm, rv = be.xp.array(inp["rm"], copy=True), be.xp.array(inp["rv"], copy=True)
        y, sm, si = be.empty(x.shape, x.dtype), be.empty((C,), x.dtype), be.empty((C,), x.dtype)
        _core.batchnorm_forward(x, inp.get("mask"), inp["w"], inp["b"], rm, rv, training, MOMENTUM,
                                EPS, y, sm, si, stream=be.stream)
        out = {"y": y, "save_mean": sm, "save_invstd": si}
        if training:
            out.update(running_mean=rm, running_var=rv)
        return out

    def backward(inp, gout, be):
        f = forward(inp, be)
        x = inp["x"]
        dx, dw, db = be.empty(x.shape, x.dtype), be.empty(inp["w"].shape, x.dtype), be.empty(inp["w"].shape, x.dtype)
        _core.batchnorm_backward(x, inp.get("mask"), inp["w"], f["save_mean"], f["save_invstd"],
                                 gout["y"], training, dx, dw, db, stream=be.stream)
        return {"x": dx, "w": dw, "b": db}

    make_inputs = make_inputs or _make(masked)
    name = f"batch_norm_{'train' if training else 'eval'}{'_masked' if masked else ''}{label}"
    return [
        OpSpec(name=name, make_inputs=make_inputs, forward=forward, reference=_reference(training),
               shapes=SHAPES, backward=backward, grad_inputs=("x", "w", "b"), grad_outputs=("y",),
               grad_shapes=GRAD_SHAPES, tol=tol, dtypes=dtypes),
        OpSpec(name=name + "_backward", make_inputs=make_inputs,
               forward=lambda inp, be: dict(zip(("dx", "dw", "db"), backward(inp, {"y": inp["dy"]}, be).values())),
               reference=_grad_reference(training), shapes=SHAPES, dtypes=dtypes,
               tol={np.float32: (1e-4, 1e-4), np.float64: (1e-11, 1e-10)}),
    ]


SPECS = []
for _training in (True, False):
    for _masked in (False, True):
        SPECS += _spec(_training, _masked, "")
# NOTE: a 1e6 offset on unit-scale data: E[x^2] - E[x]^2 would lose ~1e-4 of the variance even
# in float64; the two-pass statistics keep it to rounding.
_offset = _spec(True, False, "_offset", make_inputs=_make(False, offset=1e6, scale=1.0),
                dtypes=(np.float64,), tol={np.float64: (1e-9, 1e-9)})[0]
_offset.backward = None  # finite-difference steps scale with |x| = 1e6: meaningless here
SPECS.append(_offset)
