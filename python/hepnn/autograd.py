"""Reverse-mode autograd: grad mode (no_grad), recording an op on its output tensor, and
backward() = one topological sort of the graph plus one reverse pass over it.
The forward and backward rules of the ops live in the op table (ops.py and _ops_*.py).
"""
import functools
import threading

import numpy as np

from . import _backend
from .tensor import Tensor


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()
_new = Tensor.__new__
_ndarray = np.ndarray
_generic = np.generic


def is_grad_enabled():
    """True when operations are being recorded for backward (the default).

    Example:
        >>> import hepnn
        >>> with hepnn.no_grad():
        ...     hepnn.is_grad_enabled()
        False
    """
    return _mode.enabled


class set_grad_enabled:
    """Context manager (or plain call) that turns gradient recording on or off.

    Example:
        >>> import hepnn
        >>> with hepnn.set_grad_enabled(False):
        ...     y = hepnn.ones(2, requires_grad=True) * 2
        >>> y.requires_grad
        False
    """

    def __init__(self, mode):
        self.prev = _mode.enabled
        _mode.enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev
        return False


class _GradModeContext:
    _enabled = True

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if callable(fn):  # used as a bare decorator: @hepnn.no_grad
            return self(fn)
        return self

    def __enter__(self):
        self.prev = _mode.enabled
        _mode.enabled = self._enabled
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Disable gradient recording inside a `with` block or a decorated function.

    Example:
        >>> import hepnn
        >>> x = hepnn.ones(2, requires_grad=True)
        >>> with hepnn.no_grad():
        ...     y = x * 2
        >>> y.requires_grad
        False
        >>> @hepnn.no_grad()
        ... def f(t):
        ...     return t + 1
        >>> f(x).requires_grad
        False
    """

    _enabled = False


class enable_grad(_GradModeContext):
    """Re-enable gradient recording inside a no_grad region (block or decorator).

    Example:
        >>> import hepnn
        >>> x = hepnn.ones(1, requires_grad=True)
        >>> with hepnn.no_grad():
        ...     with hepnn.enable_grad():
        ...         y = x * 2
        >>> y.requires_grad
        True
    """

    _enabled = True


_FREED = object()  # a tensor's _saved after a backward without retain_graph


class GradFn:
    """A read-only view of the operation that produced a tensor: its name and inputs.
    Backward rules are `bw(out, grad)`; they read out._parents / out._saved and return one
    gradient (array or None) per parent."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor

    @property
    def name(self):
        return self.tensor._bw.__name__.strip("_").replace("_bw", "").capitalize() + "Backward"

    @property
    def parents(self):
        return self.tensor._parents

    def __repr__(self):
        return f"<{self.name}>"


def result(data, bw, a, saved):
    """The output tensor of a one-input op; records the op when `a` needs a gradient."""
    if type(data) is not _ndarray and isinstance(data, _generic):
        data = np.asarray(data)  # NumPy returns scalars for 0-d results; storage is an array
    out = _new(Tensor)
    out.data = data
    out.grad = None
    if a._rg and _mode.enabled:
        out._rg = True
        out._bw = bw
        out._parents = (a,)
        out._saved = saved
    else:
        out._rg = False
        out._bw = None
    return out


def result2(data, bw, a, b, saved):
    """The output of a two-input op; `a`/`b` are Tensors or None (constants). A parent that does
    not need a gradient is stored as None so its backward rule can skip it."""
    if type(data) is not _ndarray and isinstance(data, _generic):
        data = np.asarray(data)
    out = _new(Tensor)
    out.data = data
    out.grad = None
    ra = a is not None and a._rg
    rb = b is not None and b._rg
    if (ra or rb) and _mode.enabled:
        out._rg = True
        out._bw = bw
        out._parents = (a if ra else None, b if rb else None)
        out._saved = saved
    else:
        out._rg = False
        out._bw = None
    return out


def result_n(data, bw, parents, saved):
    """The output of an op with any number of tensor inputs."""
    if type(data) is not _ndarray and isinstance(data, _generic):
        data = np.asarray(data)
    out = _new(Tensor)
    out.data = data
    out.grad = None
    out._rg = False
    out._bw = None
    if _mode.enabled:
        ps = tuple(p if (p is not None and p._rg) else None for p in parents)
        if any(p is not None for p in ps):
            out._rg = True
            out._bw = bw
            out._parents = ps
            out._saved = saved
    return out


def constant(data):
    """A tensor outside the graph wrapping `data` (no copy)."""
    if type(data) is not _ndarray and isinstance(data, _generic):
        data = np.asarray(data)
    out = _new(Tensor)
    out.data = data
    out.grad = None
    out._rg = False
    out._bw = None
    return out


def _topological_order(root):
    """Tensors reachable from root through recorded nodes, each after everything it depends on
    (iterative DFS post-order: deep graphs do not hit the recursion limit)."""
    order = []
    seen = set()
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        # Marked when expanded, not when pushed: a tensor pushed early but reached again through
        # a deeper path must finish after everything that uses it.
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._bw is not None:
            for p in t._parents:
                if p is not None and id(p) not in seen:
                    stack.append((p, False))
    return order


def _initial_grad(root, gradient):
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError("[backward] grad can be implicitly created only for scalar outputs; "
                               f"pass gradient= of shape {tuple(root.shape)}")
        return _backend.xp_of(root.data).ones_like(root.data)
    g = gradient.data if isinstance(gradient, Tensor) else gradient
    if _backend.device_of(g) != root.device:
        g = _backend.to_device(g, root.device)
    xp = _backend.xp_of(root.data)
    g = xp.asarray(g, dtype=root.dtype)
    if g.shape != root.shape:
        raise RuntimeError(f"[backward] gradient has shape {tuple(g.shape)}, "
                           f"expected {tuple(root.shape)}")
    return g


def backward(root, gradient=None, retain_graph=None, create_graph=False):
    """Accumulate the gradient of `root` into the .grad of every leaf that requires it.
    create_graph=True records the backward pass itself (see grad()); retain_graph defaults to
    create_graph, as in torch."""
    if create_graph:
        from ._autograd_graph import backward_graph

        return backward_graph(root, gradient, True if retain_graph is None else retain_graph)
    if not root._rg:
        raise RuntimeError("[backward] the tensor does not require grad and has no grad_fn "
                           "(did you set requires_grad=True on an input, or run under no_grad?)")
    grads = {id(root): _initial_grad(root, gradient)}
    # Gradient arrays may be shared between parents (e.g. add passes its input on), so sums are
    # out of place and a leaf's first gradient is copied before it is accumulated into in place.
    for t in reversed(_topological_order(root)):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        bw = t._bw
        if bw is None:
            if t._rg:
                if g.shape != t.data.shape:
                    raise RuntimeError(f"[backward] gradient of shape {tuple(g.shape)} for a leaf "
                                       f"of shape {tuple(t.data.shape)} (was .data replaced "
                                       "with a different shape after the forward pass?)")
                if t.grad is None:
                    t.grad = constant(g.copy())
                else:
                    t.grad.data += g
            continue
        if t._saved is _FREED:
            raise RuntimeError("[backward] trying to backward through the graph a second time "
                               "(or to use its values after they were freed); specify "
                               "retain_graph=True on the first backward call")
        try:
            pgrads = bw(t, g)
        except Exception as exc:  # name the op whose backward rule failed
            raise RuntimeError(f"[backward] {GradFn(t).name} failed: {type(exc).__name__}: "
                               f"{exc}") from exc
        if not retain_graph and t._saved is not None:
            t._saved = _FREED  # like torch, ops that saved nothing can be run through again
        for p, pg in zip(t._parents, pgrads):
            if p is None or pg is None:
                continue
            if pg.dtype != p.data.dtype:  # mixed-precision op: a gradient has its tensor's dtype
                pg = pg.astype(p.data.dtype)
            k = id(p)
            prev = grads.get(k)
            grads[k] = pg if prev is None else prev + pg


def broadcast_axes(gshape, shape):
    """The axes of a gradient of shape `gshape` to sum (keeping dims) to get back to `shape`."""
    lead = len(gshape) - len(shape)
    return tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape)
                                      if n == 1 and gshape[i + lead] != 1)


def unbroadcast(g, shape):
    """Sum g down to `shape` (the inverse of broadcasting): the gradient of a broadcast input."""
    if g.shape == shape:
        return g
    axes = broadcast_axes(g.shape, shape)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, as a tuple of Tensors (one per
    input), without touching any .grad. With create_graph=True the backward pass is itself
    recorded, so the result can be differentiated again (gradient penalties, Hessian-vector
    products); ops without a differentiable backward rule then raise a RuntimeError naming
    them. grad_outputs weights non-scalar outputs; retain_graph defaults to create_graph; an
    input the outputs do not depend on is an error unless allow_unused=True (it gets None).

    Example:
        >>> import hepnn
        >>> x = hepnn.tensor([1.0, 2.0], requires_grad=True)
        >>> (g,) = hepnn.autograd.grad((x ** 3).sum(), x, create_graph=True)
        >>> g.tolist()
        [3.0, 12.0]
        >>> (h,) = hepnn.autograd.grad(g.sum(), x)
        >>> h.tolist(), x.grad
        ([6.0, 12.0], None)
    """
    from ._autograd_graph import grad as _grad

    return _grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)


__all__ = ["grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "backward", "GradFn"]
