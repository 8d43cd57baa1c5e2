"""Op table, part 1: elementwise arithmetic and math on the array module (NumPy/CuPy), each
forward next to its backward rule. Backward rules get (node, grad) and return one gradient per
parent; broadcast inputs get their gradient summed back to their shape (unbroadcast).
"""
import numpy as np

from . import _backend
from .autograd import result, result2, unbroadcast
from .tensor import Tensor

def _const(x, ref):
    """The raw operand for a non-Tensor: Python scalars stay Python scalars (so they do not
    promote float32 tensors), numpy scalars become Python scalars, arrays move to ref's device."""
    if isinstance(x, (float, int)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    return _backend.to_device(x, ref.device)


def _operand_error(op, a, b, exc):
    """A friendlier exception for a failed binary op: device mismatch or shapes that do not
    broadcast; otherwise the original exception."""
    da = a.device
    db = b.device if isinstance(b, Tensor) else _backend.device_of(b)
    if da != db:
        return RuntimeError(f"[{op}] operands are on different devices: {da} and {db}; "
                            "move one with .to()")
    if isinstance(exc, ValueError) and "broadcast" in str(exc):
        bs = tuple(getattr(b, "shape", ()))
        return ValueError(f"[{op}] shapes {tuple(a.shape)} and {bs} cannot be broadcast")
    return exc


def _binary(op, fn, a, b):
    """The slow path of a binary op (b not exactly a Tensor): returns (b or None, raw b, result)."""
    if isinstance(b, Tensor):
        bd = b.data
    else:
        bd = _const(b, a)
        b = None
    try:
        return b, bd, fn(a.data, bd)
    except (TypeError, ValueError) as exc:
        raise _operand_error(op, a, b if b is not None else bd, exc) from None


def _add(x, y):
    return x + y


def _sub(x, y):
    return x - y


def _mul(x, y):
    return x * y


def _div(x, y):
    return x / y


def _rsub_f(x, y):
    return y - x


def _rdiv_f(x, y):
    return y / x


# The hot binary ops are written out (no helper call when both operands are Tensors): an op on
# tiny tensors is dominated by Python calls, measured by bench/bench_mlp.py.

# ---- add / sub ----
def add(a, b):
    """a + b with broadcasting.

    Example:
        >>> import hepnn
        >>> (hepnn.tensor([1.0, 2.0]) + 1.5).tolist()
        [2.5, 3.5]
    """
    if type(b) is Tensor:
        try:
            data = a.data + b.data
        except (TypeError, ValueError) as exc:
            raise _operand_error("add", a, b, exc) from None
    else:
        b, _, data = _binary("add", _add, a, b)
    return result2(data, _add_bw, a, b, None)


def _add_bw(node, g):
    a, b = node._parents
    return (None if a is None else unbroadcast(g, a.data.shape),
            None if b is None else unbroadcast(g, b.data.shape))


def sub(a, b):
    """a - b with broadcasting.

    Example:
        >>> import hepnn
        >>> (hepnn.tensor([[1.0], [2.0]]) - hepnn.tensor([1.0, 0.0])).tolist()
        [[0.0, 1.0], [1.0, 2.0]]
    """
    if type(b) is Tensor:
        try:
            data = a.data - b.data
        except (TypeError, ValueError) as exc:
            raise _operand_error("sub", a, b, exc) from None
    else:
        b, _, data = _binary("sub", _sub, a, b)
    return result2(data, _sub_bw, a, b, None)


def _sub_bw(node, g):
    a, b = node._parents
    return (None if a is None else unbroadcast(g, a.data.shape),
            None if b is None else unbroadcast(-g, b.data.shape))


def rsub(a, b):
    """b - a (b a scalar or array)."""
    b, _, data = _binary("sub", _rsub_f, a, b)
    return result2(data, _rsub_bw, a, b, None)


def _rsub_bw(node, g):
    a, b = node._parents
    return (None if a is None else unbroadcast(-g, a.data.shape),
            None if b is None else unbroadcast(g, b.data.shape))


# ---- mul / div ----
def mul(a, b):
    """a * b with broadcasting.

    Example:
        >>> import hepnn
        >>> x = hepnn.tensor([3.0], requires_grad=True)
        >>> (x * x).backward(); x.grad.tolist()
        [6.0]
    """
    if type(b) is Tensor:
        bd = b.data
        try:
            data = a.data * bd
        except (TypeError, ValueError) as exc:
            raise _operand_error("mul", a, b, exc) from None
    else:
        b, bd, data = _binary("mul", _mul, a, b)
    return result2(data, _mul_bw, a, b, (a.data, bd))


def _mul_bw(node, g):
    a, b = node._parents
    ad, bd = node._saved
    return (None if a is None else unbroadcast(g * bd, a.data.shape),
            None if b is None else unbroadcast(g * ad, b.data.shape))


def div(a, b):
    """a / b with broadcasting (true division).

    Example:
        >>> import hepnn
        >>> (hepnn.tensor([1.0, 3.0]) / 2.0).tolist()
        [0.5, 1.5]
    """
    if type(b) is Tensor:
        bd = b.data
        try:
            data = a.data / bd
        except (TypeError, ValueError) as exc:
            raise _operand_error("div", a, b, exc) from None
    else:
        b, bd, data = _binary("div", _div, a, b)
    return result2(data, _div_bw, a, b, (bd, data))


def _div_bw(node, g):
    a, b = node._parents
    bd, out = node._saved
    ga = g / bd
    return (None if a is None else unbroadcast(ga, a.data.shape),
            None if b is None else unbroadcast(-ga * out, b.data.shape))


def rdiv(a, b):
    """b / a (b a scalar or array)."""
    b, bd, data = _binary("div", _rdiv_f, a, b)
    return result2(data, _rdiv_bw, a, b, (a.data, data))


def _rdiv_bw(node, g):
    a, b = node._parents
    ad, out = node._saved
    gb = g / ad
    return (None if a is None else unbroadcast(-gb * out, a.data.shape),
            None if b is None else unbroadcast(gb, b.data.shape))


def neg(a):
    """-a.

    Example:
        >>> import hepnn
        >>> (-hepnn.tensor([1.0])).tolist()
        [-1.0]
    """
    return result(-a.data, _neg_bw, a, None)


def _neg_bw(node, g):
    return (-g,)


# ---- powers, exp, log ----
def _pow_f(x, y):
    return x ** y


def pow(a, p):
    """a ** p for a scalar or tensor exponent p.

    Example:
        >>> import hepnn
        >>> (hepnn.tensor([2.0, 3.0]) ** 2).tolist()
        [4.0, 9.0]
    """
    if isinstance(p, Tensor):
        p, pd, data = _binary("pow", _pow_f, a, p)
        return result2(data, _pow_tt_bw, a, p, (a.data, pd, data))
    if not isinstance(p, (int, float, np.number)):
        return pow(a, Tensor(_const(p, a)))
    return result(a.data ** p, _pow_bw, a, (a.data, p))


def _pow_bw(node, g):
    x, p = node._saved
    if p == 2:
        return (g * (2 * x),)
    return (g * (p * x ** (p - 1)),)


def _pow_tt_bw(node, g):
    a, b = node._parents
    x, y, out = node._saved
    xp = _backend.xp_of(out)
    ga = gb = None
    if a is not None:
        ga = unbroadcast(g * (y * x ** (y - 1)), a.data.shape)
    if b is not None:
        # NOTE: d(x**y)/dy = x**y log x; defined as 0 where x == 0 (the limit for y > 0).
        logx = xp.log(xp.where(x > 0, x, 1))
        gb = unbroadcast(g * out * logx, b.data.shape)
    return ga, gb


def rpow(a, s):
    """s ** a for a scalar base s."""
    if isinstance(s, Tensor):
        return pow(s, a)
    data = s ** a.data
    return result(data, _rpow_bw, a, (data, float(np.log(s)) if s > 0 else float("nan")))


def _rpow_bw(node, g):
    out, log_s = node._saved
    return (g * out * log_s,)


def exp(a):
    """Elementwise e ** a.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).exp().tolist()
        [1.0]
    """
    data = _backend.xp_of(a.data).exp(a.data)
    return result(data, _exp_bw, a, data)


def _exp_bw(node, g):
    return (g * node._saved,)


def log(a):
    """Elementwise natural logarithm.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([1.0]).log().tolist()
        [0.0]
    """
    return result(_backend.xp_of(a.data).log(a.data), _log_bw, a, a.data)


def _log_bw(node, g):
    return (g / node._saved,)


def sqrt(a):
    """Elementwise square root.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([4.0]).sqrt().tolist()
        [2.0]
    """
    data = _backend.xp_of(a.data).sqrt(a.data)
    return result(data, _sqrt_bw, a, data)


def _sqrt_bw(node, g):
    return (g * 0.5 / node._saved,)


def abs(a):
    """Elementwise |a| (gradient sign(a), 0 at 0).

    Example:
        >>> import hepnn
        >>> hepnn.tensor([-2.0, 1.0]).abs().tolist()
        [2.0, 1.0]
    """
    return result(_backend.xp_of(a.data).abs(a.data), _abs_bw, a, a.data)


def _abs_bw(node, g):
    return (g * _backend.xp_of(node._saved).sign(node._saved),)


def clamp(a, min=None, max=None):
    """Elementwise clip to [min, max] (either may be None); gradient 1 inside, 0 where clipped.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([-2.0, 0.5, 3.0]).clamp(-1.0, 1.0).tolist()
        [-1.0, 0.5, 1.0]
    """
    if min is None and max is None:
        raise ValueError("[clamp] at least one of min and max must be given")
    xp = _backend.xp_of(a.data)
    lo = min.data if isinstance(min, Tensor) else min
    hi = max.data if isinstance(max, Tensor) else max
    data = a.data
    if lo is not None:
        data = xp.maximum(data, lo)
    if hi is not None:
        data = xp.minimum(data, hi)
    return result(data, _clamp_bw, a, (a.data, lo, hi))


def clamp_mask(x, lo, hi):
    """Where clamp passes its input through (the gradient's support)."""
    mask = True
    if lo is not None:
        mask = x >= lo
    if hi is not None:
        mask = mask & (x <= hi)
    return mask


def _clamp_bw(node, g):
    return (g * clamp_mask(*node._saved),)


def where(cond, a, b):
    """Elementwise cond ? a : b with broadcasting; a, b tensors or scalars.

    Example:
        >>> import hepnn
        >>> x = hepnn.tensor([-1.0, 2.0])
        >>> hepnn.where(x > 0, x, 0.0).tolist()
        [0.0, 2.0]
    """
    ref = next((t for t in (a, b, cond) if isinstance(t, Tensor)), None)
    if ref is None:
        raise TypeError("[where] at least one argument must be a hepnn.Tensor")
    c = cond.data if isinstance(cond, Tensor) else _const(cond, ref)
    ad = a.data if isinstance(a, Tensor) else _const(a, ref)
    bd = b.data if isinstance(b, Tensor) else _const(b, ref)
    xp = _backend.xp_of(ref.data)
    c = xp.asarray(c, dtype=bool)
    data = xp.where(c, ad, bd)
    return result2(data, _where_bw, a if isinstance(a, Tensor) else None,
                   b if isinstance(b, Tensor) else None, c)


def _where_bw(node, g):
    a, b = node._parents
    c = node._saved
    return (None if a is None else unbroadcast(g * c, a.data.shape),
            None if b is None else unbroadcast(g * ~c, b.data.shape))
