"""Adagrad with learning-rate decay, torch.optim semantics."""
from __future__ import annotations

from .optimizer import Optimizer, _core, _stream_of, grouped_by_step


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``.

    ``opt = hepnn.optim.Adagrad(model.parameters(), lr=1e-2, initial_accumulator_value=0.1)``
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False):
        if lr_decay < 0 or initial_accumulator_value < 0 or not eps > 0:
            raise ValueError("Adagrad: lr_decay and initial_accumulator_value must be >= 0 and eps > 0")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    def _step_group(self, group, params):
        for step, ps, sts in grouped_by_step(self, params, "sum", fill=group["initial_accumulator_value"]):
            data = [p.data for p in ps]
            _core.adagrad_step(data, [p.grad.data for p in ps], [s["sum"] for s in sts], step,
                               group["lr"], group["lr_decay"], group["weight_decay"], group["eps"],
                               group["maximize"], stream=_stream_of(data[0]))
