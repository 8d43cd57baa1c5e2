"""Turns the flattened leaf layers of a hepnn model into ONNX nodes and initializers, one small
emitter per layer type, following the PyTorch exporter's layouts (Gemm with transB=1)."""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ._walk import leaf_type


class GraphBuilder:
    """Collects nodes and initializers; names follow the PyTorch exporter ("/0/Gemm", "0.weight")."""

    def __init__(self, onnx, dtype, opset, rank):
        self.onnx, self.dtype, self.opset, self.rank = onnx, np.dtype(dtype), opset, rank
        self.nodes, self.initializers, self._used = [], [], set()

    def _unique(self, base):
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def tensor(self, name, value):
        """Adds an initializer with the model's dtype; returns its name."""
        arr = np.ascontiguousarray(np.asarray(value, dtype=self.dtype))
        name = self._unique(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def const(self, scope, label, value):
        """A scalar initializer for a pattern's constant, named after the layer's scope."""
        prefix = "/" + scope.replace(".", "/") if scope else ""
        return self.tensor(f"{prefix}/{label}", value)

    def node(self, scope, op, inputs, **attrs):
        """Adds one node; returns the name of its single output."""
        prefix = "/" + scope.replace(".", "/") if scope else ""
        name = self._unique(f"{prefix}/{op}")
        out = f"{name}_output_0"
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out


def _params(layer):
    w = _host(layer.weight)
    b = None if layer.bias is None else _host(layer.bias)
    return w, b


def _host(p):
    d = p.detach().data
    if hasattr(d, "get") and type(d).__module__.startswith("cupy"):
        d = d.get()
    return np.asarray(d)


def _linear(g, scope, layer, x):
    w, b = _params(layer)
    pre = f"{scope}." if scope else ""
    inputs = [x, g.tensor(pre + "weight", w)]
    if b is not None:
        inputs.append(g.tensor(pre + "bias", b))
    return g.node(scope, "Gemm", inputs, alpha=1.0, beta=1.0, transB=1)


def _gelu(g, scope, layer, x):
    if g.opset >= 20:
        return g.node(scope, "Gelu", [x], approximate=layer.approximate)
    if layer.approximate == "none":
        # x * 0.5 * (1 + erf(x / sqrt(2))), the opset < 20 pattern of the PyTorch exporter
        t = g.node(scope, "Div", [x, g.const(scope, "sqrt2", math.sqrt(2.0))])
        t = g.node(scope, "Erf", [t])
    else:
        # x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
        x3 = g.node(scope, "Mul", [g.node(scope, "Mul", [x, x]), x])
        t = g.node(scope, "Mul", [x3, g.const(scope, "c", 0.044715)])
        t = g.node(scope, "Add", [x, t])
        t = g.node(scope, "Mul", [t, g.const(scope, "sqrt2pi", math.sqrt(2.0 / math.pi))])
        t = g.node(scope, "Tanh", [t])
    t = g.node(scope, "Add", [t, g.const(scope, "one", 1.0)])
    t = g.node(scope, "Mul", [x, t])
    return g.node(scope, "Mul", [t, g.const(scope, "half", 0.5)])


def _softmax(op):
    def emit(g, scope, layer, x):
        dim = int(layer.dim)
        if not -g.rank <= dim < g.rank:
            raise ValueError(f"[onnx.export] {type(layer).__name__} at {scope or '<model>'} has "
                             f"dim={dim}, out of range for a {g.rank}-D input")
        return g.node(scope, op, [x], axis=dim)
    return emit


def _plain(op):
    return lambda g, scope, layer, x: g.node(scope, op, [x])


_EMITTERS = {
    nn.Linear: _linear,
    nn.ReLU: _plain("Relu"),
    nn.LeakyReLU: lambda g, s, m, x: g.node(s, "LeakyRelu", [x], alpha=float(m.negative_slope)),
    nn.ELU: lambda g, s, m, x: g.node(s, "Elu", [x], alpha=float(m.alpha)),
    nn.SELU: _plain("Selu"),  # ONNX's default alpha and gamma are torch's constants
    nn.GELU: _gelu,
    nn.Sigmoid: _plain("Sigmoid"),
    nn.Tanh: _plain("Tanh"),
    nn.Softplus: _plain("Softplus"),
    nn.Softmax: _softmax("Softmax"),
    nn.LogSoftmax: _softmax("LogSoftmax"),
    nn.Dropout: lambda g, s, m, x: x,  # identity at inference
}


def emit_layers(g, layers, x):
    """Emits every (scope, layer) in order starting from value `x`; returns the last value name."""
    for scope, layer in layers:
        x = _EMITTERS[leaf_type(layer)](g, scope, layer, x)
    return x
