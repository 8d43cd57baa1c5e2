"""Registry specs for pooling over NCHW planes: max_pool2d (values and int64 indices, backward
through max_pool_backward), avg_pool2d (count_include_pad on and off), adaptive_avg_pool2d and
adaptive_max_pool2d (global pooling included). NumPy float64 references written as plain loops.
A max/avg shape is (B, C, H, W, (KH, KW), stride, padding, dilation); adaptive: (B, C, H, W, OH, OW).
"""
import numpy as np

import hepnn._core as core
from tests.registry import OpSpec

POOL_SHAPES = [
    (1, 1, 2, 2, (2, 2), (2, 2), (0, 0), (1, 1)),
    (2, 3, 9, 8, (2, 2), (2, 2), (0, 0), (1, 1)),   # the CNN's 2x2 pool, odd H
    (2, 2, 9, 11, (3, 3), (2, 2), (1, 1), (1, 1)),  # overlapping windows with padding
    (3, 2, 7, 10, (3, 2), (1, 3), (1, 1), (2, 1)),  # dilation, stride 1
    (2, 3, 1, 13, (1, 3), (1, 2), (0, 1), (1, 1)),  # max_pool1d as H = 1
]
ADAPTIVE_SHAPES = [(1, 1, 1, 1, 1, 1), (2, 3, 7, 9, 1, 1), (2, 2, 10, 7, 4, 3), (3, 2, 5, 5, 7, 2)]


def _out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def max_pool_ref(x, kernel, stride, padding, dilation):
    B, C, H, W = x.shape
    OH, OW = (_out(H, kernel[0], stride[0], padding[0], dilation[0]), _out(W, kernel[1], stride[1], padding[1], dilation[1]))
    y, idx = np.empty((B, C, OH, OW)), np.empty((B, C, OH, OW), dtype=np.int64)
    for b in range(B):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, arg = -np.inf, -1
                    for kh in range(kernel[0]):
                        for kw in range(kernel[1]):
                            ih = oh * stride[0] - padding[0] + kh * dilation[0]
                            iw = ow * stride[1] - padding[1] + kw * dilation[1]
                            if 0 <= ih < H and 0 <= iw < W and (arg < 0 or x[b, c, ih, iw] > best):
                                best, arg = x[b, c, ih, iw], ih * W + iw
                    y[b, c, oh, ow], idx[b, c, oh, ow] = best, arg
    return y, idx


def avg_pool_ref(x, kernel, stride, padding, include_pad):
    B, C, H, W = x.shape
    OH, OW = _out(H, kernel[0], stride[0], padding[0], 1), _out(W, kernel[1], stride[1], padding[1], 1)
    y = np.empty((B, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * stride[0] - padding[0], ow * stride[1] - padding[1]
            h1, w1 = min(h0 + kernel[0], H + padding[0]), min(w0 + kernel[1], W + padding[1])
            full = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            win = x[:, :, h0:h1, w0:w1]
            y[:, :, oh, ow] = win.sum(axis=(2, 3)) / (full if include_pad else win.shape[2] * win.shape[3])
    return y


def _bounds(i, n, out):
    return (i * n) // out, -((-(i + 1) * n) // out)


def adaptive_ref(x, OH, OW, reduce):
    B, C, H, W = x.shape
    y = np.empty((B, C, OH, OW))
    idx = np.empty((B, C, OH, OW), dtype=np.int64)
    for oh in range(OH):
        h0, h1 = _bounds(oh, H, OH)
        for ow in range(OW):
            w0, w1 = _bounds(ow, W, OW)
            win = x[:, :, h0:h1, w0:w1]
            if reduce == "mean":
                y[:, :, oh, ow] = win.mean(axis=(2, 3))
            else:
                flat = win.reshape(B, C, -1)
                y[:, :, oh, ow] = flat.max(axis=2)
                a = flat.argmax(axis=2)
                idx[:, :, oh, ow] = (h0 + a // (w1 - w0)) * W + w0 + a % (w1 - w0)
    return y, idx


def _x(rng, shape):
    # Distinct values: no ties, so the maxima and finite differences are well defined.
    n = int(np.prod(shape[:4]))
    return (rng.permutation(n).reshape(shape[:4]) + rng.random(shape[:4]) * 0.5) / n * 4 - 2


def _max_spec(i, shape):
    hyp = shape[4:]

    def forward(inputs, be):
        x = inputs["x"]
        y_shape, _ = [a.shape for a in max_pool_ref(np.zeros((1, 1) + tuple(x.shape[2:])), *hyp)]
        out_shape = tuple(x.shape[:2]) + y_shape[2:]
        y, idx = be.empty(out_shape, x.dtype), be.empty(out_shape, np.int64)
        core.max_pool2d_forward(x, y, idx, *hyp, stream=be.stream)
        return {"y": y, "indices": idx}

    def backward(inputs, grads, be):
        x = inputs["x"]
        out = forward(inputs, be)
        dx = be.empty(x.shape, x.dtype)
        core.max_pool_backward(grads["y"], out["indices"], dx, stream=be.stream)
        return {"x": dx}

    def reference(inputs):
        y, idx = max_pool_ref(inputs["x"], *hyp)
        return {"y": y, "indices": idx}

    return OpSpec(name=f"max_pool2d_{i}", make_inputs=lambda rng, s: {"x": _x(rng, s)}, forward=forward,
                  reference=reference, backward=backward, grad_inputs=("x",), grad_outputs=("y",),
                  shapes=[shape], tol={np.float32: (0, 0), np.float64: (0, 0)})


def _avg_spec(i, shape, include_pad):
    hyp = (shape[4], shape[5], shape[6])

    def forward(inputs, be):
        x = inputs["x"]
        ref = avg_pool_ref(np.zeros((1, 1) + tuple(x.shape[2:])), *hyp, include_pad)
        y = be.empty(tuple(x.shape[:2]) + ref.shape[2:], x.dtype)
        core.avg_pool2d_forward(x, y, *hyp, include_pad, stream=be.stream)
        return {"y": y}

    def backward(inputs, grads, be):
        dx = be.empty(inputs["x"].shape, inputs["x"].dtype)
        core.avg_pool2d_backward(grads["y"], dx, *hyp, include_pad, stream=be.stream)
        return {"x": dx}

    return OpSpec(name=f"avg_pool2d_{'pad' if include_pad else 'nopad'}_{i}",
                  make_inputs=lambda rng, s: {"x": _x(rng, s)}, forward=forward,
                  reference=lambda inp: {"y": avg_pool_ref(inp["x"], *hyp, include_pad)},
                  backward=backward, grad_inputs=("x",), shapes=[shape],
                  tol={np.float32: (1e-6, 1e-5), np.float64: (1e-14, 1e-12)})


def _adaptive_spec(reduce):
    def forward(inputs, be, shape):
        x = inputs["x"]
        out_shape = tuple(x.shape[:2]) + shape[4:]
        y = be.empty(out_shape, x.dtype)
        if reduce == "mean":
            core.adaptive_avg_pool2d_forward(x, y, stream=be.stream)
            return {"y": y}
        idx = be.empty(out_shape, np.int64)
        core.adaptive_max_pool2d_forward(x, y, idx, stream=be.stream)
        return {"y": y, "indices": idx}

    specs = []
    for i, shape in enumerate(ADAPTIVE_SHAPES):
        def fwd(inputs, be, shape=shape):
            return forward(inputs, be, shape)

        def backward(inputs, grads, be, fwd=fwd):
            dx = be.empty(inputs["x"].shape, inputs["x"].dtype)
            if reduce == "mean":
                core.adaptive_avg_pool2d_backward(grads["y"], dx, stream=be.stream)
            else:
                core.max_pool_backward(grads["y"], fwd(inputs, be)["indices"], dx, stream=be.stream)
            return {"x": dx}

        def reference(inputs, shape=shape):
            y, idx = adaptive_ref(inputs["x"], shape[4], shape[5], reduce)
            return {"y": y} if reduce == "mean" else {"y": y, "indices": idx}

        specs.append(OpSpec(name=f"adaptive_{'avg' if reduce == 'mean' else 'max'}_pool2d_{i}",
                            make_inputs=lambda rng, s: {"x": _x(rng, s)}, forward=fwd, reference=reference,
                            backward=backward, grad_inputs=("x",), grad_outputs=("y",), shapes=[shape],
                            tol={np.float32: (1e-6, 1e-5), np.float64: (1e-14, 1e-12)}))
    return specs


SPECS = ([_max_spec(i, s) for i, s in enumerate(POOL_SHAPES)]
         + [_avg_spec(i, s, inc) for inc in (True, False) for i, s in enumerate(POOL_SHAPES) if s[7] == (1, 1)]
         + _adaptive_spec("mean") + _adaptive_spec("max"))
