"""predict(): a model's outputs for a whole array of events, batched, in eval mode without
gradients, as a NumPy array; with mc_samples=N, Monte-Carlo dropout (mean and spread over N
stochastic passes with only the Dropout layers active).
"""
from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .nn.dropout import Dropout
from .tensor import Tensor

__all__ = ["predict"]


def _model_place(model):
    """(device, float dtype) of the model's first parameter; CPU float32 for a parameterless model."""
    for p in model.parameters():
        return p.device, p.dtype
    return "cpu", np.dtype(np.float32)


def _features(fn, X, dtype):
    """X as a host or device array of the model's float dtype, events first."""
    data = X.data if isinstance(X, Tensor) else X
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    if data.ndim == 0:
        raise ValueError(f"[{fn}] X must have an event dimension, got a scalar")
    if data.dtype != dtype:
        data = data.astype(dtype)
    return data


def _batches(data, batch_size, device):
    from . import _backend

    for start in range(0, data.shape[0], batch_size):
        chunk = data[start:start + batch_size]
        if _backend.device_of(chunk) != device:
            chunk = _backend.to_device(chunk, device)
        yield Tensor(chunk)


def _host(t) -> np.ndarray:
    if not isinstance(t, Tensor):
        raise TypeError(f"[predict] the model returned {type(t).__name__}, expected a Tensor")
    return t._host()


def predict(model, X, batch_size: int = 4096, mc_samples: int | None = None):
    """The model's outputs for every row of `X` (NumPy array, CuPy array or Tensor), computed in
    batches of `batch_size` in eval mode under no_grad, returned as one NumPy array.

    With ``mc_samples=N`` the model runs N times per batch with its Dropout layers in training
    mode (everything else in eval mode) and ``(mean, std)`` over the N passes is returned, each
    of the output's shape (std with ddof=0): Monte-Carlo dropout as an uncertainty estimate.
    The dropout masks come from hepnn's global generator (hepnn.manual_seed makes them
    reproducible). A model without Dropout gives std == 0. The model's train/eval mode is
    restored afterwards.

    Example:
        >>> import numpy as np, hepnn
        >>> from hepnn.predict import predict
        >>> model = hepnn.nn.Sequential(hepnn.nn.Linear(3, 16), hepnn.nn.ReLU(),
        ...                             hepnn.nn.Dropout(0.2), hepnn.nn.Linear(16, 1))
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> predict(model, X).shape
        (100, 1)
        >>> mean, std = predict(model, X, mc_samples=20)
        >>> bool((std > 0).all())
        True
    """
    fn = "predict"
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"[{fn}] batch_size must be a positive integer, got {batch_size!r}")
    if mc_samples is not None and (isinstance(mc_samples, bool) or not isinstance(mc_samples, (int, np.integer))
                                   or mc_samples < 2):
        raise ValueError(f"[{fn}] mc_samples must be an integer >= 2 (or None), got {mc_samples!r}")
    device, dtype = _model_place(model)
    data = _features(fn, X, dtype)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            if mc_samples is None:
                outs = [_host(model(xb)) for xb in _batches(data, int(batch_size), device)]
                return _join(outs, data)
            for m in model.modules():
                if isinstance(m, Dropout):
                    m.training = True
            means, stds = [], []
            for xb in _batches(data, int(batch_size), device):
                # float64 accumulation: the spread is a small difference of large sums otherwise.
                runs = np.stack([_host(model(xb)).astype(np.float64) for _ in range(int(mc_samples))])
                means.append(runs.mean(axis=0).astype(dtype))
                stds.append(runs.std(axis=0).astype(dtype))
            return _join(means, data), _join(stds, data)
    finally:
        for m, mode in modes:
            m.training = mode


def _join(outs, data):
    if not outs:  # zero events: no forward pass ran, so the output width is unknown
        return np.empty((0,), dtype=data.dtype)
    return np.concatenate(outs, axis=0)
