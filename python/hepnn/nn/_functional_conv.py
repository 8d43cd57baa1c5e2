"""Convolution and pooling layer functions with PyTorch's signatures (re-exported from
nn.functional): conv1d, conv2d (optionally with a fused activation), conv_transpose2d,
max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d, adaptive_max_pool2d. 1-D versions run the
2-D kernels with H = 1; unbatched inputs (no batch dim) are accepted as torch does.
"""
from __future__ import annotations

from .. import _ops_conv as _ops
from .._ops_shape import getitem, squeeze, unsqueeze

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
           "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]


def _tuple(v, n, name, op, lo):
    """An int or a length-n sequence of ints >= lo, as a tuple."""
    vals = (v,) * n if isinstance(v, int) else tuple(v)
    if len(vals) != n or not all(isinstance(i, int) and not isinstance(i, bool) for i in vals):
        raise ValueError(f"[{op}] {name} must be an int or {n} ints, got {v!r}")
    if any(i < lo for i in vals):
        raise ValueError(f"[{op}] {name} must be >= {lo}, got {v!r}")
    return vals


def _batched(x, nd, op):
    """(x with a batch dim, whether one was added): torch accepts (C, *spatial) inputs."""
    if x.data.ndim == nd + 1:
        return unsqueeze(x, 0), True
    if x.data.ndim != nd + 2:
        raise ValueError(f"[{op}] input must be {nd + 1}-D or {nd + 2}-D (B, C, {'L' if nd == 1 else 'H, W'}), "
                         f"got shape {tuple(x.data.shape)}")
    return x, False


def _same_padding(kernel, dilation, stride, op):
    """Per-axis (pad, crop): torch's 'same' puts the odd extra pad on the right; we pad one more on
    both sides and crop the first output instead (the kernels pad symmetrically)."""
    if any(s != 1 for s in stride):
        raise ValueError(f"[{op}] padding='same' needs stride 1, got stride {stride}")
    out = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        out.append((total - total // 2, total % 2))
    return out


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups, activation, alpha):
    x, added = _batched(input, nd, op)
    if weight.data.ndim != nd + 2:
        raise ValueError(f"[{op}] weight must be {nd + 2}-D (out, in/groups, *kernel), got shape {tuple(weight.data.shape)}")
    stride = _tuple(stride, nd, "stride", op, 1)
    dilation = _tuple(dilation, nd, "dilation", op, 1)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"[{op}] groups must be a positive int, got {groups!r}")
    crop = (0,) * nd
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nd
        elif padding == "same":
            pads = _same_padding(weight.data.shape[2:], dilation, stride, op)
            padding, crop = tuple(p for p, _ in pads), tuple(c for _, c in pads)
        else:
            raise ValueError(f"[{op}] padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    else:
        padding = _tuple(padding, nd, "padding", op, 0)
    w = weight
    if nd == 1:  # (B, C, L) -> (B, C, 1, L)
        x, w = unsqueeze(x, 2), unsqueeze(weight, 2)
        stride, padding, dilation, crop = (1,) + stride, (0,) + padding, (1,) + dilation, (0,) + crop
    act = "none" if activation is None else str(activation)
    y = _ops.conv2d(x, w, bias, stride, padding, dilation, groups, act, alpha)
    if any(crop):
        y = getitem(y, (slice(None), slice(None), slice(crop[0], None), slice(crop[1], None)))
    if nd == 1:
        y = squeeze(y, 2)
    return squeeze(y, 0) if added else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None, alpha=0.0):
    """1-D convolution over (B, C, L) sequences, weight (O, C/groups, K); padding may be 'same' or
    'valid'. `activation` (a _core activation name) is fused into the kernel, as in F.linear.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.conv1d(hepnn.randn(2, 3, 10), hepnn.randn(4, 3, 3), padding="same").shape
        (2, 4, 10)
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups, activation, alpha)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None, alpha=0.0):
    """2-D convolution over (B, C, H, W) images, weight (O, C/groups, KH, KW); padding may be
    'same' or 'valid'. `activation` (a _core activation name) is fused into the kernel.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.conv2d(hepnn.randn(2, 1, 8, 8), hepnn.randn(4, 1, 3, 3), padding=1, activation="relu").shape
        (2, 4, 8, 8)
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups, activation, alpha)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input), weight
    (C_in, C_out/groups, KH, KW); output H = (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.conv_transpose2d(hepnn.randn(2, 4, 5, 5), hepnn.randn(4, 2, 2, 2), stride=2).shape
        (2, 2, 10, 10)
    """
    op = "conv_transpose2d"
    x, added = _batched(input, 2, op)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"[{op}] groups must be a positive int, got {groups!r}")
    y = _ops.conv_transpose2d(x, weight, bias, _tuple(stride, 2, "stride", op, 1), _tuple(padding, 2, "padding", op, 0),
                              _tuple(output_padding, 2, "output_padding", op, 0),
                              _tuple(dilation, 2, "dilation", op, 1), groups)
    return squeeze(y, 0) if added else y


def _pool_args(op, nd, kernel_size, stride, padding, dilation, ceil_mode):
    if ceil_mode:
        raise ValueError(f"[{op}] ceil_mode=True is not supported (floor mode only)")
    kernel = _tuple(kernel_size, nd, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == () or stride == [] else _tuple(stride, nd, "stride", op, 1)
    padding = _tuple(padding, nd, "padding", op, 0)
    dilation = _tuple(dilation, nd, "dilation", op, 1)
    if nd == 1:
        return (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation
    return kernel, stride, padding, dilation


def _pool(op, nd, input, fn):
    x, added = _batched(input, nd, op)
    if nd == 1:
        x = unsqueeze(x, 2)
    outs = fn(x)
    if not isinstance(outs, tuple):
        outs = (outs,)
    if nd == 1:
        outs = tuple(squeeze(o, 2) for o in outs)
    if added:
        outs = tuple(squeeze(o, 0) for o in outs)
    return outs if len(outs) > 1 else outs[0]


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    k, s, p, d = _pool_args(op, nd, kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices:
        return _pool(op, nd, input, lambda x: _ops.max_pool2d(x, k, s, p, d, False)[0])
    return _pool(op, nd, input, lambda x: _ops.max_pool2d(x, k, s, p, d, True))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows of (B, C, L); indices (with return_indices) are positions in L.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.max_pool1d(hepnn.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
        [[[3.0, 2.0]]]
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows of (B, C, H, W); indices are flat positions h * W + w in each plane.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.max_pool2d(hepnn.randn(2, 3, 8, 8), 2).shape
        (2, 3, 4, 4)
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    k, s, p, _ = _pool_args(op, nd, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if not isinstance(divisor_override, int) or divisor_override < 1:
            raise ValueError(f"[{op}] divisor_override must be a positive int, got {divisor_override!r}")
        # Padding adds zeros, so sum / divisor = (mean over the full window) * KH*KW / divisor.
        y = _pool(op, nd, input, lambda x: _ops.avg_pool2d(x, k, s, p, True))
        return y * (float(k[0] * k[1]) / divisor_override)
    return _pool(op, nd, input, lambda x: _ops.avg_pool2d(x, k, s, p, count_include_pad))


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows of (B, C, L).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.avg_pool1d(hepnn.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
        [[[2.0, 1.0]]]
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over windows of (B, C, H, W); torch's count_include_pad and divisor_override.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.avg_pool2d(hepnn.randn(2, 3, 9, 9), 3, stride=2, padding=1).shape
        (2, 3, 5, 5)
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _output_size(op, output_size, spatial):
    vals = (output_size,) * len(spatial) if output_size is None or isinstance(output_size, int) else tuple(output_size)
    if len(vals) != len(spatial):
        raise ValueError(f"[{op}] output_size must be an int or {len(spatial)} ints, got {output_size!r}")
    vals = tuple(n if v is None else v for v, n in zip(vals, spatial))  # None keeps the input size
    if not all(isinstance(v, int) and v >= 1 for v in vals):
        raise ValueError(f"[{op}] output_size must be positive ints, got {output_size!r}")
    return vals


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (B, C, L) to output_size positions (1: the global mean).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.adaptive_avg_pool1d(hepnn.randn(2, 3, 10), 1).shape
        (2, 3, 1)
    """
    op = "adaptive_avg_pool1d"
    size = _output_size(op, output_size, input.data.shape[-1:])
    return _pool(op, 1, input, lambda x: _ops.adaptive_avg_pool2d(x, (1,) + size))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of (B, C, H, W) to an output_size plane ((1, 1): global average pooling).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.adaptive_avg_pool2d(hepnn.randn(2, 3, 7, 9), (1, 1)).shape
        (2, 3, 1, 1)
    """
    op = "adaptive_avg_pool2d"
    size = _output_size(op, output_size, input.data.shape[-2:])
    return _pool(op, 2, input, lambda x: _ops.adaptive_avg_pool2d(x, size))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of (B, C, H, W) to an output_size plane ((1, 1): global max pooling).

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> F.adaptive_max_pool2d(hepnn.randn(2, 3, 7, 9), 1).shape
        (2, 3, 1, 1)
    """
    op = "adaptive_max_pool2d"
    size = _output_size(op, output_size, input.data.shape[-2:])
    y, idx = _pool(op, 2, input, lambda x: _ops.adaptive_max_pool2d(x, size))
    return (y, idx) if return_indices else y
