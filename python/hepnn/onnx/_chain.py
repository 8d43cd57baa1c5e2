"""Emits a flattened chain of leaves, and (for composite layers such as DeepSets' phi and rho)
a whole sub-module: flattened, checked numerically on a sample input, then emitted."""
from __future__ import annotations

import numpy as np

from ._walk import check_chain, flatten, leaf_of


def emit_layers(g, layers, shapes, x):
    """Emits every (scope, layer, gets_mask) in order starting from value `x`, with each layer's
    recorded input shape; returns the last value name (a tuple of names for several outputs).
    The model-level mask (g.mask) is visible only to the leaves that receive it."""
    mask = g.mask
    try:
        for scope, layer, masked in layers:
            g.shape, g.mask = shapes[scope], (mask if masked else None)
            x = leaf_of(layer).emit(g, scope, layer, x)
    finally:
        g.mask = mask
    return x


def emit_module(g, scope, module, x, shape):
    """Emits `module` (any exportable chain, mask-free) applied to value `x` of `shape` (batch
    first); returns (output name, output shape). The chain is checked on a random sample."""
    from .._factories import tensor

    layers = [(f"{scope}.{p}" if p else scope, m, False) for p, m, _ in flatten(module)]
    rng = np.random.default_rng(7)
    sample = tensor(rng.standard_normal(shape).astype(g.dtype), device=_device(module))
    tol = (1e-4, 1e-5) if g.dtype == np.float32 else (1e-9, 1e-12)
    outs, shapes, _ = check_chain(module, [(sample, None)], *tol)
    if len(outs) != 1:
        raise NotImplementedError(f"[onnx.export] {scope} returns {len(outs)} tensors where one is needed")
    shapes = {(f"{scope}.{p}" if p else scope): s for p, s in shapes.items()}
    saved = g.mask
    g.mask = None
    try:
        y = emit_layers(g, layers, shapes, x)
    finally:
        g.mask = saved
    return y, outs[0].shape


def _device(module):
    ps = list(module.parameters())
    return ps[0].device if ps else "cpu"
