"""Dropout: inverted dropout in training mode, identity in eval mode."""
from __future__ import annotations

from . import functional as F
from .module import Module


class Dropout(Module):
    """Zeroes each element with probability p during training and scales the rest by 1/(1-p);
    does nothing in eval mode. Also used for Monte-Carlo dropout by leaving it in training mode.

    Example::

        >>> import hepnn
        >>> drop = hepnn.nn.Dropout(0.2)
        >>> drop.eval()(hepnn.ones(3)).numpy()
        array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
