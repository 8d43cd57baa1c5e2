"""Flow: a chain of invertible transforms onto a standard normal base density, with the exact
log-likelihood log p(x | c) = log N(z; 0, 1) + sum of the transforms' log-determinants, and
sampling by running the chain backwards from base samples.
"""
import math

import numpy as np

from .. import _backend
from .._factories import randn, tensor
from ..nn.container import ModuleList
from ..nn.module import Module
from ..tensor import Tensor
from .coupling import AffineCoupling, RQSpline
from .transforms import Permutation, Transform


class Flow(Module):
    """Normalizing flow over `features` dimensions, optionally conditioned on a context vector.

    Example:
        >>> import hepnn
        >>> from hepnn.flows import Flow, RQSpline, Permutation
        >>> flow = Flow([RQSpline(2, context_features=1), Permutation(2), RQSpline(2, context_features=1)])
        >>> c = hepnn.randn(6, 1)
        >>> flow.log_prob(hepnn.randn(6, 2), c).shape
        (6,)
        >>> flow.sample(6, c).shape
        (6, 2)
    """

    def __init__(self, transforms):
        super().__init__()
        transforms = list(transforms)
        if not transforms or not all(isinstance(t, Transform) for t in transforms):
            raise TypeError("[Flow] needs a non-empty list of hepnn.flows transforms")
        feats = {t.features for t in transforms}
        if len(feats) != 1:
            raise ValueError(f"[Flow] the transforms disagree on the feature count: {sorted(feats)}")
        self.features = feats.pop()
        self.context_features = max(getattr(t, "context_features", 0) for t in transforms)
        self.transforms = ModuleList(transforms)

    def _context(self, context, n):
        if self.context_features == 0:
            if context is not None:
                raise ValueError("[Flow] built without context, but a context was given")
            return None
        if context is None:
            raise ValueError(f"[Flow] needs a context of {self.context_features} features")
        if not isinstance(context, Tensor):
            context = tensor(np.asarray(context, dtype=self._dtype()), device=self._device())
        if context.ndim == 1:
            context = context.reshape(1, -1)
        if context.ndim != 2 or context.shape[1] != self.context_features:
            raise ValueError(f"[Flow] context must be ({n}, {self.context_features}) or "
                             f"({self.context_features},), got {tuple(context.shape)}")
        if context.shape[0] == 1 and n != 1:
            xp = _backend.xp_of(context.data)
            context = Tensor(xp.ascontiguousarray(xp.broadcast_to(context.data, (n, self.context_features))))
        elif context.shape[0] != n:
            raise ValueError(f"[Flow] context has {context.shape[0]} rows for {n} events")
        return context

    def _dtype(self):
        for p in self.parameters():
            return p.dtype
        return np.float32

    def _device(self):
        for p in self.parameters():
            return p.device
        return "cpu"

    def forward(self, x, context=None):
        """(z, sum of log|det dz/dx|) of x (N, features): the data-to-base direction."""
        if not isinstance(x, Tensor):
            x = tensor(np.asarray(x, dtype=self._dtype()), device=self._device())
        context = self._context(context, x.shape[0])
        total = None
        for t in self.transforms:
            x, ld = t(x, context)
            total = ld if total is None else total + ld
        return x, total

    def inverse(self, z, context=None):
        """(x, sum of log|det dx/dz|) of base points z (N, features)."""
        context = self._context(context, z.shape[0])
        total = None
        for t in reversed(list(self.transforms)):
            z, ld = t.inverse(z, context)
            total = ld if total is None else total + ld
        return z, total

    def log_prob(self, x, context=None):
        """log p(x | context) per row (N,), exact."""
        z, logdet = self.forward(x, context)
        log_base = (z * z).sum(dim=1) * -0.5 - 0.5 * self.features * math.log(2 * math.pi)
        return log_base + logdet

    def sample(self, n, context=None):
        """n samples (n, features); context (n, C) or one (C,) row shared by all. Draws from the
        global generator (hepnn.manual_seed); gradients flow when grad mode is on."""
        n = int(n)
        if n < 1:
            raise ValueError(f"[Flow] sample needs n >= 1, got {n}")
        z = randn(n, self.features, dtype=self._dtype(), device=self._device())
        return self.inverse(z, context)[0]


def build_flow(features, context_features=0, layers=4, kind="spline", bins=8, hidden=64,
               hidden_layers=2, bound=3.0, seed=0, dtype=np.float32):
    """The usual stack: `layers` coupling layers with a random permutation between each pair.

    Example:
        >>> from hepnn.flows import build_flow
        >>> len(build_flow(5, context_features=2, layers=3).transforms)
        5
    """
    if kind not in ("spline", "affine"):
        raise ValueError(f"[build_flow] kind must be 'spline' or 'affine', got {kind!r}")
    ts = []
    for i in range(int(layers)):
        if i:
            ts.append(Permutation(features, order=seed + i))
        if kind == "spline":
            ts.append(RQSpline(features, context_features, bins=bins, hidden=hidden,
                               layers=hidden_layers, bound=bound, dtype=dtype))
        else:
            ts.append(AffineCoupling(features, context_features, hidden=hidden,
                                     layers=hidden_layers, dtype=dtype))
    return Flow(ts)
