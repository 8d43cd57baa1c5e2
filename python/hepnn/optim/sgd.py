"""SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD semantics)."""
from __future__ import annotations

from .optimizer import Optimizer, _core, _stream_of


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    Example::

        >>> import hepnn
        >>> model = hepnn.nn.Linear(3, 1)
        >>> opt = hepnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        >>> model(hepnn.randn(4, 3)).sum().backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _step_group(self, group, params):
        momentum = group["momentum"]
        data = [p.data for p in params]
        grads = [p.grad.data for p in params]
        bufs, first = None, False
        if momentum != 0:
            fresh = [id(p) not in self.state or "momentum_buffer" not in self.state[id(p)] for p in params]
            # The first step initialises the buffer to the gradient; a group is fresh or not as a whole.
            if any(fresh) and not all(fresh):
                for p, f in zip(params, fresh):
                    self._one(group, p, f)
                return
            first = fresh[0]
            bufs = [self._state(p, "momentum_buffer")["momentum_buffer"] for p in params]
        _core.sgd_step(data, grads, bufs, group["lr"], momentum, group["dampening"], group["weight_decay"],
                       group["nesterov"], group["maximize"], first, stream=_stream_of(data[0]))

    def _one(self, group, p, first):
        buf = self._state(p, "momentum_buffer")["momentum_buffer"]
        _core.sgd_step([p.data], [p.grad.data], [buf], group["lr"], group["momentum"], group["dampening"],
                       group["weight_decay"], group["nesterov"], group["maximize"], first,
                       stream=_stream_of(p.data))
