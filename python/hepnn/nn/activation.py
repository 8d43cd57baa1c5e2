"""Activation modules. Each names its kernel activation (`fused_act`) so that Sequential can fold
it into the preceding Linear's fused kernel."""
from __future__ import annotations

from . import functional as F
from .module import Module


class _Activation(Module):
    # (kernel name, alpha) for the fused linear kernel; None when it cannot be fused.
    fused_act: tuple[str, float] | None = None


class ReLU(_Activation):
    """max(x, 0). ``hepnn.nn.ReLU()(hepnn.tensor([-1.0, 2.0]))`` gives [0, 2]."""

    fused_act = ("relu", 0.0)

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(_Activation):
    """x for x > 0, negative_slope * x otherwise. ``hepnn.nn.LeakyReLU(0.1)``"""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.fused_act = ("leaky_relu", self.negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(_Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise. ``hepnn.nn.ELU(alpha=1.0)``"""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)
        self.fused_act = ("elu", self.alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class SELU(_Activation):
    """Self-normalising ELU with PyTorch's constants. ``hepnn.nn.SELU()``"""

    fused_act = ("selu", 0.0)

    def forward(self, x):
        return F.selu(x)


class GELU(_Activation):
    """Gaussian error linear unit; ``approximate="tanh"`` for the tanh form. ``hepnn.nn.GELU()``"""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.fused_act = ("gelu" if approximate == "none" else "gelu_tanh", 0.0)

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)). ``hepnn.nn.Sigmoid()``"""

    fused_act = ("sigmoid", 0.0)

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(_Activation):
    """Hyperbolic tangent. ``hepnn.nn.Tanh()``"""

    fused_act = ("tanh", 0.0)

    def forward(self, x):
        return F.tanh(x)


class Softplus(_Activation):
    """log(1 + exp(x)) (beta=1, threshold=20 like PyTorch). ``hepnn.nn.Softplus()``"""

    fused_act = ("softplus", 0.0)

    def forward(self, x):
        return F.softplus(x)


class Softmax(_Activation):
    """Softmax over ``dim``. ``hepnn.nn.Softmax(dim=-1)``"""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(_Activation):
    """Log-softmax over ``dim``. ``hepnn.nn.LogSoftmax(dim=-1)``"""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
