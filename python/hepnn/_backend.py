"""Array-module plumbing for the Python layer: which module (NumPy or CuPy) holds an array, its
device name, the CUDA stream to hand to _core, and moving arrays between devices.
CuPy is imported lazily so that the package works on machines without it.
"""
import numpy as np

from . import _core

_ndarray = np.ndarray
_cupy = None  # the cupy module once imported successfully
_cupy_error = None  # why importing cupy failed (str), once tried


def cupy_module():
    """CuPy, or None when it cannot be imported (the reason is kept for error messages)."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy

            if not hasattr(cupy, "ndarray"):  # a stray folder named cupy on sys.path, not CuPy
                raise ImportError(f"'cupy' at {getattr(cupy, '__path__', '?')} is not CuPy")
            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install
            _cupy_error = f"{type(exc).__name__}: {exc}"
    return _cupy


def cuda_unavailable_reason():
    """None when CUDA tensors can be made, else a sentence saying why not."""
    if not _core.cuda_built():
        return "hepnn was built without CUDA (rebuild with -DHEPNN_CUDA=ON and nvcc available)"
    if _core.cuda_device_count() <= 0:
        return "hepnn was built with CUDA but no CUDA GPU is visible"
    if cupy_module() is None:
        return f"CuPy is not importable ({_cupy_error}); install cupy-cuda13x or cupy-cuda12x"
    return None


def require_cuda():
    """CuPy, or RuntimeError explaining why CUDA cannot be used."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"[cuda] cannot use a CUDA device: {reason}")
    return _cupy


def _cupy_for(arr):
    """CuPy when `arr` is a CuPy array (importing CuPy on first sight), else None."""
    if _cupy is None:
        if not type(arr).__module__.startswith("cupy"):
            return None
        cupy_module()
    return _cupy if _cupy is not None and isinstance(arr, _cupy.ndarray) else None


def xp_of(arr):
    """The array module (numpy or cupy) of an array."""
    if type(arr) is _ndarray:
        return np
    return _cupy_for(arr) or np


def device_of(arr):
    """'cpu' for NumPy arrays (and anything that is not a CuPy array), 'cuda' for CuPy arrays."""
    if type(arr) is _ndarray:
        return "cpu"
    return "cpu" if _cupy_for(arr) is None else "cuda"


def stream_of(arr):
    """The stream handle _core expects: 0 on the CPU, CuPy's current stream on CUDA."""
    if type(arr) is _ndarray:
        return 0
    cp = _cupy_for(arr)
    return 0 if cp is None else cp.cuda.get_current_stream().ptr


def parse_device(device):
    """('cpu', None) or ('cuda', index or None) from 'cpu', 'cuda', 'cuda:1' (or None -> cpu)."""
    if device is None:
        return "cpu", None
    if not isinstance(device, str):
        device = str(device)  # e.g. a torch.device
    name, _, index = device.partition(":")
    if name == "cpu" and not index:
        return "cpu", None
    if name == "cuda":
        if not index:
            return "cuda", None
        if index.isdigit():
            return "cuda", int(index)
    raise ValueError(f"[device] unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def to_device(arr, device, dtype=None, copy=False):
    """`arr` (any array-like) as an array on `device` ('cpu' | 'cuda[:N]'), optionally cast."""
    name, index = parse_device(device)
    if name == "cpu":
        if type(arr) is not _ndarray and _cupy is not None and isinstance(arr, _cupy.ndarray):
            arr = arr.get()
            copy = False
        out = np.array(arr, dtype=dtype, copy=True) if copy else np.asarray(arr, dtype=dtype)
        return out
    cp = require_cuda()
    if index is None:
        return cp.array(arr, dtype=dtype, copy=copy) if copy else cp.asarray(arr, dtype=dtype)
    with cp.cuda.Device(index):
        return cp.array(arr, dtype=dtype, copy=copy) if copy else cp.asarray(arr, dtype=dtype)


def scatter_add(xp, target, index, values):
    """target[index] += values with repeated indices accumulated (np.add.at on the CPU)."""
    if xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx

        # Boolean masks become their integer coordinates, the form cupyx.scatter_add takes.
        items = index if isinstance(index, tuple) else (index,)
        norm = []
        for i in items:
            if getattr(i, "dtype", None) == np.bool_:
                norm.extend(xp.nonzero(i))
            else:
                norm.append(i)
        cupyx.scatter_add(target, tuple(norm), values)
