"""Tensor factories: hepnn.tensor (dtype rules like torch), from_dlpack (zero copy), zeros, ones,
empty, full, *_like, randn / rand (the global generator of hepnn.random) and arange.
"""
import numpy as np

from . import _backend, random as _random
from .tensor import Tensor, as_dtype, float32, int64


def _infer_dtype(data):
    """torch's rules: Python floats -> float32, ints -> int64, bools -> bool."""
    arr = np.asarray(data)
    if arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        return arr.astype(np.float32)
    if arr.dtype.kind == "i" and not isinstance(data, (np.ndarray, np.generic)):
        return arr.astype(np.int64)
    return arr


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, numbers, numpy/cupy arrays, tensors).

    Python floats become float32 and Python ints int64 (like torch); numpy arrays keep their
    dtype unless `dtype` is given. `device` defaults to the data's device ('cpu' for Python and
    NumPy data, 'cuda' for CuPy arrays and CUDA tensors).

    Example:
        >>> import hepnn
        >>> hepnn.tensor([[1, 2], [3, 4]]).dtype
        dtype('int64')
        >>> hepnn.tensor([0.5], dtype="float64", requires_grad=True)
        tensor([0.5], dtype=float64, requires_grad=True)
    """
    dtype = as_dtype(dtype)
    if isinstance(data, Tensor):
        data = data.data
    if _backend.device_of(data) == "cuda":
        arr = data
        device = "cuda" if device is None else device
    elif type(data).__module__.startswith("torch") and hasattr(data, "detach"):
        data = data.detach()
        if data.device.type == "cuda":
            arr = _backend.require_cuda().from_dlpack(data)
            device = "cuda" if device is None else device
        else:
            arr = np.from_dlpack(data.cpu())
    elif dtype is None:
        arr = _infer_dtype(data)
    else:
        arr = np.asarray(data)
    return Tensor(_backend.to_device(arr, device or "cpu", dtype=dtype, copy=True), requires_grad)


def from_dlpack(x):
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch ...), no copy.

    CPU producers go through numpy.from_dlpack, CUDA producers through cupy.from_dlpack.

    Example:
        >>> import numpy as np, hepnn
        >>> a = np.arange(3.0)
        >>> t = hepnn.from_dlpack(a)
        >>> t.data[0] = 7.0
        >>> a[0]
        np.float64(7.0)
    """
    if isinstance(x, Tensor):
        return Tensor(x.data)
    if not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"[from_dlpack] {type(x).__name__} does not implement the DLPack protocol")
    dev_type = int(x.__dlpack_device__()[0])
    if dev_type in (1, 3):  # kDLCPU, kDLCUDAHost
        return Tensor(np.from_dlpack(x))
    if dev_type in (2, 13):  # kDLCUDA, kDLCUDAManaged
        return Tensor(_backend.require_cuda().from_dlpack(x))
    raise TypeError(f"[from_dlpack] unsupported DLPack device type {dev_type}")


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _make(arr, requires_grad):
    return Tensor(arr, requires_grad)


def _default_float(dtype):
    return float32 if dtype is None else as_dtype(dtype)


def _alloc(fn, shape, dtype, device):
    name, _ = _backend.parse_device(device)
    xp = np if name == "cpu" else _backend.require_cuda()
    return getattr(xp, fn)(shape, dtype=dtype)


def zeros(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of zeros (float32 unless `dtype`).

    Example:
        >>> import hepnn
        >>> hepnn.zeros(2, 3).shape
        (2, 3)
    """
    return _make(_alloc("zeros", _shape(size), _default_float(dtype), device), requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of ones (float32 unless `dtype`).

    Example:
        >>> import hepnn
        >>> hepnn.ones(2).tolist()
        [1.0, 1.0]
    """
    return _make(_alloc("ones", _shape(size), _default_float(dtype), device), requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False):
    """An uninitialised tensor (float32 unless `dtype`).

    Example:
        >>> import hepnn
        >>> hepnn.empty(4, dtype="float64").dtype
        dtype('float64')
    """
    return _make(_alloc("empty", _shape(size), _default_float(dtype), device), requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False):
    """A tensor of `size` filled with `fill_value` (dtype inferred like hepnn.tensor).

    Example:
        >>> import hepnn
        >>> hepnn.full((2,), 1.5).tolist()
        [1.5, 1.5]
    """
    dtype = as_dtype(dtype) or _infer_dtype(fill_value).dtype
    arr = _alloc("empty", _shape((size,)) if isinstance(size, int) else tuple(size), dtype, device)
    arr.fill(fill_value)
    return _make(arr, requires_grad)


def _like(t, fn, dtype, device, requires_grad):
    dtype = t.dtype if dtype is None else as_dtype(dtype)
    device = t.device if device is None else device
    return _make(_alloc(fn, t.shape, dtype, device), requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    """Zeros with the shape (and by default dtype and device) of `t`.

    Example:
        >>> import hepnn
        >>> hepnn.zeros_like(hepnn.ones(3)).tolist()
        [0.0, 0.0, 0.0]
    """
    return _like(t, "zeros", dtype, device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    """Ones with the shape (and by default dtype and device) of `t`.

    Example:
        >>> import hepnn
        >>> hepnn.ones_like(hepnn.zeros(2, dtype="float64")).dtype
        dtype('float64')
    """
    return _like(t, "ones", dtype, device, requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False):
    """Standard normal samples from the global generator (see hepnn.manual_seed).

    Example:
        >>> import hepnn
        >>> hepnn.manual_seed(1)
        >>> hepnn.randn(2, 3).shape
        (2, 3)
    """
    name, _ = _backend.parse_device(device)
    if name == "cuda":
        _backend.require_cuda()
    return _make(_random.normal(_shape(size), _default_float(dtype), name), requires_grad)


def rand(*size, dtype=None, device="cpu", requires_grad=False):
    """Uniform samples in [0, 1) from the global generator (see hepnn.manual_seed).

    Example:
        >>> import hepnn
        >>> bool(((hepnn.rand(5) >= 0) & (hepnn.rand(5) < 1)).numpy().all())
        True
    """
    name, _ = _backend.parse_device(device)
    if name == "cuda":
        _backend.require_cuda()
    return _make(_random.uniform(_shape(size), _default_float(dtype), name), requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    """Evenly spaced values in [start, end) (int64 for integer arguments, else float32).

    Example:
        >>> import hepnn
        >>> hepnn.arange(4).tolist()
        [0, 1, 2, 3]
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = int64 if is_int else float32
    name, _ = _backend.parse_device(device)
    xp = np if name == "cpu" else _backend.require_cuda()
    return _make(xp.arange(start, end, step, dtype=as_dtype(dtype)), requires_grad)
