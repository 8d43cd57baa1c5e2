"""LayerNorm: normalisation over the trailing dims with a learned scale and shift (torch's args,
parameter names weight / bias), one fused kernel forward and backward."""
from __future__ import annotations

import numpy as np

from . import init as _init
from ._functional_attention import layer_norm
from .module import Module
from .parameter import Parameter


class LayerNorm(Module):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the last ``len(normalized_shape)``
    dims, the variance biased (divided by n) like torch.

    Example::

        >>> import hepnn
        >>> norm = hepnn.nn.LayerNorm(16)
        >>> norm(hepnn.randn(4, 7, 16)).shape
        (4, 7, 16)
        >>> sorted(norm.state_dict())
        ['bias', 'weight']
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: str = "cpu", dtype=np.float32):
        super().__init__()
        ns = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        self.normalized_shape = tuple(int(n) for n in ns)
        if not self.normalized_shape or any(n < 1 for n in self.normalized_shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape}")
        if not float(eps) >= 0:
            raise ValueError(f"LayerNorm: eps must be >= 0, got {eps}")
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = self.bias = None
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if bias else None
        if device != "cpu":
            self.to(device)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            _init.constant_(self.weight, 1.0)
        if self.bias is not None:
            _init.zeros_(self.bias)

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
