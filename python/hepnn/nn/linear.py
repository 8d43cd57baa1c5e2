"""Linear: the fully-connected layer, y = x @ W^T + b, weight stored out x in like PyTorch."""
from __future__ import annotations

import math

import numpy as np

from . import functional as F
from . import init as _init
from .module import Module
from .parameter import Parameter

_INITS = ("default", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal")


class Linear(Module):
    """Fully-connected layer ``y = x @ weight.T + bias``.

    ``weight`` has shape (out_features, in_features) and ``bias`` (out_features,), as in PyTorch.
    ``init`` picks the weight initialisation: "default" (PyTorch's: U(-1/sqrt(in), 1/sqrt(in))),
    "glorot_uniform", "glorot_normal" (for tanh/sigmoid nets), "he_uniform", "he_normal" (for
    ReLU nets); biases start at zero except with "default".

    Example::

        >>> import hepnn
        >>> layer = hepnn.nn.Linear(30, 64, init="he_uniform")
        >>> layer(hepnn.randn(8, 30)).shape
        (8, 64)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "default",
                 device: str = "cpu", dtype=np.float32):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Linear: in_features and out_features must be >= 1, got {in_features}, {out_features}")
        if init not in _INITS:
            raise ValueError(f"Linear: unknown init {init!r}; choose one of {_INITS}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty((self.out_features,), dtype=dtype)) if bias else None
        self.reset_parameters(init)
        if device != "cpu":
            self.to(device)

    def reset_parameters(self, init: str = "default") -> None:
        if init == "default":
            bound = 1.0 / math.sqrt(self.in_features)
            _init.uniform_(self.weight, -bound, bound)
            if self.bias is not None:
                _init.uniform_(self.bias, -bound, bound)
            return
        {
            "glorot_uniform": _init.xavier_uniform_,
            "glorot_normal": _init.xavier_normal_,
            "he_uniform": lambda w: _init.kaiming_uniform_(w, nonlinearity="relu"),
            "he_normal": lambda w: _init.kaiming_normal_(w, nonlinearity="relu"),
        }[init](self.weight)
        if self.bias is not None:
            _init.zeros_(self.bias)

    def forward(self, x, activation: str | None = None, alpha: float = 0.0):
        return F.linear(x, self.weight, self.bias, activation=activation, alpha=alpha)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
