"""A NumPy-backed stand-in for CuPy, for machines without a GPU: its arrays are a NumPy subclass
whose module is named 'cupy', so the Python layer takes its CUDA code paths (array module
dispatch, device moves, streams, scatter-add, generators) while _core runs the CPU kernels.
It checks the plumbing only; real CUDA runs are covered by the skipped-without-GPU tests.
install() puts it in sys.modules and makes hepnn treat CUDA as available.
"""
import sys
import types

import numpy as np


class ndarray(np.ndarray):
    """Stand-in for cupy.ndarray: a NumPy array that refuses implicit conversion like CuPy."""

    def get(self):
        return np.array(self.view(np.ndarray), copy=True)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if any(type(i) is np.ndarray for i in inputs):
            raise TypeError("Unsupported type <class 'numpy.ndarray'>")  # CuPy's refusal
        args = [i.view(np.ndarray) if isinstance(i, ndarray) else i for i in inputs]
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, ndarray) else o for o in out)
        res = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(res)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        out = super().__array_wrap__(arr, context, return_scalar)
        return out.view(ndarray) if isinstance(out, np.ndarray) else np.asarray(out).view(ndarray)


ndarray.__module__ = "cupy"


def _wrap(x):
    if isinstance(x, np.ndarray) and not isinstance(x, ndarray):
        return x.view(ndarray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(ndarray)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _unwrap(x):
    if isinstance(x, ndarray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    return x


def _numpy_function(name):
    fn = getattr(np, name)

    def call(*args, **kwargs):
        args = [_unwrap(a) for a in args]
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return _wrap(fn(*args, **kwargs))
    call.__name__ = name
    return call


def _asarray(obj, dtype=None):
    if isinstance(obj, ndarray):
        return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
    return np.array(_unwrap(obj), dtype=dtype, copy=True).view(ndarray)  # host -> "device" copy


def _array(obj, dtype=None, copy=True):
    return np.array(_unwrap(obj), dtype=dtype, copy=True).view(ndarray)


class _Stream:
    ptr = 0

    def synchronize(self):
        pass


class _Device:
    def __init__(self, index=0):
        self.index = index

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class RandomState:
    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def standard_normal(self, size=None, dtype=np.float64):
        return _wrap(self._rng.standard_normal(size, dtype=dtype))

    def random_sample(self, size=None, dtype=np.float64):
        return _wrap(self._rng.random(size, dtype=dtype))


def _scatter_add(target, index, values):
    np.add.at(target.view(np.ndarray), _unwrap(index), _unwrap(values))


def install():
    """Register the stand-in as `cupy` / `cupyx` and make hepnn consider CUDA usable."""
    mod = types.ModuleType("cupy")
    mod.ndarray = ndarray
    for name in ("empty", "zeros", "ones", "empty_like", "zeros_like", "ones_like", "full",
                 "arange", "exp", "log", "sqrt", "abs", "sign", "maximum", "minimum", "where",
                 "concatenate", "stack", "broadcast_to", "ascontiguousarray", "take_along_axis",
                 "nonzero", "expand_dims", "matmul", "searchsorted", "cumsum"):
        setattr(mod, name, _numpy_function(name))
    mod.asarray = _asarray
    mod.array = _array
    mod.from_dlpack = lambda x: np.from_dlpack(x).view(ndarray)
    mod.cuda = types.SimpleNamespace(get_current_stream=lambda: _Stream(), Device=_Device)
    mod.random = types.SimpleNamespace(RandomState=RandomState)
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = _scatter_add
    sys.modules["cupy"] = mod
    sys.modules["cupyx"] = cupyx

    import hepnn._backend as backend

    backend.cuda_unavailable_reason = lambda: None
    backend._cupy = None
    backend._cupy_error = None
    backend.cupy_module()
    return mod
