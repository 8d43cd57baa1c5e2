"""The graph builder the emitters share, and the emitters of Linear and the activations, following
the PyTorch exporter's layouts (Gemm with transB=1 on 2-D inputs, MatMul + Add on others)."""
from __future__ import annotations

import math

import numpy as np

from .. import nn


class GraphBuilder:
    """Collects nodes and initializers; names follow the PyTorch exporter ("/0/Gemm", "0.weight")."""

    def __init__(self, onnx, dtype, opset):
        self.onnx, self.dtype, self.opset = onnx, np.dtype(dtype), opset
        self.nodes, self.initializers, self._used = [], [], set()
        # Set by the walker before each emitter runs: the layer's input shape (from the export
        # check; dim 0 or 1 is the batch) and the name of the model's padding-mask input, if any.
        self.shape, self.mask = (), None

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

    def ints(self, scope, label, values):
        """An int64 initializer (shapes, axes, indices), named after the layer's scope."""
        prefix = "/" + scope.replace(".", "/") if scope else ""
        name = self._unique(f"{prefix}/{label}")
        arr = np.asarray(values, dtype=np.int64)
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

    def node_n(self, scope, op, inputs, n_out, **attrs):
        """Adds one node with n_out outputs; returns their names."""
        prefix = "/" + scope.replace(".", "/") if scope else ""
        name = self._unique(f"{prefix}/{op}")
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs

    def reduce(self, scope, op, x, axes, keepdims):
        """ReduceSum/Mean/Max over `axes`: the axes are an input from opset 13 (Sum) or 18 (the
        others) on, an attribute before."""
        if op == "ReduceSum" or self.opset >= 18:
            return self.node(scope, op, [x, self.ints(scope, "axes", list(axes))], keepdims=int(keepdims))
        return self.node(scope, op, [x], axes=list(axes), keepdims=int(keepdims))

    def matmul_add(self, scope, x, w, b, label="weight", bias_label="bias"):
        """x @ w.T + b for a (out, in) weight on an input of any rank."""
        pre = f"{scope}." if scope else ""
        y = self.node(scope, "MatMul", [x, self.tensor(pre + label, np.asarray(w).T)])
        return y if b is None else self.node(scope, "Add", [y, self.tensor(pre + bias_label, b)])

    def memo(self, key, make):
        """A value built once per graph (e.g. the attention bias of the padding mask)."""
        cache = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = make()
        return cache[key]


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
    if len(g.shape) != 2:  # Gemm is 2-D only; hepnn's Linear acts on the last dim of any rank
        return g.matmul_add(scope, x, w, b)
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
        rank = len(g.shape)
        if not -rank <= dim < rank:
            raise ValueError(f"[onnx.export] {type(layer).__name__} at {scope or '<model>'} has "
                             f"dim={dim}, out of range for a {rank}-D input")
        return g.node(scope, op, [x], axis=dim)
    return emit


def _plain(op):
    return lambda g, scope, layer, x: g.node(scope, op, [x])


EMITTERS = {
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

# Kernel activation names (a fused activation, EdgeConv's, TransformerEncoderLayer's) as modules.
_BY_KERNEL_NAME = {
    "relu": lambda a: nn.ReLU(), "leaky_relu": lambda a: nn.LeakyReLU(a), "elu": lambda a: nn.ELU(a),
    "selu": lambda a: nn.SELU(), "gelu": lambda a: nn.GELU(), "gelu_tanh": lambda a: nn.GELU("tanh"),
    "sigmoid": lambda a: nn.Sigmoid(), "tanh": lambda a: nn.Tanh(), "softplus": lambda a: nn.Softplus(),
}


def activation(g, scope, name, alpha, x):
    """Emits the activation a kernel knows by `name` (e.g. "relu", "gelu"); "none" is identity."""
    if name in (None, "none"):
        return x
    if name not in _BY_KERNEL_NAME:
        raise NotImplementedError(f"[onnx.export] activation {name!r} at {scope or '<model>'} has no ONNX form here")
    m = _BY_KERNEL_NAME[name](alpha)
    return EMITTERS[type(m)](g, scope, m, x)
