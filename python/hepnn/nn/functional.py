"""hepnn.nn.functional: the stateless layer functions: fused linear(+activation), activations,
softmax, dropout, and the fused losses (value and gradient from one _core kernel call), with
per-event weights for the losses. Input checks here give friendlier messages than the kernels.
"""
import numpy as np

from .. import _backend, _core, random as _random
from .._ops_kernel import _contig, activation as _activation, log_softmax, softmax
from .._ops_math import mul as _mul
from ..autograd import _mode, constant, result_n
from ..tensor import Tensor
from ._disco import disco
from ._functional_graph import (edge_conv, gather, knn, knn_edges, masked_max, masked_mean,  # noqa: F401
                                masked_sum, scatter, scatter_max, scatter_mean, scatter_sum, segment,
                                segment_max, segment_mean, segment_sum)
from ._functional_norm import batch_norm
from ._functional_conv import __all__ as _conv_all
from ._functional_conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool2d,  # noqa: F401
                               avg_pool1d, avg_pool2d, conv1d, conv2d, conv_transpose2d, max_pool1d,
                               max_pool2d)

__all__ = ["linear", "relu", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "tanh", "softplus",
           "softmax", "log_softmax", "dropout", "mse_loss", "binary_cross_entropy_with_logits",
           "cross_entropy", "disco"]
# Layer families whose functions live in their own _functional_<family>.py files.
__all__ += ["knn", "knn_edges", "gather", "scatter", "scatter_sum", "scatter_mean", "scatter_max",
            "segment", "segment_sum", "segment_mean", "segment_max", "masked_sum", "masked_mean",
            "masked_max", "edge_conv"]
__all__ += ["scaled_dot_product_attention", "layer_norm"]
__all__ += ["batch_norm"]
__all__ += _conv_all

_REDUCTIONS = ("mean", "sum", "none")


def _xp(arr):
    return np if type(arr) is np.ndarray else _backend.xp_of(arr)


def _needs_grad(*tensors):
    return _mode.enabled and any(t is not None and t._rg for t in tensors)


# ---- fused linear ----
def linear(input, weight, bias=None, activation=None, alpha=0.0):
    """y = act(input @ weight.T + bias) in one fused kernel (forward and backward).

    input (..., I), weight (O, I), bias (O,) or None; activation is None or a _core activation
    name ("relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "sigmoid", "tanh",
    "softplus"); alpha is the slope of leaky_relu / the alpha of elu.

    Example:
        >>> import hepnn
        >>> import hepnn.nn.functional as F
        >>> x, w, b = hepnn.randn(8, 3), hepnn.randn(4, 3), hepnn.zeros(4)
        >>> F.linear(x, w, b, activation="relu").shape
        (8, 4)
    """
    act = "none" if activation is None else str(activation)
    xd, wd = input.data, weight.data
    if wd.ndim != 2:
        raise ValueError(f"[linear] weight must be 2-D (out, in), got shape {tuple(wd.shape)}")
    if xd.ndim == 0 or xd.shape[-1] != wd.shape[1]:
        raise ValueError(f"[linear] input has shape {tuple(xd.shape)}; the weight "
                         f"{tuple(wd.shape)} expects {wd.shape[1]} features in the last dim")
    bd = None
    if bias is not None:
        bd = bias.data
        if bd.shape != (wd.shape[0],):
            raise ValueError(f"[linear] bias has shape {tuple(bd.shape)}, expected ({wd.shape[0]},)")
    if xd.dtype != wd.dtype or (bd is not None and bd.dtype != wd.dtype):
        dts = sorted({str(a.dtype) for a in (xd, wd, bd) if a is not None})
        raise TypeError(f"[linear] input, weight and bias must share one dtype, got {dts}")
    lead = xd.shape[:-1]
    x2 = _contig(xd.reshape(-1, xd.shape[-1]))
    wd = _contig(wd)
    xp = _xp(x2)
    y = xp.empty((x2.shape[0], wd.shape[0]), dtype=x2.dtype)
    grad = _needs_grad(input, weight, bias)
    z = None
    if grad and _core.act_needs_preactivation(act):
        z = xp.empty_like(y)
    _core.linear_forward(x2, wd, bd, y, z, act, float(alpha), _backend.stream_of(x2))
    out = y.reshape(lead + (wd.shape[0],))
    if not grad:
        return constant(out)
    return result_n(out, _linear_bw, (input, weight, bias), (x2, wd, z, y, act, float(alpha)))


def _linear_bw(node, g):
    x2, wd, z, y, act, alpha = node._saved
    a, w, b = node._parents
    xp = _xp(y)
    dy = _contig(g).reshape(y.shape)
    dx = xp.empty_like(x2) if a is not None else None
    dw = xp.empty_like(wd)
    db = xp.empty((wd.shape[0],), dtype=y.dtype) if b is not None else None
    _core.linear_backward(x2, wd, z, y, dy, dx, dw, db, act, alpha, _backend.stream_of(y))
    return (None if dx is None else dx.reshape(a.data.shape),
            dw if w is not None else None, db)


# ---- activations ----
def relu(input):
    """max(x, 0). Example: ``F.relu(hepnn.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]``

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.relu(hepnn.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return _activation(input, "relu")


def leaky_relu(input, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.leaky_relu(hepnn.tensor([-1.0, 2.0]), 0.5).tolist()
        [-0.5, 2.0]
    """
    return _activation(input, "leaky_relu", float(negative_slope))


def elu(input, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.elu(hepnn.tensor([0.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return _activation(input, "elu", float(alpha))


def selu(input):
    """Self-normalising ELU with torch's constants (scale 1.0507..., alpha 1.6732...).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> round(F.selu(hepnn.tensor([1.0])).item(), 4)
        1.0507
    """
    return _activation(input, "selu")


def gelu(input, approximate="none"):
    """Gaussian error linear unit: x * Phi(x) ("none", the erf form) or its tanh approximation.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> round(F.gelu(hepnn.tensor([1.0])).item(), 4)
        0.8413
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', got {approximate!r}")
    return _activation(input, "gelu" if approximate == "none" else "gelu_tanh")


def sigmoid(input):
    """1 / (1 + exp(-x)).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.sigmoid(hepnn.tensor([0.0])).tolist()
        [0.5]
    """
    return _activation(input, "sigmoid")


def tanh(input):
    """Hyperbolic tangent.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.tanh(hepnn.tensor([0.0])).tolist()
        [0.0]
    """
    return _activation(input, "tanh")


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold (torch's definition).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> round(F.softplus(hepnn.tensor([0.0])).item(), 4)
        0.6931
    """
    if threshold != 20.0:
        raise ValueError(f"[softplus] only threshold=20 (torch's default) is supported, got {threshold}")
    if beta == 1.0:
        return _activation(input, "softplus")
    return _activation(input * float(beta), "softplus") * (1.0 / float(beta))


# ---- dropout ----
def dropout(input, p=0.5, training=True):
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p);
    the identity when training is False or p == 0. Masks come from hepnn's global generator.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> hepnn.manual_seed(0)
        >>> y = F.dropout(hepnn.ones(1000), p=0.25)
        >>> sorted(set(y.tolist()))
        [0.0, 1.3333333730697632]
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[dropout] p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    xd = input.data
    if p == 1.0:
        return _mul(input, _xp(xd).zeros_like(xd))
    keep = _random.uniform(xd.shape, xd.dtype, input.device) >= p
    mask = keep.astype(xd.dtype) * xd.dtype.type(1.0 / (1.0 - p))
    return _mul(input, mask)


# ---- losses ----
def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"[{op}] reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _data_like(value, ref):
    """The raw array of a target / weight (Tensor, array or list) on ref's device."""
    t = value.data if isinstance(value, Tensor) else value
    if _backend.device_of(t) != ref.device:
        t = _backend.to_device(t, ref.device)
    return _xp(ref.data).asarray(t)


def _weights(op, event_weight, input):
    if event_weight is None:
        return None
    w = _data_like(event_weight, input)
    batch = input.data.shape[0]
    if w.shape != (batch,):
        raise ValueError(f"[{op}] event_weight must have shape ({batch},) (one weight per "
                         f"sample), got {tuple(w.shape)}")
    return _contig(w.astype(input.dtype, copy=False))


def _pointwise_loss(op, kernel, input, target, reduction, event_weight, target_grad):
    """mse / bce: input (B,) or (B, F...) with a target of the same shape."""
    _check_reduction(op, reduction)
    xd = input.data
    if xd.dtype.kind != "f":
        raise TypeError(f"[{op}] input must be floating point, got {xd.dtype}")
    if xd.ndim == 0:
        raise ValueError(f"[{op}] input must have a batch dimension, got a 0-d tensor")
    td = _data_like(target, input)
    if td.shape != xd.shape:
        raise ValueError(f"[{op}] target shape {tuple(td.shape)} does not match input shape "
                         f"{tuple(xd.shape)}")
    if td.dtype != xd.dtype:
        td = td.astype(xd.dtype)
    w = _weights(op, event_weight, input)
    shape2 = xd.shape if xd.ndim <= 2 else (xd.shape[0], -1)
    x2, t2 = _contig(xd.reshape(shape2)), _contig(td.reshape(shape2))
    tgt = target if isinstance(target, Tensor) and target._rg else None
    if tgt is not None and not target_grad:
        raise RuntimeError(f"[{op}] the gradient with respect to target is not supported; "
                           "pass target.detach()")
    return _run_loss(kernel, input, tgt, x2, t2, w, reduction, x2.shape)


def _run_loss(kernel, input, target, x2, t2, w, reduction, out_shape):
    xp = _xp(x2)
    grad_needed = _needs_grad(input, target)
    out = xp.empty(out_shape, dtype=x2.dtype) if reduction == "none" else None
    grad = xp.empty_like(x2) if grad_needed else None
    loss = xp.empty((1,), dtype=x2.dtype)
    kernel(x2, t2, w, reduction, out, grad, loss, _backend.stream_of(x2))
    if reduction == "none":  # per element (mse, bce) or per sample (cross-entropy)
        value = out.reshape(input.data.shape if out.shape == x2.shape else out.shape)
    else:
        value = loss.reshape(())
    if not grad_needed:
        return constant(value)
    return result_n(value, _loss_bw, (input, target), (grad, reduction))


def _loss_bw(node, g):
    grad, reduction = node._saved
    a, t = node._parents
    if reduction == "none":  # cross-entropy: one upstream value per row of logits
        g = g.reshape(grad.shape) if g.size == grad.size else g.reshape(-1, 1)
    dx = grad * g
    ga = None if a is None else dx.reshape(a.data.shape)
    gt = None if t is None else (-dx).reshape(t.data.shape)
    return ga, gt


def mse_loss(input, target, reduction="mean", event_weight=None):
    """Mean squared error, fused value + gradient. With event_weight (B,) (a constant), "mean"
    is sum_i w_i l_i / sum_i w_i where l_i averages the sample's features; "none" gives
    w_i * l_if. Gradients flow to input and to target.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.mse_loss(hepnn.tensor([1.0, 3.0]), hepnn.tensor([0.0, 0.0])).item()
        5.0
    """
    return _pointwise_loss("mse_loss", _core.mse_loss, input, target, reduction, event_weight,
                           target_grad=True)


def binary_cross_entropy_with_logits(input, target, reduction="mean", event_weight=None):
    """Numerically stable binary cross-entropy on logits, fused value + gradient; targets in
    [0, 1] of the input's shape; optional per-event weights (B,). The target is a constant.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> round(F.binary_cross_entropy_with_logits(hepnn.tensor([0.0]), hepnn.tensor([1.0])).item(), 4)
        0.6931
    """
    return _pointwise_loss("binary_cross_entropy_with_logits", _core.bce_with_logits_loss, input,
                           target, reduction, event_weight, target_grad=False)


def cross_entropy(input, target, reduction="mean", event_weight=None):
    """Softmax cross-entropy of logits (B, C) against int64 class indices (B,), fused value +
    gradient; optional per-event weights (B,).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> logits = hepnn.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> round(F.cross_entropy(logits, hepnn.tensor([0, 1])).item(), 4)
        0.1269
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    xd = input.data
    if xd.ndim != 2:
        raise ValueError(f"[{op}] input must be (batch, classes) logits, got shape {tuple(xd.shape)}")
    if xd.dtype.kind != "f":
        raise TypeError(f"[{op}] input must be floating point, got {xd.dtype}")
    td = _data_like(target, input)
    if td.dtype.kind not in "iu":
        raise TypeError(f"[{op}] target must hold integer class indices (int64), got {td.dtype}; "
                        "class-probability targets are not supported")
    if td.shape != (xd.shape[0],):
        raise ValueError(f"[{op}] target must have shape ({xd.shape[0]},) (one class index per "
                         f"row of the input), got {tuple(td.shape)}")
    td = _contig(td.astype(np.int64, copy=False))
    w = _weights(op, event_weight, input)
    return _run_loss(_core.cross_entropy_loss, input, None, _contig(xd), td, w, reduction,
                     (xd.shape[0],))


from ._functional_attention import layer_norm, scaled_dot_product_attention  # noqa: E402
