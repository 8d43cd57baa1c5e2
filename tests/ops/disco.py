"""Registry specs of the DisCo loss (_core.disco_loss): the weighted squared distance correlation
and its gradient with respect to x, against a NumPy float64 reference that builds the full B x B
distance matrices from the textbook definition; weighted and unweighted, power 1, 2 and 0.5."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

SHAPES = [(7,), (2,), (33,), (257,), (1001,)]


def dcorr2_reference(x, y, w=None, power=1.0):
    """dCorr^2(x, y) ** power with weights normalised to sum 1, from the full double-centred
    matrices: A_ij = a_ij - rowmean_i - colmean_j + grandmean (all p-weighted)."""
    p = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
    p = p / p.sum()

    def centred(v):
        a = np.abs(v[:, None] - v[None, :])
        row = a @ p           # sum_j p_j a_ij
        col = p @ a           # sum_i p_i a_ij (equal to row: a is symmetric; kept literal)
        return a - row[:, None] - col[None, :] + p @ a @ p

    A, B = centred(np.asarray(x, np.float64)), centred(np.asarray(y, np.float64))
    pp = np.outer(p, p)
    dcov_xy, dcov_xx, dcov_yy = np.sum(pp * A * B), np.sum(pp * A * A), np.sum(pp * B * B)
    return max(dcov_xy / np.sqrt(dcov_xx * dcov_yy), 0.0) ** power


def _inputs(rng, shape):
    # y depends on x (so the value is neither 0 nor 1) plus noise; weights of HEP-like spread.
    x = rng.standard_normal(shape)
    return {"x": x, "y": np.abs(x) + 0.7 * rng.standard_normal(shape), "weight": rng.uniform(0.2, 2.0, shape)}


def _call(inp, be, weighted, power, with_grad=True):
    x = inp["x"]
    loss = be.empty((1,), x.dtype)
    grad = be.empty(x.shape, x.dtype) if with_grad else None
    _core.disco_loss(x, inp["y"], inp["weight"] if weighted else None, loss, grad, power, be.stream)
    return {"loss": loss, "grad": grad} if with_grad else {"loss": loss}


def _spec(weighted, power):
    def reference(inp):
        return {"loss": np.array([dcorr2_reference(inp["x"], inp["y"], inp["weight"] if weighted else None, power)])}

    def backward(inp, gouts, be):
        g = _call(inp, be, weighted, power)["grad"]
        return {"x": g * be.xp.asarray(gouts["loss"])[0]}

    return OpSpec(
        name=f"disco_loss[{'weighted' if weighted else 'unweighted'},power={power}]",
        make_inputs=_inputs,
        # The value without a gradient buffer runs the single-pass path; the backward below runs
        # the two-pass path, and its value is checked against the same reference in the tests.
        forward=lambda inp, be: _call(inp, be, weighted, power, with_grad=False),
        reference=reference,
        shapes=SHAPES,
        backward=backward,
        grad_inputs=("x",),
        grad_outputs=("loss",),
        grad_shapes=[(7,), (33,), (257,)],
        # The value sums B^2 terms in double whatever the dtype; float32 only rounds inputs/output.
        tol={np.float32: (1e-6, 1e-5), np.float64: (1e-13, 1e-11)},
    )


def _spec_fused_value(weighted):
    """The value written by the fused value+gradient call equals the value-only call's."""
    return OpSpec(
        name=f"disco_loss_fused[{'weighted' if weighted else 'unweighted'}]",
        make_inputs=_inputs,
        forward=lambda inp, be: {"loss": _call(inp, be, weighted, 1.0)["loss"]},
        reference=lambda inp: {"loss": np.array([dcorr2_reference(inp["x"], inp["y"],
                                                                  inp["weight"] if weighted else None)])},
        shapes=SHAPES,
        tol={np.float32: (1e-6, 1e-5), np.float64: (1e-13, 1e-11)},
    )


SPECS = [_spec(w, p) for w in (False, True) for p in (1.0, 2.0, 0.5)]
SPECS += [_spec_fused_value(w) for w in (False, True)]
