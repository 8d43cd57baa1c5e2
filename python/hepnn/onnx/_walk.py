"""Flattens a hepnn Module tree into the ordered list of leaf layers that ONNX export emits, and
checks numerically that every custom Module's forward really is "apply my children in order"
(passing the padding mask, when the model takes one, to every child that accepts a mask).
The check also records each leaf's input shape, which some emitters need (Flatten, pools)."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import no_grad
from ._table import LEAVES, REFUSED, SUPPORTED_TEXT


def leaf_type(module):
    """The supported class `module` is exported as (its own class or a base whose forward it
    keeps), or None."""
    for cls in type(module).__mro__:
        if cls in LEAVES and type(module).forward is cls.forward:
            return cls
        if cls is nn.Module:
            break
    return None


def leaf_of(module):
    """The table entry (a _table.Leaf) of a supported leaf."""
    return LEAVES[leaf_type(module)]


def _is_plain_sequential(module):
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _label(path, module):
    return f"{path or '<model>'} ({type(module).__name__})"


def flatten(model):
    """[(path, leaf module, gets_mask)] in application order, by structure only (no computation).
    gets_mask: the model-level padding mask reaches this leaf (not through a plain Sequential,
    whose forward takes one input) and the leaf accepts one.

    Raises NotImplementedError for a layer that is neither a supported leaf nor a container.
    """
    out = []

    def visit(path, m, masked):
        if leaf_type(m) is not None:
            why = leaf_of(m).refuse(m)
            if why:
                raise NotImplementedError(f"[onnx.export] layer {_label(path, m)} {why}")
            out.append((path, m, masked and leaf_of(m).mask is not None))
            return
        refused = next((why for cls, why in REFUSED.items() if isinstance(m, cls)), None)
        if refused:
            raise NotImplementedError(f"[onnx.export] layer {_label(path, m)} cannot be exported: it {refused}")
        if not m._modules:
            raise NotImplementedError(
                f"[onnx.export] layer {_label(path, m)} is not supported; supported are {SUPPORTED_TEXT}")
        own = [k for k, p in m._parameters.items() if p is not None]
        if own:
            raise NotImplementedError(
                f"[onnx.export] {_label(path, m)} holds its own parameters {own}, which a "
                f"children-in-order export cannot use; supported are {SUPPORTED_TEXT}")
        inner = masked and not _is_plain_sequential(m)
        for name, child in m._modules.items():
            if child is not None:
                visit(f"{path}.{name}" if path else name, child, inner)

    visit("", model, True)
    for i, (path, m, _) in enumerate(out[:-1]):
        if leaf_of(m).outputs > 1:
            raise NotImplementedError(
                f"[onnx.export] {_label(path, m)} returns several tensors, so it must be the last "
                f"layer of the exported model (here {_label(out[i + 1][0], out[i + 1][1])} follows it); "
                "a forward that picks one of them (e.g. a head on the last step) is not a chain of "
                "layers and cannot be exported")
    return out


def call_leaf(path, m, x, mask):
    """Runs one leaf the way its table entry says; always returns a tuple of Tensors."""
    leaf = leaf_of(m)
    try:
        y = leaf.call(m, x, mask) if leaf.call is not None else (
            m(x, **{leaf.mask: mask}) if mask is not None else m(x))
    except (ValueError, TypeError, IndexError) as e:
        raise ValueError(f"[onnx.export] layer {_label(path, m)} rejects its input of shape "
                         f"{tuple(x.shape)}: {e}") from e
    return _flat(y)


def check_chain(model, inputs, rtol, atol):
    """Runs `model` on each (x, mask or None) of `inputs` and checks that, at every custom
    (non-Sequential) Module, its forward equals its children applied in order. Returns the model's
    outputs (a tuple of arrays) for inputs[0] and {leaf path: input shape} from that run.

    A forward that does anything else (skip connections, extra ops, another order) raises
    NotImplementedError naming the module type. Layer shape errors inside plain Sequentials
    raise ValueError.
    """
    shapes = {}

    def run(path, m, x, mask, in_custom=False):
        if leaf_type(m) is not None:
            shapes.setdefault(path, tuple(x.shape))
            return call_leaf(path, m, x, mask if leaf_of(m).mask is not None else None)
        children = [(f"{path}.{k}" if path else k, c) for k, c in m._modules.items() if c is not None]
        if isinstance(m, nn.ModuleList) and not in_custom:
            raise NotImplementedError(
                f"[onnx.export] {_label(path, m)} has no forward of its own; put its layers in a "
                f"Sequential, or in a Module whose forward applies them in order")
        if _is_plain_sequential(m) or isinstance(m, nn.ModuleList):
            inner = mask if isinstance(m, nn.ModuleList) else None
            y = (x,)
            for cpath, c in children:
                y = run(cpath, c, _single(y, cpath, c), inner, in_custom and isinstance(m, nn.ModuleList))
            if not path and not isinstance(m, nn.ModuleList):
                _same_as_own_forward(m, x, y, rtol, atol)
            return y
        refuse = NotImplementedError(
            f"[onnx.export] the forward of {_label(path, m)} is not its children applied in "
            f"order, so it cannot be exported; supported are {SUPPORTED_TEXT}")
        try:
            want = m(x) if mask is None else m(x, mask)
        except Exception as e:  # whatever the custom forward raised, it is not a plain chain
            raise refuse from e
        want = _flat(want)
        try:
            y = (x,)
            for cpath, c in children:
                y = run(cpath, c, _single(y, cpath, c), mask, in_custom=True)
        except ValueError as e:  # children that do not chain by shape: the forward is not a chain
            raise refuse from e
        if not _all_close(want, y, rtol, atol):
            raise refuse
        return want

    with no_grad():
        outs = [run("", model, x, mask) for x, mask in inputs]
        first = dict(shapes)
    return tuple(_numpy(t) for t in outs[0]), first, tuple(tuple(_numpy(t).shape) for t in outs[-1])


def _same_as_own_forward(seq, x, y, rtol, atol):
    """The top-level Sequential's own forward (with its fusions) gives what its layers gave one by
    one; a layer it cannot call that way (e.g. MultiheadAttention, which needs query, key and
    value) is refused rather than exported as something hepnn does not run."""
    try:
        want = _flat(seq(x))
    except Exception as e:
        raise NotImplementedError(f"[onnx.export] the model's own forward fails on example_input "
                                  f"({type(e).__name__}: {e}), so it cannot be exported") from e
    if not _all_close(want, y, rtol, atol):
        raise NotImplementedError("[onnx.export] the model's own forward differs from its layers applied one by one")


def _all_close(want, got, rtol, atol):
    if len(want) != len(got):
        return False
    for a, b in zip(want, got):
        a, b = _numpy(a), _numpy(b)
        scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
        if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol * scale):
            return False
    return True


def _flat(t):
    """A module's result as a flat tuple of tensors ((out, (h, c)) -> (out, h, c))."""
    if isinstance(t, (tuple, list)):
        return tuple(v for item in t for v in _flat(item))
    return (t,)


def _single(y, path, m):
    if len(y) != 1:
        raise ValueError(f"[onnx.export] {_label(path, m)} would receive {len(y)} tensors")
    return y[0]


def _numpy(t):
    d = getattr(t, "data", t)
    if hasattr(d, "get") and type(d).__module__.startswith("cupy"):
        d = d.get()
    return np.asarray(d)
