"""Op table, part 4: ops that copy, cast, move or compare data: clone and to() (differentiable
copies), in-place arithmetic on the storage, and comparisons / logic (no gradient).
"""
import operator

from . import _backend
from ._ops_math import _const, _operand_error, add, div, mul, sub
from .autograd import constant, is_grad_enabled, result
from .tensor import Tensor, as_dtype


# ---- copies, casts, devices ----
def clone(a):
    """A copy with its own storage (differentiable).

    Example:
        >>> import hepnn
        >>> hepnn.tensor([1.0]).clone().tolist()
        [1.0]
    """
    return result(a.data.copy(), _identity_bw, a, None)


def _identity_bw(node, g):
    return (g,)


def to_(a, device=None, dtype=None, copy=False):
    """Move to `device` and/or cast to `dtype` (differentiable); a itself when nothing changes."""
    src_device = a.device
    dev = src_device if device is None else _backend.parse_device(device)[0]
    dtype = a.dtype if dtype is None else as_dtype(dtype)
    if dev == src_device and dtype == a.dtype and not copy:
        return a
    if dev == src_device:
        data = a.data.astype(dtype, copy=True)
    else:
        data = _backend.to_device(a.data, device, dtype=dtype, copy=True)
    if dtype.kind not in "fc":
        return constant(data)
    return result(data, _to_bw, a, (src_device, a.dtype))


def _to_bw(node, g):
    device, dtype = node._saved
    if _backend.device_of(g) != device:
        return (_backend.to_device(g, device, dtype=dtype),)
    return (g.astype(dtype, copy=False),)


# ---- in-place arithmetic (x += y, x.add_(y)) ----
def _inplace(name, fn, out_of_place):
    def op(a, b):
        b_rg = isinstance(b, Tensor) and b._rg
        if is_grad_enabled() and (a._rg or b_rg):
            if a._rg and a._bw is None:
                raise RuntimeError(f"[{name}] in-place operation on a leaf tensor that requires "
                                   "grad; wrap it in hepnn.no_grad() or update .data")
            # A tracked result: do it out of place so the graph stays correct (x += y rebinds).
            return out_of_place(a, b)
        bd = b.data if isinstance(b, Tensor) else _const(b, a)
        try:
            fn(a.data, bd)
        except (TypeError, ValueError) as exc:
            raise _operand_error(name, a, b, exc) from None
        return a
    op.__name__ = name
    op.__doc__ = (f"In place: self {name[:-1]} other on the storage (outside autograd; a tracked "
                  "result is updated out of place instead). Returns self.")
    return op


add_ = _inplace("add_", operator.iadd, add)
sub_ = _inplace("sub_", operator.isub, sub)
mul_ = _inplace("mul_", operator.imul, mul)
div_ = _inplace("div_", operator.itruediv, div)


# ---- comparisons and logic: no gradient ----
def _cmp(fn, name):
    def op(a, b):
        return constant(fn(a.data, b.data if isinstance(b, Tensor) else _const(b, a)))
    op.__name__ = name
    return op


lt = _cmp(operator.lt, "lt")
le = _cmp(operator.le, "le")
gt = _cmp(operator.gt, "gt")
ge = _cmp(operator.ge, "ge")
eq = _cmp(operator.eq, "eq")
ne = _cmp(operator.ne, "ne")
and_ = _cmp(operator.and_, "and_")
or_ = _cmp(operator.or_, "or_")
xor = _cmp(operator.xor, "xor")


def invert(a):
    """Elementwise logical not (bool tensors) / bitwise not (integers)."""
    return constant(~a.data)
