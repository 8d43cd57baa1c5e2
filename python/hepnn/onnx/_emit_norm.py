"""Emitters of the normalisation layers: BatchNorm1d/2d in eval mode as BatchNormalization with
the running statistics, LayerNorm as LayerNormalization (opset 17 and later)."""
from __future__ import annotations

import numpy as np

from .. import nn
from ._emit import _host


def _batch_norm(g, scope, layer, x):  # the table refuses track_running_stats=False
    pre = f"{scope}." if scope else ""
    C = layer.num_features
    w = _host(layer.weight) if layer.weight is not None else np.ones(C)
    b = _host(layer.bias) if layer.bias is not None else np.zeros(C)
    inputs = [x, g.tensor(pre + "weight", w), g.tensor(pre + "bias", b),
              g.tensor(pre + "running_mean", _host(layer.running_mean)),
              g.tensor(pre + "running_var", _host(layer.running_var))]
    return g.node(scope, "BatchNormalization", inputs, epsilon=float(layer.eps))


def _layer_norm(g, scope, layer, x):
    if g.opset < 17:
        raise NotImplementedError(f"[onnx.export] {scope or '<model>'} (LayerNorm) needs opset >= 17 "
                                  f"(LayerNormalization), got opset {g.opset}")
    pre = f"{scope}." if scope else ""
    ns = layer.normalized_shape
    w = _host(layer.weight) if layer.weight is not None else np.ones(ns)
    inputs = [x, g.tensor(pre + "weight", w)]
    if layer.bias is not None:
        inputs.append(g.tensor(pre + "bias", _host(layer.bias)))
    return g.node(scope, "LayerNormalization", inputs, axis=-len(ns), epsilon=float(layer.eps))


EMITTERS = {nn.BatchNorm1d: _batch_norm, nn.BatchNorm2d: _batch_norm, nn.LayerNorm: _layer_norm}
