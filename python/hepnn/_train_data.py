"""What fit() trains on: arrays (X, y[, w]) converted once to the model's dtype and device and
batched by index, or any re-iterable of (x, y[, w]) batches (a DataLoader, a list). Both yield
(x, y, w or None, sum of weights) with Tensors on the model's device.
"""
from __future__ import annotations

import math

import numpy as np

from . import _backend
from .tensor import Tensor


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _is_array(x) -> bool:
    return isinstance(x, Tensor) or (hasattr(x, "shape") and hasattr(x, "dtype"))


def _convert(fn, what, role, arr, device, dtype):
    """One column of a batch or data set as an array of the right dtype on `device`."""
    arr = _raw(arr)
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"[{fn}] {what} {role} must be numeric, got dtype {arr.dtype}")
    if role == "labels" and kind in "iu":
        target = np.dtype(np.int64)  # class indices for cross-entropy
    else:
        target = dtype
    if arr.dtype != target:
        arr = arr.astype(target)
    if _backend.device_of(arr) != device:
        arr = _backend.to_device(arr, device)
    return arr


def _first_bad_row(arr):
    """Index of the first row holding NaN/inf, or None (host arrays; device arrays reduced first)."""
    if arr.dtype.kind != "f":
        return None
    xp = _backend.xp_of(arr)
    ok = xp.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if bool(ok.all()):
        return None
    return int(xp.argmin(ok))


class _ArraySource:
    is_arrays = True

    def __init__(self, fn, what, arrays, device, dtype):
        if not 2 <= len(arrays) <= 3:
            raise ValueError(f"[{fn}] {what} must be (X, y) or (X, y, w), got {len(arrays)} arrays")
        roles = ("features", "labels", "weights")[:len(arrays)]
        cols = [_convert(fn, what, r, a, device, dtype) for r, a in zip(roles, arrays)]
        n = cols[0].shape[0] if cols[0].ndim else None
        if n is None or n == 0:
            raise ValueError(f"[{fn}] {what} features must have at least one event (rows first), "
                             f"got shape {tuple(cols[0].shape)}")
        for r, c in zip(roles[1:], cols[1:]):
            if c.ndim == 0 or c.shape[0] != n:
                raise ValueError(f"[{fn}] {what} {r} have {c.shape[0] if c.ndim else 0} rows but "
                                 f"the features have {n}")
        if len(cols) == 3 and cols[2].ndim != 1:
            raise ValueError(f"[{fn}] {what} weights must have shape ({n},), got {tuple(cols[2].shape)}")
        for r, c in zip(roles, cols):
            bad = _first_bad_row(c)
            if bad is not None:
                raise ValueError(f"[{fn}] {what} {r} contain NaN or infinity (first in row {bad})")
        self.x, self.y = cols[0], cols[1]
        self.w = cols[2] if len(cols) == 3 else None
        # Per-batch weight sums are taken on the host, where summing is cheapest.
        self.w_host = None if self.w is None else np.asarray(_backend.to_device(self.w, "cpu"), np.float64)
        self.n_events = n
        self.device = device

    def set_epoch(self, epoch):
        pass

    def n_batches(self, batch_size):
        return math.ceil(self.n_events / batch_size)

    def batches(self, batch_size, order):
        n = self.n_events
        dev_order = None
        if order is not None:
            dev_order = order if self.device == "cpu" else _backend.to_device(order, self.device)
        for start in range(0, n, batch_size):
            end = min(start + batch_size, n)
            idx = slice(start, end) if order is None else dev_order[start:end]
            host_idx = slice(start, end) if order is None else order[start:end]
            w = None if self.w is None else Tensor(self.w[idx])
            wsum = float(end - start) if w is None else float(self.w_host[host_idx].sum())
            yield Tensor(self.x[idx]), Tensor(self.y[idx]), w, wsum


class _IterSource:
    is_arrays = False

    def __init__(self, fn, what, it, device, dtype):
        if iter(it) is it:
            raise TypeError(f"[{fn}] {what} is an iterator that would be used up after one epoch; "
                            "pass arrays (X, y[, w]), a DataLoader or a list of batches")
        self.fn, self.what, self.it, self.device, self.dtype = fn, what, it, device, dtype
        dataset = getattr(it, "dataset", None)
        self.n_events = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None

    def set_epoch(self, epoch):
        if hasattr(self.it, "set_epoch"):
            self.it.set_epoch(epoch)

    def n_batches(self, batch_size):
        return len(self.it) if hasattr(self.it, "__len__") else None

    def batches(self, batch_size, order):
        fn, what = self.fn, self.what
        for b, batch in enumerate(self.it):
            if not isinstance(batch, (tuple, list)) or not 2 <= len(batch) <= 3:
                raise ValueError(f"[{fn}] batch {b + 1} of {what} must be a tuple (x, y) or (x, y, w), "
                                 f"got {type(batch).__name__}")
            roles = ("features", "labels", "weights")
            cols = [_convert(fn, f"{what} batch {b + 1}", r, a, self.device, self.dtype)
                    for r, a in zip(roles, batch)]
            n = cols[0].shape[0]
            if any(c.shape[0] != n for c in cols[1:]):
                raise ValueError(f"[{fn}] batch {b + 1} of {what}: features, labels and weights "
                                 "differ in their number of rows")
            w = Tensor(cols[2]) if len(cols) == 3 else None
            wsum = float(n) if w is None else float(cols[2].sum())
            yield Tensor(cols[0]), Tensor(cols[1]), w, wsum


def as_source(fn, what, data, device, dtype):
    """Arrays (a tuple/list of 2-3 arrays, or an object with ``.arrays`` like hepnn.data.Dataset)
    or an iterable of batches."""
    arrays = getattr(data, "arrays", None)
    if isinstance(arrays, tuple) and not hasattr(data, "batch_size"):
        return _ArraySource(fn, what, arrays, device, dtype)
    if isinstance(data, (tuple, list)) and 2 <= len(data) <= 3 and all(_is_array(a) for a in data):
        return _ArraySource(fn, what, tuple(data), device, dtype)
    if not hasattr(data, "__iter__"):
        raise TypeError(f"[{fn}] {what} must be (X, y[, w]) arrays or an iterable of batches, "
                        f"got {type(data).__name__}")
    return _IterSource(fn, what, data, device, dtype)
