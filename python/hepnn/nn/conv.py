"""Convolution layers with PyTorch's names, weight shapes, state_dict keys and default init:
Conv1d, Conv2d (which fuse a following activation in Sequential) and ConvTranspose2d."""
from __future__ import annotations

import math

import numpy as np

from . import init as _init
from ._functional_conv import _tuple, conv1d, conv2d, conv_transpose2d
from .module import Module
from .parameter import Parameter


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, device, dtype, output_padding=0):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        if int(in_channels) < 1 or int(out_channels) < 1:
            raise ValueError(f"{name}: in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        if not isinstance(groups, int) or groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups!r} must be a positive int dividing in_channels "
                             f"({in_channels}) and out_channels ({out_channels})")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), groups
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size", name, 1)
        self.stride = _tuple(stride, nd, "stride", name, 1)
        self.dilation = _tuple(dilation, nd, "dilation", name, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self._transposed:
                raise ValueError(f"{name}: padding must be an int or a tuple" +
                                 ("" if self._transposed else ", 'same' or 'valid'") + f", got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got {self.stride}")
            self.padding = padding
        else:
            self.padding = _tuple(padding, nd, "padding", name, 0)
        self.output_padding = _tuple(output_padding, nd, "output_padding", name, 0)
        self.padding_mode = padding_mode
        if self._transposed:
            shape = (self.in_channels, self.out_channels // groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.bias = Parameter(np.empty((self.out_channels,), dtype=dtype)) if bias else None
        self.reset_parameters()
        if device != "cpu":
            self.to(device)

    def reset_parameters(self) -> None:
        # torch: kaiming_uniform_(a=sqrt(5)) on the weight, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        # and the same bound for the bias; fan_in = weight.shape[1] * prod(kernel_size).
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        _init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            _init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + f", bias={self.bias is not None}"


class Conv1d(_ConvNd):
    """1-D convolution over (B, C, L) sequences (e.g. particle features along a pT-ordered list).
    weight (out, in/groups, k); padding an int, 'same' or 'valid'. ``forward(x, activation=...)``
    fuses an activation into the kernel (Sequential does this for a following ReLU etc.).

    Example::

        >>> import hepnn
        >>> conv = hepnn.nn.Conv1d(7, 16, 3, padding="same")
        >>> conv(hepnn.randn(4, 7, 30)).shape
        (4, 16, 30)
    """

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device="cpu", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, x, activation: str | None = None, alpha: float = 0.0):
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                      activation, alpha)


class Conv2d(_ConvNd):
    """2-D convolution over (B, C, H, W) images (e.g. calorimeter or jet images). weight
    (out, in/groups, kH, kW); padding an int, a pair, 'same' or 'valid'. ``forward(x,
    activation=...)`` fuses an activation into the kernel's epilogue.

    Example::

        >>> import hepnn
        >>> conv = hepnn.nn.Conv2d(1, 32, 3, padding=1)
        >>> conv(hepnn.randn(2, 1, 40, 40)).shape
        (2, 32, 40, 40)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device="cpu", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, x, activation: str | None = None, alpha: float = 0.0):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                      activation, alpha)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution (learned upsampling, e.g. an image decoder). weight
    (in, out/groups, kH, kW) as in torch; output size (H-1)*stride - 2*padding +
    dilation*(kH-1) + output_padding + 1.

    Example::

        >>> import hepnn
        >>> up = hepnn.nn.ConvTranspose2d(8, 4, 2, stride=2)
        >>> up(hepnn.randn(2, 8, 10, 10)).shape
        (2, 4, 20, 20)
    """

    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device="cpu", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype, output_padding=output_padding)

    def forward(self, x):
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                self.groups, self.dilation)


def _fused_conv_act_pool(conv, x, act, pool):
    """Sequential's inference fusion of Conv2d -> activation -> MaxPool2d into one kernel call;
    None when it does not apply (gradients needed, 'same' padding, indices, ceil mode, ...)."""
    from .._ops_conv import _needs_grad, conv2d_maxpool2d
    from ._functional_conv import _pool_args
    from .pooling import MaxPool2d

    if (type(conv) is not Conv2d or type(pool) is not MaxPool2d or pool.return_indices or pool.ceil_mode
            or isinstance(conv.padding, str) or getattr(x, "data", None) is None or x.data.ndim != 4
            or _needs_grad(x, conv.weight, conv.bias)):
        return None
    args = _pool_args("max_pool2d", 2, pool.kernel_size, pool.stride, pool.padding, pool.dilation, False)
    return conv2d_maxpool2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups,
                            act[0], act[1], args)
