"""RMSprop (optionally centred, with momentum), torch.optim semantics."""
from __future__ import annotations

from .optimizer import Optimizer, _core, _stream_of


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    ``opt = hepnn.optim.RMSprop(model.parameters(), lr=1e-2, alpha=0.99, momentum=0.9)``
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {alpha}")
        if not eps > 0:
            raise ValueError(f"RMSprop: eps must be > 0, got {eps}")
        if momentum < 0:
            raise ValueError(f"RMSprop: momentum must be >= 0, got {momentum}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _step_group(self, group, params):
        names = ("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ()) + \
                (("grad_avg",) if group["centered"] else ())
        sts = []
        for p in params:
            st = self._state(p, *names)
            st["step"] += 1
            sts.append(st)
        data = [p.data for p in params]
        _core.rmsprop_step(data, [p.grad.data for p in params], [s["square_avg"] for s in sts],
                           [s["grad_avg"] for s in sts] if group["centered"] else None,
                           [s["momentum_buffer"] for s in sts] if group["momentum"] > 0 else None,
                           group["lr"], group["alpha"], group["eps"], group["weight_decay"],
                           group["momentum"], group["centered"], group["maximize"], stream=_stream_of(data[0]))
