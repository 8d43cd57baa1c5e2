"""Weight initialisation (in place, PyTorch names): Glorot/Xavier and He/Kaiming, uniform and
normal, drawn from hepnn's global generator (seeded by hepnn.manual_seed)."""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..tensor import Tensor

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for an activation, as in ``torch.nn.init.calculate_gain``.

    >>> round(calculate_gain("relu"), 4)
    1.4142
    """
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; one of {sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"init: fan in/out need a tensor of at least 2 dimensions, got shape {tuple(t.shape)}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    values = values.astype(t.dtype, copy=False)
    if t.device == "cuda":
        import cupy

        values = cupy.asarray(values)
    t.data[...] = values
    return t


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fills t with U(a, b). ``hepnn.nn.init.uniform_(layer.weight, -0.1, 0.1)``"""
    return _fill(t, _random.generator().uniform(a, b, size=t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fills t with N(mean, std^2). ``hepnn.nn.init.normal_(layer.weight, 0.0, 0.02)``"""
    return _fill(t, _random.generator().normal(mean, std, size=t.shape))


def zeros_(t: Tensor) -> Tensor:
    """Fills t with zeros. ``hepnn.nn.init.zeros_(layer.bias)``"""
    t.data[...] = 0
    return t


def constant_(t: Tensor, value: float) -> Tensor:
    """Fills t with a constant. ``hepnn.nn.init.constant_(layer.bias, 0.1)``"""
    t.data[...] = value
    return t


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    ``hepnn.nn.init.xavier_uniform_(layer.weight)``
    """
    fan_in, fan_out = _fans(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan). ``kaiming_uniform_(w, nonlinearity="relu")``"""
    fan = _fans(t)[0 if mode == "fan_in" else 1]
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He normal: N(0, std^2), std = gain / sqrt(fan). ``kaiming_normal_(w, nonlinearity="relu")``"""
    fan = _fans(t)[0 if mode == "fan_in" else 1]
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
