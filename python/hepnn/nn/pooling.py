"""Pooling layers with PyTorch's names and arguments (MaxPool1d/2d, AvgPool1d/2d,
AdaptiveAvgPool1d/2d, AdaptiveMaxPool2d) and Flatten, which turns conv features into a vector."""
from __future__ import annotations

from . import _functional_conv as F
from .._ops_shape import flatten
from .module import Module


class _MaxPool(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride or kernel_size, padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x):
        return type(self)._fn(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                              self.return_indices)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, dilation={self.dilation}"


class MaxPool1d(_MaxPool):
    """Max over windows of (B, C, L).

    Example::

        >>> import hepnn
        >>> hepnn.nn.MaxPool1d(2)(hepnn.randn(2, 3, 10)).shape
        (2, 3, 5)
    """

    _fn = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPool):
    """Max over windows of (B, C, H, W); ``return_indices=True`` also gives the flat indices.

    Example::

        >>> import hepnn
        >>> hepnn.nn.MaxPool2d(2)(hepnn.randn(2, 3, 40, 40)).shape
        (2, 3, 20, 20)
    """

    _fn = staticmethod(F.max_pool2d)


class AvgPool1d(Module):
    """Mean over windows of (B, C, L).

    Example::

        >>> import hepnn
        >>> hepnn.nn.AvgPool1d(3, stride=1, padding=1)(hepnn.randn(2, 3, 10)).shape
        (2, 3, 10)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean over windows of (B, C, H, W) (torch's count_include_pad and divisor_override).

    Example::

        >>> import hepnn
        >>> hepnn.nn.AvgPool2d(2)(hepnn.randn(2, 3, 40, 40)).shape
        (2, 3, 20, 20)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(Module):
    """Average pooling of (B, C, L) to output_size positions.

    Example::

        >>> import hepnn
        >>> hepnn.nn.AdaptiveAvgPool1d(1)(hepnn.randn(2, 3, 10)).shape
        (2, 3, 1)
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool1d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(AdaptiveAvgPool1d):
    """Average pooling of (B, C, H, W) to an output_size plane; (1, 1) is global average pooling.

    Example::

        >>> import hepnn
        >>> hepnn.nn.AdaptiveAvgPool2d((1, 1))(hepnn.randn(2, 3, 7, 7)).shape
        (2, 3, 1, 1)
    """

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)


class AdaptiveMaxPool2d(AdaptiveAvgPool1d):
    """Max pooling of (B, C, H, W) to an output_size plane; (1, 1) is global max pooling.

    Example::

        >>> import hepnn
        >>> hepnn.nn.AdaptiveMaxPool2d(1)(hepnn.randn(2, 3, 7, 7)).shape
        (2, 3, 1, 1)
    """

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)


class Flatten(Module):
    """Merges dims start_dim..end_dim (default: all but the batch dim), as torch.nn.Flatten.

    Example::

        >>> import hepnn
        >>> hepnn.nn.Flatten()(hepnn.randn(2, 64, 10, 10)).shape
        (2, 6400)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
