"""Loss modules over the fused loss kernels (value and gradient in one pass). ``event_weight``
takes per-event weights; the weighted mean is sum(w * l) / sum(w)."""
from __future__ import annotations

from . import functional as F
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error. ``nn.MSELoss()(pred, target, event_weight=w)``"""

    def forward(self, input, target, event_weight=None):
        return F.mse_loss(input, target, reduction=self.reduction, event_weight=event_weight)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (numerically stable), the signal/background loss.

    Example::

        >>> import hepnn
        >>> loss = hepnn.nn.BCEWithLogitsLoss()(hepnn.tensor([0.3, -1.2]), hepnn.tensor([1.0, 0.0]))
        >>> round(loss.item(), 4)
        0.4389
    """

    def forward(self, input, target, event_weight=None):
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction, event_weight=event_weight)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy with integer class labels. ``nn.CrossEntropyLoss()(logits, labels)``"""

    def forward(self, input, target, event_weight=None):
        return F.cross_entropy(input, target, reduction=self.reduction, event_weight=event_weight)
