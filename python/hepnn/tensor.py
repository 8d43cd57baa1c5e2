"""hepnn.Tensor: an n-d array (NumPy on the CPU, CuPy on CUDA) plus the autograd bookkeeping.
The arithmetic, shape and kernel-backed methods are installed from the op table (ops.py); this
file holds storage, conversions, devices, DLPack, and the factory functions.
"""
import numpy as np

from . import _backend, random as _random

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
bool_ = np.dtype(np.bool_)

_DTYPE_NAMES = {"float": float32, "float32": float32, "double": float64, "float64": float64,
                "long": int64, "int64": int64, "int": int32, "int32": int32, "bool": bool_,
                "float16": np.dtype(np.float16), "half": np.dtype(np.float16)}


def as_dtype(dtype):
    """A numpy dtype from a numpy dtype / type, a name ('float32', 'double', ...) or a torch dtype."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        name = dtype
    elif type(dtype).__module__ == "torch":
        name = str(dtype).replace("torch.", "")
    else:
        return np.dtype(dtype)
    try:
        return _DTYPE_NAMES[name]
    except KeyError:
        return np.dtype(name)


class Tensor:
    """An n-dimensional array with automatic differentiation.

    `data` holds the storage (numpy.ndarray on the CPU, cupy.ndarray on CUDA). Make tensors with
    hepnn.tensor or the factory functions; results of operations remember how they were made
    so that backward() can compute gradients of the leaves that have requires_grad=True.

    Example:
        >>> import hepnn
        >>> x = hepnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad.tolist()
        [2.0, 4.0, 6.0]
    """

    # The graph lives on the tensor itself (micrograd style), so recording an op allocates no
    # extra object: _bw is the backward rule of the op that made it (None for leaves), _parents
    # its inputs (None where no gradient is needed), _saved what the rule needs.
    __slots__ = ("data", "grad", "_rg", "_bw", "_parents", "_saved", "__weakref__")
    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to Tensor's operators

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        elif type(data) is not np.ndarray and _backend.device_of(data) != "cuda":
            data = np.asarray(data)
        self.data = data
        self.grad = None
        self._bw = None
        self._parents = self._saved = None
        self._rg = False
        if requires_grad:
            self.requires_grad = True

    # ---- facts ----
    @property
    def shape(self):
        """The shape as a tuple of ints."""
        return self.data.shape

    @property
    def dtype(self):
        """The numpy dtype of the elements."""
        return self.data.dtype

    @property
    def ndim(self):
        """Number of dimensions."""
        return self.data.ndim

    @property
    def device(self):
        """'cpu' or 'cuda'."""
        return _backend.device_of(self.data)

    @property
    def is_cuda(self):
        """True for tensors whose storage is on a CUDA device."""
        return _backend.device_of(self.data) == "cuda"

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded operation (their .grad is filled)."""
        return self._bw is None

    @property
    def grad_fn(self):
        """The recorded operation that produced this tensor (a GradFn), or None for leaves."""
        if self._bw is None:
            return None
        from .autograd import GradFn

        return GradFn(self)

    @property
    def requires_grad(self):
        """Whether gradients flow to this tensor; settable on leaves (floating dtypes only)."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        value = bool(value)
        if self._bw is not None and value != self._rg:
            raise RuntimeError("[requires_grad] you can only change requires_grad of leaf tensors; "
                               "use .detach() to get a tensor outside the graph")
        if value and self.data.dtype.kind not in "fc":
            raise RuntimeError(f"[requires_grad] only floating point tensors can require gradients, "
                               f"got dtype {self.data.dtype}")
        self._rg = value

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place and return self."""
        self.requires_grad = requires_grad
        return self

    def size(self, dim=None):
        """The shape, or its length along `dim`."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        """Number of elements."""
        return self.data.size

    def dim(self):
        """Number of dimensions (same as ndim)."""
        return self.data.ndim

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        body = np.array2string(self._host(), separator=", ", prefix="tensor(")
        extra = []
        if self.data.dtype not in (float32, int64, bool_) or self.data.size == 0:
            extra.append(f"dtype={self.data.dtype}")
        if self.device != "cpu":
            extra.append(f"device='{self.device}'")
        if self._bw is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self._rg:
            extra.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extra) + ")"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"[bool] the truth value of a tensor with {self.data.size} elements "
                               "is ambiguous")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    # ---- conversions ----
    def _host(self):
        return self.data if type(self.data) is np.ndarray else self.data.get()

    def numpy(self):
        """The storage as a numpy array (shared, not copied). CPU tensors only.

        Example:
            >>> import hepnn
            >>> hepnn.tensor([1.0, 2.0]).numpy()
            array([1., 2.], dtype=float32)
        """
        if type(self.data) is not np.ndarray:
            raise TypeError(f"[numpy] cannot convert a {self.device} tensor to numpy; "
                            "call .cpu() first")
        return self.data

    def __array__(self, dtype=None, copy=None):
        if type(self.data) is not np.ndarray:
            raise TypeError(f"[numpy] cannot convert a {self.device} tensor to numpy implicitly; "
                            "call .cpu() first")
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def item(self):
        """The value of a one-element tensor as a Python number.

        Example:
            >>> import hepnn
            >>> hepnn.tensor([2.5]).item()
            2.5
        """
        if self.data.size != 1:
            raise ValueError(f"[item] only one-element tensors can be converted to a Python scalar, "
                             f"got shape {tuple(self.data.shape)}")
        return self.data.item()

    def tolist(self):
        """Nested Python lists of the elements (a number for 0-d tensors)."""
        return self._host().tolist()

    def detach(self):
        """A tensor sharing the storage, outside the graph (requires_grad=False)."""
        return Tensor(self.data)

    def zero_(self):
        """Fill the storage with zeros in place; returns self. Used to clear gradients.

        Example:
            >>> import hepnn
            >>> t = hepnn.ones(2)
            >>> t.zero_().tolist()
            [0.0, 0.0]
        """
        self.data.fill(0)
        return self

    def fill_(self, value):
        """Fill the storage with `value` in place; returns self."""
        self.data.fill(value)
        return self

    def copy_(self, src):
        """Copy the values of `src` (tensor or array, broadcastable) into the storage; returns self."""
        src = src.data if isinstance(src, Tensor) else src
        if _backend.device_of(src) != self.device:
            src = _backend.to_device(src, self.device)
        self.data[...] = src
        return self

    def clone(self):
        """A copy with its own storage; gradients flow back to self."""
        from .ops import clone

        return clone(self)

    def to(self, *args, dtype=None, device=None, copy=False):
        """Move and/or cast: t.to('cuda'), t.to(hepnn.float64), t.to('cpu', 'float64').

        Differentiable: the gradient is moved/cast back. Returns self when nothing changes.

        Example:
            >>> import hepnn
            >>> hepnn.tensor([1, 2]).to(hepnn.float64).dtype
            dtype('float64')
        """
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) and (a.split(":")[0] in ("cpu", "cuda")):
                device = a
            elif type(a).__name__ == "device":
                device = str(a)
            else:
                dtype = a
        from .ops import to_

        return to_(self, device, as_dtype(dtype), copy)

    def cpu(self):
        """This tensor on the CPU (self when it already is)."""
        return self.to("cpu")

    def cuda(self, device=None):
        """This tensor on the CUDA device (RuntimeError saying why when CUDA is unavailable)."""
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def float(self):
        """Cast to float32."""
        return self.to(float32)

    def double(self):
        """Cast to float64."""
        return self.to(float64)

    def long(self):
        """Cast to int64."""
        return self.to(int64)

    def type_as(self, other):
        """Cast to the dtype of `other`."""
        return self.to(other.dtype)

    # ---- DLPack ----
    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    # ---- autograd ----
    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        `gradient` (same shape as self) is required unless self has one element. The graph's saved
        values are freed afterwards unless retain_graph=True.

        Example:
            >>> import hepnn
            >>> w = hepnn.tensor([[1.0, -2.0]], requires_grad=True)
            >>> (w * 3.0).sum().backward()
            >>> w.grad.tolist()
            [[3.0, 3.0]]
        """
        from .autograd import backward

        backward(self, gradient, retain_graph)


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
