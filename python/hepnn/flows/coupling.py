"""Coupling layers: the first `features // 2` features pass unchanged and, with the context
vector, feed an MLP (the conditioner) that sets an invertible elementwise map of the others:
a monotone rational-quadratic spline (RQSpline) or an affine map (AffineCoupling). The
conditioner's last layer starts at zero, so a new layer is the identity.
"""
import math

import numpy as np

from .. import _backend
from .._ops_shape import cat
from .._ops_spline import rq_spline
from ..nn import init
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.linear import Linear
from ..tensor import Tensor
from .transforms import Transform


def _mlp(n_in, n_out, hidden, layers, dtype):
    mods, width = [], n_in
    for _ in range(layers):
        mods += [Linear(width, hidden, dtype=dtype), ReLU()]
        width = hidden
    last = Linear(width, n_out, dtype=dtype)
    init.zeros_(last.weight)
    init.zeros_(last.bias)
    return Sequential(*mods, last), last


class _Coupling(Transform):
    """The split, the conditioner and the checks shared by both coupling layers."""

    _name = "coupling"

    def __init__(self, features, context_features, params_per_feature, hidden, layers, dtype):
        super().__init__()
        self.features, self.context_features = int(features), int(context_features)
        if self.features < 1 or self.context_features < 0:
            raise ValueError(f"[{self._name}] needs features >= 1 and context_features >= 0, got "
                             f"{features} and {context_features}")
        if int(hidden) < 1 or int(layers) < 1:
            raise ValueError(f"[{self._name}] hidden and layers must be >= 1, got {hidden}, {layers}")
        self.n_identity = self.features // 2
        self.n_transformed = self.features - self.n_identity
        self.params_per_feature = params_per_feature
        # NOTE: a 1-feature flow without context has nothing to condition on; the MLP then sees a
        # constant 1, which makes its output a free learned parameter vector.
        n_in = self.n_identity + self.context_features
        self._constant_input = n_in == 0
        self.net, self._last = _mlp(max(n_in, 1), self.n_transformed * params_per_feature, hidden,
                                    layers, dtype)

    def _check(self, x, context):
        if not isinstance(x, Tensor):
            raise TypeError(f"[{self._name}] input must be a hepnn.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(f"[{self._name}] input must be (N, {self.features}), got {tuple(x.shape)}")
        if self.context_features == 0:
            if context is not None:
                raise ValueError(f"[{self._name}] built without context, but a context was given")
            return
        if context is None:
            raise ValueError(f"[{self._name}] needs a context of shape (N, {self.context_features})")
        if (not isinstance(context, Tensor) or context.ndim != 2 or
                tuple(context.shape) != (x.shape[0], self.context_features)):
            shape = tuple(context.shape) if isinstance(context, Tensor) else type(context).__name__
            raise ValueError(f"[{self._name}] context must be a Tensor of shape "
                             f"({x.shape[0]}, {self.context_features}), got {shape}")

    def _params(self, x_id, context, n):
        if self._constant_input:
            xp = _backend.xp_of(self._last.weight.data)
            h = Tensor(xp.ones((n, 1), dtype=self._last.weight.dtype))
        elif context is None:
            h = x_id
        elif self.n_identity == 0:
            h = context
        else:
            h = cat([x_id, context], dim=1)
        return self.net(h).reshape(n, self.n_transformed, self.params_per_feature)

    def _apply(self, x, context, inverse):
        self._check(x, context)
        n = x.shape[0]
        x_id, x_tr = x[:, :self.n_identity], x[:, self.n_identity:]
        y_tr, logdet = self._elementwise(x_tr, self._params(x_id, context, n), inverse)
        out = y_tr if self.n_identity == 0 else cat([x_id, y_tr], dim=1)
        return out, logdet.sum(dim=1)

    def forward(self, x, context=None):
        return self._apply(x, context, False)

    def inverse(self, z, context=None):
        return self._apply(z, context, True)


class RQSpline(_Coupling):
    """Conditional rational-quadratic spline coupling layer (Durkan et al. 2019).

    The transformed features go through a monotone spline of `bins` bins on [-bound, bound]
    (identity outside), whose widths, heights and knot derivatives come from an MLP on the
    untouched features and the context. The log-determinant is the kernel's exact one.

    Example:
        >>> import hepnn
        >>> from hepnn.flows import RQSpline
        >>> layer = RQSpline(4, context_features=1, bins=8)
        >>> x, c = hepnn.randn(5, 4), hepnn.randn(5, 1)
        >>> z, logdet = layer(x, c)
        >>> x2, _ = layer.inverse(z, c)
        >>> z.shape, logdet.shape, bool(abs(x2 - x).max().item() < 1e-5)
        ((5, 4), (5,), True)
    """

    _name = "RQSpline"

    def __init__(self, features, context_features=0, bins=8, hidden=64, layers=2, bound=3.0,
                 min_width=1e-3, min_height=1e-3, min_derivative=1e-3, dtype=np.float32):
        bins = int(bins)
        if not 2 <= bins <= 256:
            raise ValueError(f"[RQSpline] bins must be in [2, 256], got {bins}")
        if not (math.isfinite(bound) and bound > 0):
            raise ValueError(f"[RQSpline] bound must be finite and > 0, got {bound}")
        super().__init__(features, context_features, 3 * bins - 1, hidden, layers, dtype)
        self.bins, self.bound = bins, float(bound)
        self.min_width, self.min_height = float(min_width), float(min_height)
        self.min_derivative = float(min_derivative)
        # Interior derivatives start at 1 (softplus(b) + min_derivative = 1): the identity map.
        b = self._last.bias.data.reshape(self.n_transformed, 3 * bins - 1)
        b[:, 2 * bins:] = math.log(math.expm1(1.0 - self.min_derivative))

    def _elementwise(self, x, p, inverse):
        K = self.bins
        return rq_spline(x, p[:, :, :K], p[:, :, K:2 * K], p[:, :, 2 * K:], bound=self.bound,
                         min_width=self.min_width, min_height=self.min_height,
                         min_derivative=self.min_derivative, inverse=inverse)


class AffineCoupling(_Coupling):
    """Conditional affine coupling layer (RealNVP): y = x * exp(s) + t with s, t from an MLP on
    the untouched features and the context; s = scale * tanh(raw / scale) keeps exp(s) bounded.

    Example:
        >>> import hepnn
        >>> from hepnn.flows import AffineCoupling
        >>> layer = AffineCoupling(3)
        >>> z, logdet = layer(hepnn.randn(4, 3))
        >>> z.shape, logdet.tolist()
        ((4, 3), [0.0, 0.0, 0.0, 0.0])
    """

    _name = "AffineCoupling"

    def __init__(self, features, context_features=0, hidden=64, layers=2, scale=3.0, dtype=np.float32):
        super().__init__(features, context_features, 2, hidden, layers, dtype)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"[AffineCoupling] scale must be finite and > 0, got {scale}")
        self.scale = float(scale)

    def _elementwise(self, x, p, inverse):
        s = (p[:, :, 0] * (1.0 / self.scale)).tanh() * self.scale
        t = p[:, :, 1]
        if inverse:
            return (x - t) * (-s).exp(), -s
        return x * s.exp() + t, s
