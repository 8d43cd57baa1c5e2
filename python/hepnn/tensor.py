"""hepnn.Tensor: an n-d array (NumPy on the CPU, CuPy on CUDA) plus the autograd bookkeeping.
The arithmetic, shape and kernel-backed methods are installed from the op table (ops.py); this
file holds storage, conversions, devices and DLPack. Factory functions are in _factories.py.
"""
import numpy as np

from . import _backend

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
        >>> x.shape, x.dtype, x.ndim, x.device, x.is_leaf, x.requires_grad
        ((3,), dtype('float32'), 1, 'cpu', True, True)
        >>> y = x * 2
        >>> y.is_leaf, y.grad_fn
        (False, <MulBackward>)
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
        """Set requires_grad in place and return self.

        Example:
            >>> import hepnn
            >>> hepnn.zeros(2).requires_grad_().requires_grad
            True
        """
        self.requires_grad = requires_grad
        return self

    def size(self, dim=None):
        """The shape, or its length along `dim`.

        Example:
            >>> import hepnn
            >>> hepnn.zeros(2, 3).size(1)
            3
        """
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        """Number of elements.

        Example:
            >>> import hepnn
            >>> hepnn.zeros(2, 3).numel()
            6
        """
        return self.data.size

    def dim(self):
        """Number of dimensions (same as ndim).

        Example:
            >>> import hepnn
            >>> hepnn.zeros(2, 3).dim()
            2
        """
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
        """Nested Python lists of the elements (a number for 0-d tensors).

        Example:
            >>> import hepnn
            >>> hepnn.tensor([[1, 2]]).tolist()
            [[1, 2]]
        """
        return self._host().tolist()

    def detach(self):
        """A tensor sharing the storage, outside the graph (requires_grad=False).

        Example:
            >>> import hepnn
            >>> x = hepnn.ones(2, requires_grad=True)
            >>> (x * 2).detach().requires_grad
            False
        """
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
        """Fill the storage with `value` in place; returns self.

        Example:
            >>> import hepnn
            >>> hepnn.zeros(2).fill_(3.0).tolist()
            [3.0, 3.0]
        """
        self.data.fill(value)
        return self

    def copy_(self, src):
        """Copy the values of `src` (tensor or array, broadcastable) into the storage; returns self.

        Example:
            >>> import hepnn
            >>> hepnn.zeros(2).copy_(hepnn.tensor([1.0, 2.0])).tolist()
            [1.0, 2.0]
        """
        src = src.data if isinstance(src, Tensor) else src
        if _backend.device_of(src) != self.device:
            src = _backend.to_device(src, self.device)
        self.data[...] = src
        return self

    def clone(self):
        """A copy with its own storage; gradients flow back to self.

        Example:
            >>> import hepnn
            >>> x = hepnn.ones(2)
            >>> x.clone().data is x.data
            False
        """
        from ._ops_data import clone

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
        from ._ops_data import to_

        return to_(self, device, as_dtype(dtype), copy)

    def cpu(self):
        """This tensor on the CPU (self when it already is).

        Example:
            >>> import hepnn
            >>> hepnn.ones(1).cpu().device
            'cpu'
        """
        return self.to("cpu")

    def cuda(self, device=None):
        """This tensor on the CUDA device (RuntimeError saying why when CUDA is unavailable).

        Example:
            >>> import hepnn
            >>> t = hepnn.ones(1)
            >>> t.cuda().device if hepnn.cuda.is_available() else 'cuda'
            'cuda'
        """
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def float(self):
        """Cast to float32.

        Example:
            >>> import hepnn
            >>> hepnn.tensor([1, 2]).float().dtype
            dtype('float32')
        """
        return self.to(float32)

    def double(self):
        """Cast to float64.

        Example:
            >>> import hepnn
            >>> hepnn.tensor([1.0]).double().dtype
            dtype('float64')
        """
        return self.to(float64)

    def long(self):
        """Cast to int64.

        Example:
            >>> import hepnn
            >>> hepnn.tensor([1.7]).long().tolist()
            [1]
        """
        return self.to(int64)

    def type_as(self, other):
        """Cast to the dtype of `other`.

        Example:
            >>> import hepnn
            >>> hepnn.tensor([1]).type_as(hepnn.zeros(1)).dtype
            dtype('float32')
        """
        return self.to(other.dtype)

    # ---- DLPack ----
    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    # ---- autograd ----
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        `gradient` (same shape as self) is required unless self has one element. The graph's saved
        values are freed afterwards unless retain_graph=True (the default when create_graph=True,
        which records the backward pass so that the .grad tensors can be differentiated again).

        Example:
            >>> import hepnn
            >>> w = hepnn.tensor([[1.0, -2.0]], requires_grad=True)
            >>> (w * 3.0).sum().backward()
            >>> w.grad.tolist()
            [[3.0, 3.0]]
        """
        from .autograd import backward

        backward(self, gradient, retain_graph, create_graph)
