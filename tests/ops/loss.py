"""Registry specs of the fused losses (mse, bce on logits, cross-entropy): every reduction, with and
without per-sample weights, against NumPy float64 formulas; the kernel's gradient output is checked
against the reference and, through `backward`, against finite differences of the loss value."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

REDUCTIONS = ("mean", "sum", "none")

# B in (1, 7, 33, 257, 1000+); the 1000+ sizes exceed one 16384-element block, so the
# threaded, blocked reduction runs. (33,) is a 1-D prediction, treated as (33, 1).
ELEMENTWISE_SHAPES = [(7, 3), (1, 1), (33,), (33, 1), (257, 3), (1001, 1), (7000, 3), (20001, 1)]
CE_SHAPES = [(7, 5), (1, 2), (33, 11), (257, 5), (1001, 2), (3001, 11), (20001, 2)]


# ---- NumPy float64 references, written from the definitions ----------------------------------
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _mse_elem(p, t):
    return (p - t) ** 2, 2.0 * (p - t)


def _bce_elem(x, t):
    # -t log s(x) - (1-t) log(1-s(x)) = log(1 + e^x) - t x
    return np.logaddexp(0.0, x) - t * x, _sigmoid(x) - t


def _as_2d(a):
    return a.reshape(a.shape[0], -1)


def _reduce_ref(l, dl, w, reduction, shape):
    """l, dl: (B, K) elementwise losses and derivatives; K = F (mse/bce) or 1 (CE sample loss)."""
    B, K = l.shape
    wv = np.ones(B) if w is None else w
    if reduction == "none":
        return {"out": (wv[:, None] * l).reshape(shape), "grad": wv[:, None] * dl}
    if reduction == "sum":
        return {"loss": np.array([np.sum(wv[:, None] * l)]), "grad": wv[:, None] * dl}
    if w is None:
        return {"loss": np.array([np.mean(l)]), "grad": dl / l.size}
    W = np.sum(w)
    return {"loss": np.array([np.sum(w * l.mean(axis=1)) / W]), "grad": w[:, None] * dl / (K * W)}


def _elementwise_ref(elem, reduction, weighted):
    def reference(inp):
        shape = inp["pred"].shape
        l, dl = elem(_as_2d(inp["pred"]), _as_2d(inp["target"]))
        r = _reduce_ref(l, dl, inp["weight"] if weighted else None, reduction, shape)
        r["grad"] = r["grad"].reshape(shape)
        return r

    return reference


def _ce_ref(reduction, weighted):
    def reference(inp):
        x, y = inp["pred"], inp["labels"]
        lse = np.logaddexp.reduce(x, axis=1)
        l = (lse - x[np.arange(len(y)), y])[:, None]
        dl = np.exp(x - lse[:, None])
        dl[np.arange(len(y)), y] -= 1.0
        B = x.shape[0]
        wv = np.ones(B) if not weighted else inp["weight"]
        if reduction == "none":
            return {"out": wv * l[:, 0], "grad": wv[:, None] * dl}
        if reduction == "sum":
            return {"loss": np.array([np.sum(wv * l[:, 0])]), "grad": wv[:, None] * dl}
        return {"loss": np.array([np.sum(wv * l[:, 0]) / np.sum(wv)]), "grad": wv[:, None] * dl / np.sum(wv)}

    return reference


# ---- inputs ------------------------------------------------------------------------------------
def _weights(rng, B):
    return rng.uniform(0.2, 2.0, B)


def _mse_inputs(rng, shape):
    return {"pred": rng.standard_normal(shape), "target": rng.standard_normal(shape), "weight": _weights(rng, shape[0])}


def _bce_inputs(rng, shape):
    return {"pred": 2.0 * rng.standard_normal(shape), "target": rng.uniform(0.0, 1.0, shape), "weight": _weights(rng, shape[0])}


def _bce_extreme_inputs(rng, shape):
    # Logits near +-80: exp(80) overflows float32, so only the stable formula survives.
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(70.0, 80.0, shape)
    return {"pred": x, "target": rng.choice([0.0, 0.25, 1.0], size=shape), "weight": _weights(rng, shape[0])}


def _ce_inputs(rng, shape):
    B, C = shape
    return {"pred": 2.0 * rng.standard_normal(shape), "labels": rng.integers(0, C, B).astype(np.int64),
            "weight": _weights(rng, B)}


def _ce_extreme_inputs(rng, shape):
    B, C = shape
    x = rng.uniform(-80.0, 80.0, shape)
    return {"pred": x, "labels": rng.integers(0, C, B).astype(np.int64), "weight": _weights(rng, B)}


# ---- kernel calls ------------------------------------------------------------------------------
def _call(kernel, second, reduction, weighted, inp, be):
    pred = inp["pred"]
    per_sample = pred.shape if kernel != _core.cross_entropy_loss else (pred.shape[0],)
    out = be.empty(per_sample, pred.dtype) if reduction == "none" else None
    grad = be.empty(pred.shape, pred.dtype)
    loss = be.empty((1,), pred.dtype)
    kernel(pred, inp[second], inp["weight"] if weighted else None, reduction, out, grad, loss, be.stream)
    res = {"grad": grad}
    if reduction == "none":
        res["out"] = out
        # NOTE: the contract writes 0 to `loss` for "none"; checked here so it cannot go stale.
        assert float(be.numpy(loss)[0]) == 0.0
    else:
        res["loss"] = loss
    return res


def _backward(kernel, second, reduction, weighted):
    """d(sum_k gout_k * output_k)/d pred from the kernel's fused gradient: for mean/sum the loss is a
    scalar; for none, out depends only on its own element (mse, bce) or row (cross-entropy)."""

    def backward(inp, gouts, be):
        xp = be.xp
        g = _call(kernel, second, reduction, weighted, inp, be)["grad"]
        if reduction == "none":
            go = gouts["out"]
            return {"pred": g * (go if go.ndim == g.ndim else go.reshape(-1, 1))}
        return {"pred": g * xp.asarray(gouts["loss"])[0]}

    return backward


def _spec(name, kernel, second, make_inputs, reference, shapes, reduction, weighted, tol=None):
    wname = "weighted" if weighted else "unweighted"
    kw = {} if tol is None else {"tol": tol}
    return OpSpec(
        name=f"{name}[{reduction},{wname}]",
        make_inputs=make_inputs,
        forward=lambda inp, be: _call(kernel, second, reduction, weighted, inp, be),
        reference=reference,
        shapes=shapes,
        backward=_backward(kernel, second, reduction, weighted),
        grad_inputs=("pred",),
        grad_outputs=("out",) if reduction == "none" else ("loss",),
        grad_shapes=[shapes[0], shapes[2]],
        **kw,
    )


SPECS = []
for _red in REDUCTIONS:
    for _w in (False, True):
        SPECS.append(_spec("mse_loss", _core.mse_loss, "target", _mse_inputs,
                           _elementwise_ref(_mse_elem, _red, _w), ELEMENTWISE_SHAPES, _red, _w))
        SPECS.append(_spec("bce_with_logits_loss", _core.bce_with_logits_loss, "target", _bce_inputs,
                           _elementwise_ref(_bce_elem, _red, _w), ELEMENTWISE_SHAPES, _red, _w))
        SPECS.append(_spec("cross_entropy_loss", _core.cross_entropy_loss, "labels", _ce_inputs,
                           _ce_ref(_red, _w), CE_SHAPES, _red, _w))
    # Extreme logits: values of order 80 leave float32 about 1e-5 absolute precision.
    _xtol = {np.float32: (1e-4, 1e-5), np.float64: (1e-11, 1e-12)}
    SPECS.append(_spec("bce_with_logits_loss_extreme", _core.bce_with_logits_loss, "target", _bce_extreme_inputs,
                       _elementwise_ref(_bce_elem, _red, True), [(7, 3), (1, 1), (33, 1), (1001, 3)], _red, True,
                       tol=_xtol))
    SPECS.append(_spec("cross_entropy_loss_extreme", _core.cross_entropy_loss, "labels", _ce_extreme_inputs,
                       _ce_ref(_red, False), [(7, 5), (1, 2), (33, 11), (1001, 11)], _red, False, tol=_xtol))
