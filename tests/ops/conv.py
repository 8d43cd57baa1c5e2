"""Registry specs for the convolutions: conv2d (bias + activation fused, every stride / padding /
dilation / groups combination below), conv1d as conv2d with H = 1, conv_transpose2d. Forward
against a plain NumPy float64 reference (one einsum per kernel tap), backward (dx, dw, db) against
finite differences. A shape is (B, C, H, W, O, (KH, KW), stride, padding, dilation, groups).
"""
import math

import numpy as np

import hepnn._core as core
from tests.registry import OpSpec
from tests.ops.linear import ACTS

SHAPES = [
    (1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1), 1),       # smallest
    (2, 3, 7, 9, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),       # same padding
    (3, 4, 11, 8, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2),      # mixed stride / dilation, 2 groups
    (2, 6, 9, 10, 9, (2, 3), (2, 3), (0, 2), (2, 1), 3),      # 3 groups, padding > 1
    (5, 3, 13, 13, 7, (1, 1), (1, 1), (0, 0), (1, 1), 1),     # pointwise (no im2col)
    (2, 4, 6, 5, 4, (1, 1), (2, 2), (1, 0), (1, 1), 4),       # 1x1 strided, depthwise
    (9, 1, 17, 17, 8, (5, 5), (1, 1), (2, 2), (1, 1), 1),     # one channel, 9 samples (> chunks)
    (3, 2, 1, 21, 3, (1, 4), (1, 2), (0, 1), (1, 2), 1),      # conv1d as H = 1
    (3, 1, 12, 11, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),     # direct path (K = 9), full-width taps
    (2, 2, 10, 9, 4, (2, 3), (2, 1), (1, 2), (2, 1), 2),      # direct path, row stride 2
    (2, 1, 7, 45, 3, (1, 5), (1, 1), (0, 3), (1, 2), 1),      # direct conv1d, > 32 outputs per row
]


def conv2d_ref(x, w, b, stride, padding, dilation, groups):
    B, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((B, O, OH, OW))
    Og = O // groups
    for g in range(groups):
        for kh in range(KH):
            for kw in range(KW):
                patch = xp[:, g * Cg:(g + 1) * Cg, kh * dh:kh * dh + sh * (OH - 1) + 1:sh,
                           kw * dw:kw * dw + sw * (OW - 1) + 1:sw]
                y[:, g * Og:(g + 1) * Og] += np.einsum("bchw,oc->bohw", patch, w[g * Og:(g + 1) * Og, :, kh, kw])
    if b is not None:
        y += b[None, :, None, None]
    return y


def conv_transpose2d_ref(x, w, b, stride, padding, output_padding, dilation, groups):
    B, Cin, H, W = x.shape
    _, Cg, KH, KW = w.shape
    (sh, sw), (ph, pw), (dh, dw), (oph, opw) = stride, padding, dilation, output_padding
    OH = (H - 1) * sh - 2 * ph + dh * (KH - 1) + oph + 1
    OW = (W - 1) * sw - 2 * pw + dw * (KW - 1) + opw + 1
    full = np.zeros((B, Cg * groups, max((H - 1) * sh + dh * (KH - 1) + 1, ph + OH),
                     max((W - 1) * sw + dw * (KW - 1) + 1, pw + OW)))
    Ig = Cin // groups
    for g in range(groups):
        for kh in range(KH):
            for kw in range(KW):
                full[:, g * Cg:(g + 1) * Cg, kh * dh:kh * dh + sh * (H - 1) + 1:sh,
                     kw * dw:kw * dw + sw * (W - 1) + 1:sw] += np.einsum(
                    "bihw,ic->bchw", x[:, g * Ig:(g + 1) * Ig], w[g * Ig:(g + 1) * Ig, :, kh, kw])
    y = full[:, :, ph:ph + OH, pw:pw + OW]
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def _conv_spec(act, bias, i, shape, grad):
    fn, alpha = ACTS[act]
    hyp = (shape[6], shape[7], shape[8], shape[9])
    needs_z = core.act_needs_preactivation(act)

    def make_inputs(rng, shape):
        B, C, H, W, O, (KH, KW), _, _, _, g = shape
        inputs = {"x": rng.standard_normal((B, C, H, W)),
                  "w": rng.standard_normal((O, C // g, KH, KW)) / math.sqrt(C // g * KH * KW)}
        if bias:
            inputs["b"] = rng.standard_normal(O)
        return inputs

    def reference(inputs):
        z = conv2d_ref(inputs["x"], inputs["w"], inputs.get("b"), *hyp)
        return {"y": fn(z, alpha), "z": z}

    def forward(inputs, be):
        x, w = inputs["x"], inputs["w"]
        s, p, d, g = hyp
        ref_shape = conv2d_ref(np.zeros((1,) + tuple(x.shape[1:])), np.zeros(w.shape), None, s, p, d, g).shape
        out_shape = (x.shape[0],) + ref_shape[1:]
        y, z = be.empty(out_shape, x.dtype), be.empty(out_shape, x.dtype)
        core.conv2d_forward(x, w, inputs.get("b"), y, z, s, p, d, g, act=act, alpha=alpha, stream=be.stream)
        return {"y": y, "z": z}

    def backward(inputs, grads, be):
        x, w = inputs["x"], inputs["w"]
        out = forward(inputs, be)
        dx, dw = be.empty(x.shape, x.dtype), be.empty(w.shape, w.dtype)
        db = be.empty((w.shape[0],), x.dtype) if bias else None
        core.conv2d_backward(x, w, out["z"] if needs_z else None, out["y"], grads["y"], dx, dw, db,
                             *hyp, act=act, alpha=alpha, stream=be.stream)
        res = {"x": dx, "w": dw}
        if bias:
            res["b"] = db
        return res

    return OpSpec(
        name=f"conv2d_{act}" + ("" if bias else "_nobias") + f"_{i}",
        make_inputs=make_inputs, forward=forward, reference=reference, backward=backward if grad else None,
        grad_inputs=("x", "w", "b") if bias else ("x", "w"), grad_outputs=("y",),
        shapes=[shape], tol={np.float32: (1e-4, 1e-4), np.float64: (1e-12, 1e-10)},
    )


# (B, Cin, H, W, Cout, (KH, KW), stride, padding, output_padding, dilation, groups)
T_SHAPES = [
    (1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    (2, 3, 5, 4, 4, (2, 2), (2, 2), (0, 0), (0, 0), (1, 1), 1),     # the 2x upsampler
    (3, 4, 4, 5, 6, (3, 3), (2, 1), (1, 1), (1, 0), (1, 1), 2),     # output_padding, groups
    (2, 6, 3, 6, 3, (3, 2), (3, 2), (2, 0), (2, 1), (1, 2), 3),     # dilation, padding > 1
    (9, 5, 6, 6, 2, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1),     # pointwise
]


def _transpose_spec(bias, i, shape, grad):
    hyp = (shape[6], shape[7], shape[8], shape[9], shape[10])

    def make_inputs(rng, shape):
        B, Cin, H, W, Cout, (KH, KW), *_, g = shape
        inputs = {"x": rng.standard_normal((B, Cin, H, W)),
                  "w": rng.standard_normal((Cin, Cout // g, KH, KW)) / math.sqrt(Cin // g * KH * KW)}
        if bias:
            inputs["b"] = rng.standard_normal(Cout)
        return inputs

    def reference(inputs):
        return {"y": conv_transpose2d_ref(inputs["x"], inputs["w"], inputs.get("b"), *hyp)}

    def forward(inputs, be):
        x, w = inputs["x"], inputs["w"]
        s, p, op, d, g = hyp
        shape = core.conv_transpose2d_output_size(list(x.shape), list(w.shape), s, p, op, d, g)
        y = be.empty(tuple(shape), x.dtype)
        core.conv_transpose2d_forward(x, w, inputs.get("b"), y, s, p, op, d, g, stream=be.stream)
        return {"y": y}

    def backward(inputs, grads, be):
        x, w = inputs["x"], inputs["w"]
        dx, dw = be.empty(x.shape, x.dtype), be.empty(w.shape, w.dtype)
        db = be.empty((grads["y"].shape[1],), x.dtype) if bias else None
        core.conv_transpose2d_backward(x, w, grads["y"], dx, dw, db, *hyp, stream=be.stream)
        res = {"x": dx, "w": dw}
        if bias:
            res["b"] = db
        return res

    return OpSpec(
        name="conv_transpose2d" + ("" if bias else "_nobias") + f"_{i}",
        make_inputs=make_inputs, forward=forward, reference=reference, backward=backward if grad else None,
        grad_inputs=("x", "w", "b") if bias else ("x", "w"), grad_outputs=("y",),
        shapes=[shape], tol={np.float32: (1e-4, 1e-4), np.float64: (1e-12, 1e-10)},
    )


# Hyper-parameters differ per shape, so each shape is its own spec (the closure holds them).
# Gradients: every shape for act none with bias; two shapes for the other variants.
SPECS = ([_conv_spec(act, bias, i, shape, grad=(act == "none" and bias) or i in (2, 3, 8))
          for act, bias in [("none", True), ("none", False), ("relu", True), ("gelu", True),
                            ("sigmoid", False), ("leaky_relu", True)]
          for i, shape in enumerate(SHAPES)]
         + [_transpose_spec(bias, i, shape, grad=bias or i == 2)
            for bias in (True, False) for i, shape in enumerate(T_SHAPES)])
