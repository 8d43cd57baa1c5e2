"""Registry specs of the fused attention kernel: forward (out and the per-row log-sum-exp)
against NumPy float64, backward (dq, dk, dv, dbias) against finite differences. Shapes are
(B, H, Lq, Lk, D): odd sizes, Lq != Lk (one query = class attention), sizes crossing the 64-query
and 128-key tiles; key masks with padding and with rows whose keys are all masked; pair bias
shared by the heads or per head."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES = [(1, 1, 1, 1, 1), (2, 3, 7, 5, 4), (2, 2, 65, 129, 8), (3, 2, 1, 37, 16), (1, 1, 130, 300, 3)]
GRAD_SHAPES = [(2, 2, 5, 7, 3), (2, 3, 1, 9, 4)]
NEG = -1e30  # stands for -inf in the compared lse (rows without a real key)


def _make(mask, bias):
    def make_inputs(rng, shape):
        B, H, Lq, Lk, D = shape
        inp = {"q": rng.standard_normal((B, H, Lq, D)), "k": rng.standard_normal((B, H, Lk, D)),
               "v": rng.standard_normal((B, H, Lk, D))}
        if mask != "none":
            keep = rng.random((B, Lk)) < 0.6
            keep[:, 0] = True
            if mask == "empty_rows":
                keep[B - 1] = False  # the last jet has no real particle: its rows give 0
            inp["mask"] = keep
        if bias != "none":
            inp["bias"] = 2.0 * rng.standard_normal((B, 1 if bias == "shared" else H, Lq, Lk))
        return inp
    return make_inputs


def _reference(inp):
    q, k, v = inp["q"], inp["k"], inp["v"]
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    if "bias" in inp:
        s = s + inp["bias"]
    keep = inp.get("mask", np.ones((q.shape[0], k.shape[2]), bool))[:, None, None, :]
    s = np.where(keep, s, -np.inf)
    m = np.max(s, axis=-1, keepdims=True) if s.shape[-1] else np.full(s.shape[:-1] + (1,), -np.inf)
    has = np.isfinite(m)
    e = np.where(keep, np.exp(s - np.where(has, m, 0.0)), 0.0)
    l = e.sum(-1, keepdims=True)
    p = np.where(has, e / np.where(has, l, 1.0), 0.0)
    lse = np.where(has, m + np.log(np.where(has, l, 1.0)), NEG)[..., 0]
    return {"out": p @ v, "lse": lse}


def _forward(inp, be):
    q = inp["q"]
    out = be.empty(q.shape, q.dtype)
    lse = be.empty(q.shape[:3], q.dtype)
    _core.attention_forward(q, inp["k"], inp["v"], inp.get("mask"), inp.get("bias"), out, lse,
                            stream=be.stream)
    return {"out": out, "lse": be.xp.where(be.xp.isneginf(lse), NEG, lse)}


def _backward(inp, gout, be):
    q, k, v = inp["q"], inp["k"], inp["v"]
    out = be.empty(q.shape, q.dtype)
    lse = be.empty(q.shape[:3], q.dtype)
    _core.attention_forward(q, k, v, inp.get("mask"), inp.get("bias"), out, lse, stream=be.stream)
    dq, dk, dv = be.empty(q.shape, q.dtype), be.empty(k.shape, k.dtype), be.empty(v.shape, v.dtype)
    db = be.empty(inp["bias"].shape, q.dtype) if "bias" in inp else None
    _core.attention_backward(q, k, v, inp.get("mask"), inp.get("bias"), out, lse, gout["out"], dq,
                             dk, dv, db, stream=be.stream)
    grads = {"q": dq, "k": dk, "v": dv}
    if db is not None:
        grads["bias"] = db
    return grads


SPECS = []
for _mask, _bias in [("none", "none"), ("pad", "none"), ("empty_rows", "none"), ("pad", "shared"),
                     ("none", "per_head"), ("empty_rows", "per_head")]:
    SPECS.append(OpSpec(
        name=f"attention_mask_{_mask}_bias_{_bias}", make_inputs=_make(_mask, _bias),
        forward=_forward, reference=_reference, shapes=SHAPES, backward=_backward,
        grad_inputs=("q", "k", "v") + (("bias",) if _bias != "none" else ()),
        grad_outputs=("out",), grad_shapes=GRAD_SHAPES,
        tol={np.float32: (2e-5, 1e-4), np.float64: (1e-12, 1e-10)}))
