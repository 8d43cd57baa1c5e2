"""Flattens a hepnn Module tree into the ordered list of leaf layers that ONNX export emits, and
checks numerically that every custom Module's forward really is "apply my children in order"."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import no_grad

# Leaf layers, most specific first; a subclass counts only when it keeps the base forward.
LEAF_TYPES = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.Sigmoid, nn.Tanh,
              nn.Softplus, nn.Softmax, nn.LogSoftmax, nn.Dropout)

SUPPORTED_TEXT = ("Linear, ReLU, LeakyReLU, ELU, SELU, GELU, Sigmoid, Tanh, Softplus, Softmax, "
                  "LogSoftmax and Dropout, inside Sequential or Module subclasses whose forward "
                  "applies their registered children in order")


def leaf_type(module):
    """The supported base class `module` is exported as, or None."""
    for cls in LEAF_TYPES:
        if isinstance(module, cls) and type(module).forward is cls.forward:
            return cls
    return None


def _is_plain_sequential(module):
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _label(path, module):
    return f"{path or '<model>'} ({type(module).__name__})"


def flatten(model):
    """[(path, leaf module)] in application order, by structure only (no computation).

    Raises NotImplementedError for a layer that is neither a supported leaf nor a container.
    """
    out = []

    def visit(path, m):
        if leaf_type(m) is not None:
            out.append((path, m))
            return
        if not m._modules:
            raise NotImplementedError(
                f"[onnx.export] layer {_label(path, m)} is not supported; supported are {SUPPORTED_TEXT}")
        own = [k for k, p in m._parameters.items() if p is not None]
        if own:
            raise NotImplementedError(
                f"[onnx.export] {_label(path, m)} holds its own parameters {own}, which a "
                f"children-in-order export cannot use; supported are {SUPPORTED_TEXT}")
        for name, child in m._modules.items():
            if child is not None:
                visit(f"{path}.{name}" if path else name, child)

    visit("", model)
    return out


def check_chain(model, inputs, rtol, atol):
    """Runs `model` on each input and checks that, at every custom (non-Sequential) Module, its
    forward equals its children applied in order. Returns the model's output for inputs[0].

    A forward that does anything else (skip connections, extra ops, another order) raises
    NotImplementedError naming the module type. Layer shape errors inside plain Sequentials
    raise ValueError.
    """
    def run(path, m, x, in_custom=False):
        if leaf_type(m) is not None:
            try:
                return m(x)
            except (ValueError, TypeError, IndexError) as e:
                raise ValueError(f"[onnx.export] layer {_label(path, m)} rejects its input of shape "
                                 f"{tuple(x.shape)}: {e}") from e
        children = [(f"{path}.{k}" if path else k, c) for k, c in m._modules.items() if c is not None]
        if isinstance(m, nn.ModuleList) and not in_custom:
            raise NotImplementedError(
                f"[onnx.export] {_label(path, m)} has no forward of its own; put its layers in a "
                f"Sequential, or in a Module whose forward applies them in order")
        if _is_plain_sequential(m) or isinstance(m, nn.ModuleList):
            y = x
            for cpath, c in children:
                y = run(cpath, c, y, in_custom and isinstance(m, nn.ModuleList))
            return y
        refuse = NotImplementedError(
            f"[onnx.export] the forward of {_label(path, m)} is not its children applied in "
            f"order, so it cannot be exported; supported are {SUPPORTED_TEXT}")
        try:
            want = m(x)
        except Exception as e:  # whatever the custom forward raised, it is not a plain chain
            raise refuse from e
        try:
            y = x
            for cpath, c in children:
                y = run(cpath, c, y, in_custom=True)
        except ValueError as e:  # children that do not chain by shape: the forward is not a chain
            raise refuse from e
        a, b = _numpy(want), _numpy(y)
        scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
        if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol * scale):
            raise refuse
        return want

    with no_grad():
        outs = [run("", model, x) for x in inputs]
    return _numpy(outs[0])


def _numpy(t):
    d = getattr(t, "data", t)
    if hasattr(d, "get") and type(d).__module__.startswith("cupy"):
        d = d.get()
    return np.asarray(d)
