"""Emitters of the convolution and pooling layers (Conv1d/2d, ConvTranspose2d, Max/AvgPool1d/2d,
AdaptiveAvg/MaxPool, Flatten) as ONNX Conv, ConvTranspose, MaxPool, AveragePool, Global*Pool,
Flatten and Reshape. A fused activation is the next leaf in the chain, emitted after the Conv."""
from __future__ import annotations

from .. import nn
from ._emit import _host


def _refuse(scope, layer, why):
    return NotImplementedError(f"[onnx.export] {scope or '<model>'} ({type(layer).__name__}) {why}")


def _n(v, nd):
    return [int(v)] * nd if isinstance(v, int) else [int(i) for i in v]


def _conv_pads(layer, nd):
    if layer.padding == "valid":
        return [0] * 2 * nd
    if layer.padding == "same":  # torch puts the odd extra pad at the end
        total = [d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    return list(layer.padding) * 2


def _conv(g, scope, layer, x):
    nd = len(layer.kernel_size)
    pre = f"{scope}." if scope else ""
    inputs = [x, g.tensor(pre + "weight", _host(layer.weight))]
    if layer.bias is not None:
        inputs.append(g.tensor(pre + "bias", _host(layer.bias)))
    attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                 dilations=list(layer.dilation), group=int(layer.groups))
    if isinstance(layer, nn.ConvTranspose2d):
        attrs.update(pads=list(layer.padding) * 2, output_padding=list(layer.output_padding))
        return g.node(scope, "ConvTranspose", inputs, **attrs)
    return g.node(scope, "Conv", inputs, pads=_conv_pads(layer, nd), **attrs)


def _pool_nd(layer):
    return 1 if isinstance(layer, (nn.MaxPool1d, nn.AvgPool1d)) else 2


def _max_pool(g, scope, layer, x):  # return_indices and ceil_mode are refused by the table
    nd = _pool_nd(layer)
    return g.node(scope, "MaxPool", [x], kernel_shape=_n(layer.kernel_size, nd), strides=_n(layer.stride, nd),
                  pads=_n(layer.padding, nd) * 2, dilations=_n(layer.dilation, nd))


def _avg_pool(g, scope, layer, x):
    nd = _pool_nd(layer)
    k = _n(layer.kernel_size, nd)
    div = getattr(layer, "divisor_override", None)
    y = g.node(scope, "AveragePool", [x], kernel_shape=k, strides=_n(layer.stride, nd),
               pads=_n(layer.padding, nd) * 2,
               count_include_pad=int(bool(layer.count_include_pad) or div is not None))
    if div is not None:  # the window's zero-padded mean times its size, over the divisor
        y = g.node(scope, "Mul", [y, g.const(scope, "divisor", float(k[0] * k[-1] if nd == 2 else k[0]) / div)])
    return y


def _adaptive(op):
    def emit(g, scope, layer, x):
        spatial = list(g.shape[2:])
        size = layer.output_size
        size = [size] * len(spatial) if size is None or isinstance(size, int) else list(size)
        size = [n if s is None else int(s) for s, n in zip(size, spatial)]
        if all(s == 1 for s in size):
            return g.node(scope, f"Global{op}", [x])
        if size == spatial:
            return g.node(scope, "Identity", [x])
        if any(n % s for s, n in zip(size, spatial)):
            raise _refuse(scope, layer, f"pools {tuple(spatial)} to {tuple(size)}: ONNX has an exact "
                                        "form only when every input size is a multiple of the output size "
                                        "(or the output is 1, global pooling)")
        k = [n // s for s, n in zip(size, spatial)]  # equal windows: a plain pool with stride = kernel
        return g.node(scope, op, [x], kernel_shape=k, strides=k)
    return emit


def _flatten(g, scope, layer, x):
    rank = len(g.shape)
    start, end = layer.start_dim % rank, layer.end_dim % rank
    if start == 1 and end == rank - 1:
        return g.node(scope, "Flatten", [x], axis=1)
    if start > end:
        raise _refuse(scope, layer, f"has start_dim {layer.start_dim} after end_dim {layer.end_dim}")
    # Reshape: 0 copies the (possibly symbolic batch) leading dims, -1 the merged group, then the
    # fixed trailing sizes from the export check.
    shape = [0] * start + [-1] + [int(n) for n in g.shape[end + 1:]]
    return g.node(scope, "Reshape", [x, g.ints(scope, "shape", shape)])


EMITTERS = {
    nn.Conv1d: _conv, nn.Conv2d: _conv, nn.ConvTranspose2d: _conv,
    nn.MaxPool1d: _max_pool, nn.MaxPool2d: _max_pool,
    nn.AvgPool1d: _avg_pool, nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool1d: _adaptive("AveragePool"), nn.AdaptiveAvgPool2d: _adaptive("AveragePool"),
    nn.AdaptiveMaxPool2d: _adaptive("MaxPool"),
    nn.Flatten: _flatten,
}
