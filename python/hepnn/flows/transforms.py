"""Invertible transforms of a normalizing flow: the base class and the parameter-free layers
(feature permutations, a fixed standardisation). Every transform maps data x (N, D) towards the
base space, returning (z, log|det dz/dx|) per row, and back with inverse().
"""
import numpy as np

from .. import _backend
from ..nn.module import Module
from ..tensor import Tensor


class Transform(Module):
    """Base class: forward(x, context) -> (z, logdet (N,)); inverse(z, context) -> (x, logdet),
    where the inverse's logdet is log|det dx/dz| (minus the forward's at the same point)."""

    def forward(self, x, context=None):
        raise NotImplementedError

    def inverse(self, z, context=None):
        raise NotImplementedError


def _check_features(x, features, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] input must be a hepnn.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"[{op}] input must be (N, {features}), got shape {tuple(x.shape)}")


def _zeros_rows(x):
    xp = _backend.xp_of(x.data)
    return Tensor(xp.zeros((x.shape[0],), dtype=x.dtype))


class Permutation(Transform):
    """Reorders the features (log-det 0), so the next coupling layer transforms other ones.

    `order` is "reverse" or an integer seed for a random permutation (fixed once built; kept as
    a buffer in the state dict).

    Example:
        >>> import hepnn
        >>> from hepnn.flows import Permutation
        >>> z, logdet = Permutation(3)(hepnn.tensor([[1.0, 2.0, 3.0]]))
        >>> z.tolist(), logdet.tolist()
        ([[3.0, 2.0, 1.0]], [0.0])
    """

    def __init__(self, features, order="reverse"):
        super().__init__()
        self.features = int(features)
        if self.features < 1:
            raise ValueError(f"[Permutation] features must be >= 1, got {features}")
        if order == "reverse":
            idx = np.arange(self.features)[::-1].copy()
        elif isinstance(order, (int, np.integer)) and not isinstance(order, bool):
            idx = np.random.default_rng(int(order)).permutation(self.features)
        else:
            raise ValueError(f"[Permutation] order must be 'reverse' or an integer seed, got {order!r}")
        self.register_buffer("index", Tensor(idx.astype(np.int64)))
        self.register_buffer("inverse_index", Tensor(np.argsort(idx).astype(np.int64)))

    def forward(self, x, context=None):
        _check_features(x, self.features, "Permutation")
        return x[:, self.index.data], _zeros_rows(x)

    def inverse(self, z, context=None):
        _check_features(z, self.features, "Permutation")
        return z[:, self.inverse_index.data], _zeros_rows(z)


class Standardize(Transform):
    """Fixed z = (x - mean) / std per feature (log-det -sum(log std)): brings data to the
    spline's [-bound, bound] range. Usually built from the training set with `fit`.

    Example:
        >>> import numpy as np, hepnn
        >>> from hepnn.flows import Standardize
        >>> t = Standardize.fit(np.array([[0.0, 10.0], [2.0, 30.0]], dtype=np.float32))
        >>> z, logdet = t(hepnn.tensor([[1.0, 20.0]]))
        >>> z.tolist(), round(logdet.item(), 4)
        ([[0.0, 0.0]], -2.3026)
    """

    def __init__(self, mean, std):
        super().__init__()
        mean = np.asarray(mean)
        std = np.asarray(std)
        dtype = mean.dtype if mean.dtype.kind == "f" else np.float32
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ValueError(f"[Standardize] mean and std must be 1-d of one length, got shapes "
                             f"{mean.shape} and {std.shape}")
        if not (np.all(np.isfinite(std)) and np.all(std > 0) and np.all(np.isfinite(mean))):
            raise ValueError("[Standardize] mean must be finite and std finite and > 0")
        self.features = mean.shape[0]
        self.register_buffer("mean", Tensor(mean.astype(dtype)))
        self.register_buffer("std", Tensor(std.astype(dtype)))

    @classmethod
    def fit(cls, x, eps=1e-6):
        """From the column means and standard deviations of x (N, D) (std floored at eps)."""
        x = np.asarray(x)
        return cls(x.mean(0), np.maximum(x.std(0), eps).astype(x.dtype))

    def _logdet(self, x, sign):
        xp = _backend.xp_of(x.data)
        total = sign * float(xp.log(self.std.data.astype(np.float64)).sum())
        return Tensor(xp.full((x.shape[0],), total, dtype=x.dtype))

    def forward(self, x, context=None):
        _check_features(x, self.features, "Standardize")
        return (x - self.mean) / self.std, self._logdet(x, -1.0)

    def inverse(self, z, context=None):
        _check_features(z, self.features, "Standardize")
        return z * self.std + self.mean, self._logdet(z, 1.0)
