"""Adam and AdamW (decoupled weight decay), torch.optim semantics, one fused call per group."""
from __future__ import annotations

from .optimizer import Optimizer, _core, _stream_of, grouped_by_step


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (weight_decay is L2 added to the gradient).

    Example::

        >>> import hepnn
        >>> model = hepnn.nn.Linear(3, 1)
        >>> opt = hepnn.optim.Adam(model.parameters(), lr=1e-3)
        >>> model(hepnn.randn(4, 3)).sum().backward(); opt.step()
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        name = type(self).__name__
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{name}: betas must be in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _step_group(self, group, params):
        names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        b1, b2 = group["betas"]
        for step, ps, sts in grouped_by_step(self, params, *names):
            data = [p.data for p in ps]
            _core.adam_step(data, [p.grad.data for p in ps], [s["exp_avg"] for s in sts],
                            [s["exp_avg_sq"] for s in sts],
                            [s["max_exp_avg_sq"] for s in sts] if group["amsgrad"] else None,
                            step, group["lr"], b1, b2, group["eps"], group["weight_decay"],
                            self._decoupled, group["amsgrad"], group["maximize"], stream=_stream_of(data[0]))


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: decoupled weight decay (default 0.01).

    ``opt = hepnn.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)``
    """

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
