"""Op table, part 5: elementwise math for kinematics (pt, eta, phi <-> px, py, pz, E): sin, cos,
sinh, cosh, atan2, log1p, expm1, elementwise maximum / minimum; and var / std as compositions of
recorded ops (so their gradients come from the rules already in the table).
"""
import numpy as np

from . import _backend
from ._ops_math import _binary, unbroadcast
from ._ops_shape import _axes
from .autograd import result, result2


def _xp(arr):
    return np if type(arr) is np.ndarray else _backend.xp_of(arr)


def sin(a):
    """Elementwise sine.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).sin().tolist()
        [0.0]
    """
    return result(_xp(a.data).sin(a.data), _sin_bw, a, a.data)


def _sin_bw(node, g):
    return (g * _xp(g).cos(node._saved),)


def cos(a):
    """Elementwise cosine.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).cos().tolist()
        [1.0]
    """
    return result(_xp(a.data).cos(a.data), _cos_bw, a, a.data)


def _cos_bw(node, g):
    return (-g * _xp(g).sin(node._saved),)


def sinh(a):
    """Elementwise hyperbolic sine (pz = pt sinh(eta)).

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).sinh().tolist()
        [0.0]
    """
    return result(_xp(a.data).sinh(a.data), _sinh_bw, a, a.data)


def _sinh_bw(node, g):
    return (g * _xp(g).cosh(node._saved),)


def cosh(a):
    """Elementwise hyperbolic cosine (|p| = pt cosh(eta)).

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).cosh().tolist()
        [1.0]
    """
    return result(_xp(a.data).cosh(a.data), _cosh_bw, a, a.data)


def _cosh_bw(node, g):
    return (g * _xp(g).sinh(node._saved),)


def log1p(a):
    """Elementwise log(1 + a), accurate for small a.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).log1p().tolist()
        [0.0]
    """
    return result(_xp(a.data).log1p(a.data), _log1p_bw, a, a.data)


def _log1p_bw(node, g):
    return (g / (1 + node._saved),)


def expm1(a):
    """Elementwise exp(a) - 1, accurate for small a.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([0.0]).expm1().tolist()
        [0.0]
    """
    data = _xp(a.data).expm1(a.data)
    return result(data, _expm1_bw, a, data)


def _expm1_bw(node, g):
    return (g * (node._saved + 1),)


def atan2(a, b):
    """Elementwise angle of the point (b, a) in (-pi, pi]: phi = atan2(py, px).

    Example:
        >>> import hepnn
        >>> round(hepnn.atan2(hepnn.tensor([1.0]), hepnn.tensor([0.0])).item(), 4)
        1.5708
    """
    b, bd, data = _binary("atan2", _xp(a.data).arctan2, a, b)
    return result2(data, _atan2_bw, a, b, (a.data, bd))


def _atan2_bw(node, g):
    a, b = node._parents
    y, x = node._saved
    r2 = x * x + y * y
    return (None if a is None else unbroadcast(g * x / r2, a.data.shape),
            None if b is None else unbroadcast(-g * y / r2, b.data.shape))


def _pick(op, choose_first):
    def fn(a, b):
        xp = _xp(a.data)
        b, bd, data = _binary(op, xp.maximum if op == "maximum" else xp.minimum, a, b)
        return result2(data, _pick_bw, a, b, choose_first(a.data, bd))
    fn.__name__ = op
    fn.__doc__ = (f"Elementwise {op} of two tensors (or a tensor and a scalar) with broadcasting; "
                  "at ties the gradient goes to the first argument.")
    return fn


def _pick_bw(node, g):
    a, b = node._parents
    first = node._saved
    return (None if a is None else unbroadcast(g * first, a.data.shape),
            None if b is None else unbroadcast(g * ~first, b.data.shape))


maximum = _pick("maximum", lambda x, y: x >= y)
minimum = _pick("minimum", lambda x, y: x <= y)


def var(a, dim=None, keepdim=False, correction=1):
    """Variance over all elements or `dim` (int or tuple); correction=1 is the unbiased
    estimator (torch's default), 0 the population variance.

    Example:
        >>> import hepnn
        >>> hepnn.tensor([1.0, 2.0, 3.0, 4.0]).var().item()
        1.6666666269302368
    """
    axes = _axes(dim, a.data.ndim, "var")
    n = a.data.size if axes is None else int(np.prod([a.data.shape[i] for i in axes]))
    centred = a - a.mean(dim=axes, keepdim=True)
    return (centred * centred).sum(dim=axes, keepdim=keepdim) / max(n - correction, 0)


def std(a, dim=None, keepdim=False, correction=1):
    """Standard deviation: sqrt(var(a, dim, keepdim, correction)).

    Example:
        >>> import hepnn
        >>> round(hepnn.tensor([1.0, 3.0]).std().item(), 4)
        1.4142
    """
    return var(a, dim, keepdim, correction).sqrt()

