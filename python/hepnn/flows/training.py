"""Maximum-likelihood training of a Flow through hepnn.fit: the flow is wrapped as a model whose
output is each event's negative log-likelihood, so batching, validation, callbacks (early
stopping) and divergence checks are fit()'s own.
"""
import numpy as np

from ..nn.module import Module
from ..train import fit


class _NLL(Module):
    """(N, features + context) -> (N, 1) of -log p(x | c)."""

    def __init__(self, flow):
        super().__init__()
        self.flow = flow

    def forward(self, xc):
        f = self.flow.features
        c = xc[:, f:] if self.flow.context_features else None
        return (-self.flow.log_prob(xc[:, :f], c)).reshape(-1, 1)


def _mean_nll(pred, target, event_weight=None):
    if event_weight is None:
        return pred.mean()
    w = event_weight.reshape(-1, 1)
    return (pred * w).sum() / w.sum()


def _joined(flow, x, context, what):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != flow.features:
        raise ValueError(f"[fit_flow] {what} x must be (N, {flow.features}), got shape {x.shape}")
    if flow.context_features:
        if context is None:
            raise ValueError(f"[fit_flow] the flow needs a {what} context of {flow.context_features} features")
        c = np.asarray(context).reshape(len(x), -1)
        if c.shape[1] != flow.context_features:
            raise ValueError(f"[fit_flow] {what} context must be (N, {flow.context_features}), got {c.shape}")
        x = np.concatenate([x, c], 1)
    elif context is not None:
        raise ValueError("[fit_flow] the flow has no context, but one was given")
    return x, np.zeros((len(x), 1), dtype=x.dtype)


def fit_flow(flow, x, context=None, val=None, epochs=10, batch_size=256, lr=1e-3, seed=0,
             callbacks=(), weight_decay=0.0, progress=False):
    """Train `flow` by maximum likelihood on x (N, features) [with context (N, C)]; val is
    (x_val, context_val) or (x_val,) or None. Adam with learning rate lr, cosine-annealed to 0
    over the epochs. Returns fit()'s History (loss = mean negative log-likelihood per event).

    Example:
        >>> import numpy as np
        >>> from hepnn.flows import build_flow, fit_flow
        >>> x = np.random.default_rng(0).normal(2.0, 0.5, (512, 2)).astype(np.float32)
        >>> hist = fit_flow(build_flow(2, layers=2, hidden=16), x, epochs=3, lr=1e-2)
        >>> hist.history["loss"][-1] < hist.history["loss"][0]
        True
    """
    from ..optim import Adam
    from ..optim.lr_scheduler import CosineAnnealingLR

    train = _joined(flow, x, context, "training")
    val_data = None
    if val is not None:
        val = tuple(val)
        val_data = _joined(flow, val[0], val[1] if len(val) > 1 else None, "validation")
    opt = Adam(flow.parameters(), lr=lr, weight_decay=weight_decay)
    sched = CosineAnnealingLR(opt, T_max=max(1, int(epochs)))
    return fit(_NLL(flow), _mean_nll, opt, train=train, val=val_data, epochs=epochs,
               batch_size=batch_size, seed=seed, callbacks=callbacks, scheduler=sched,
               progress=progress)
