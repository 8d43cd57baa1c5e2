"""Registry specs for the GEMM: every transpose pair on odd and rectangular shapes, alpha/beta,
K = 0, blocks larger than one cache block (K > 256, N > 4080), batched with broadcast operands.
One spec per (trans_a, trans_b, alpha, beta); shapes are (M, K, N, batch_a, batch_b), batch 0 = a
2-D operand, batch 1 = a 3-D operand broadcast over the other's batch.
"""
import numpy as np

import hepnn._core as core
from tests.registry import OpSpec

TRANSPOSES = [(ta, tb) for ta in (False, True) for tb in (False, True)]


def _stored(rows, cols, trans, batch):
    shape = (cols, rows) if trans else (rows, cols)
    return ((batch,) if batch else ()) + shape


def _op(x, trans):
    return np.swapaxes(x, -1, -2) if trans else x


def _batch_shape(ba, bb):
    batch = max(ba, bb)
    return (batch,) if batch else ()


def _spec(ta, tb, alpha=1.0, beta=0.0, shapes=(), grad_shapes=None):
    """One transpose/alpha/beta combination; shapes are (M, K, N, batch_a, batch_b)."""

    def make_inputs(rng, shape):
        M, K, N, ba, bb = shape
        inputs = {
            "a": rng.standard_normal(_stored(M, K, ta, ba)),
            "b": rng.standard_normal(_stored(K, N, tb, bb)),
        }
        if beta != 0:
            inputs["c"] = rng.standard_normal(_batch_shape(ba, bb) + (M, N))
        return inputs

    def out_shape(inputs):
        a, b = inputs["a"], inputs["b"]
        M = a.shape[-1] if ta else a.shape[-2]
        N = b.shape[-2] if tb else b.shape[-1]
        batch = max(a.shape[0] if a.ndim == 3 else 0, b.shape[0] if b.ndim == 3 else 0)
        return ((batch,) if batch else ()) + (M, N)

    def reference(inputs):
        out = alpha * np.matmul(_op(inputs["a"], ta), _op(inputs["b"], tb))
        if beta != 0:
            out = out + beta * inputs["c"]
        return {"out": out}

    def forward(inputs, be):
        out = be.empty(out_shape(inputs), inputs["a"].dtype)
        if beta != 0:
            out[...] = inputs["c"]
        core.gemm(inputs["a"], inputs["b"], out, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta,
                  stream=be.stream)
        return {"out": out}

    def backward(inputs, grads, be):
        """Gradients of sum(g * out) (2-D), written with the kernel itself: every transpose
        pair is exercised a second time."""
        a, b, g = inputs["a"], inputs["b"], grads["out"]
        da = be.empty(a.shape, a.dtype)
        db = be.empty(b.shape, b.dtype)
        if not ta:  # dA = g @ op(B)^T
            core.gemm(g, b, da, trans_b=not tb, alpha=alpha, stream=be.stream)
        else:  # dA^T = op(B) @ g^T
            core.gemm(b, g, da, trans_a=tb, trans_b=True, alpha=alpha, stream=be.stream)
        if not tb:  # dB = op(A)^T @ g
            core.gemm(a, g, db, trans_a=not ta, alpha=alpha, stream=be.stream)
        else:  # dB^T = g^T @ op(A)
            core.gemm(g, a, db, trans_a=True, trans_b=ta, alpha=alpha, stream=be.stream)
        out = {"a": da, "b": db}
        if beta != 0:
            out["c"] = beta * g
        return out

    batched = any(s[3] or s[4] for s in shapes)
    name = "gemm_" + ("t" if ta else "n") + ("t" if tb else "n")
    if alpha != 1.0 or beta != 0.0:
        name += f"_alpha{alpha:g}_beta{beta:g}"
    if batched:
        name += "_batched"
    return OpSpec(
        name=name,
        make_inputs=make_inputs,
        forward=forward,
        reference=reference,
        backward=None if batched else backward,
        grad_inputs=() if batched else (("a", "b", "c") if beta != 0 else ("a", "b")),
        shapes=list(shapes),
        grad_shapes=grad_shapes,
        tol={np.float32: (2e-4, 2e-4), np.float64: (1e-11, 1e-10)},
    )


# M, K, N, batch_a, batch_b. 257 crosses the K block (256); N = 4100 crosses the N block (4080)
# and, with M = 9, makes two threads split N rather than M. M = 1 or N = 1 take the
# matrix-vector path (threaded when large).
SHAPES = [(1, 1, 1, 0, 0), (7, 33, 5, 0, 0), (33, 257, 17, 0, 0), (257, 65, 129, 0, 0),
          (5, 0, 3, 0, 0), (9, 300, 4100, 0, 0), (300, 600, 70, 0, 0),
          (33, 257, 1, 0, 0), (1, 65, 129, 0, 0), (2000, 300, 1, 0, 0), (1, 300, 2000, 0, 0)]
GRAD_SHAPES = [(7, 5, 3, 0, 0), (1, 9, 4, 0, 0), (6, 7, 1, 0, 0)]
BATCHED = [(7, 33, 5, 3, 3), (7, 33, 5, 3, 0), (7, 33, 5, 0, 3), (33, 17, 9, 4, 1), (5, 9, 7, 1, 4),
           (257, 65, 129, 2, 2), (1, 33, 7, 3, 3), (7, 33, 1, 3, 0)]

SPECS = [_spec(ta, tb, shapes=SHAPES, grad_shapes=GRAD_SHAPES) for ta, tb in TRANSPOSES]
SPECS += [_spec(ta, tb, alpha=-1.5, beta=0.5, shapes=SHAPES[:4] + SHAPES[7:9], grad_shapes=GRAD_SHAPES)
          for ta, tb in TRANSPOSES]
SPECS += [_spec(False, True, alpha=0.0, beta=2.0, shapes=SHAPES[1:3])]
SPECS += [_spec(ta, tb, shapes=BATCHED) for ta, tb in TRANSPOSES]
SPECS += [_spec(True, False, alpha=2.0, beta=-1.0, shapes=BATCHED)]
