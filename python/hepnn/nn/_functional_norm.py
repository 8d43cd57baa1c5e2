"""hepnn.nn.functional batch_norm: torch's signature plus a mask of valid points, so padded
particle sets (ParticleNet-style) normalise over real particles only.
"""
from .._ops_norm import batch_norm_op
from ..tensor import Tensor

__all__ = ["batch_norm"]


def _buffer(t, name):
    if t is None:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"[batch_norm] {name} must be a hepnn Tensor or None, got {type(t).__name__}")
    return t.data


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, mask=None):
    """Batch normalisation of input (N, C, *points) over N and the points, per channel C.

    training=True: normalise with the batch mean and biased variance; running_mean / running_var
    (Tensors (C,) or None) are updated in place as ``(1 - momentum) * running + momentum * batch``
    with the unbiased batch variance. training=False: normalise with the running statistics.
    mask (N, *points), True = valid: statistics over valid points only, padded points output 0
    and get no gradient.

    Example:
        >>> import hepnn, hepnn.nn.functional as F
        >>> x = hepnn.tensor([[1.0], [3.0]])
        >>> rm, rv = hepnn.zeros(1), hepnn.ones(1)
        >>> y = F.batch_norm(x, rm, rv, training=True)
        >>> [round(v[0], 3) for v in y.tolist()]
        [-1.0, 1.0]
        >>> [round(v, 3) for v in rm.tolist() + rv.tolist()]
        [0.2, 1.1]
    """
    return batch_norm_op(input, _buffer(running_mean, "running_mean"),
                         _buffer(running_var, "running_var"), weight, bias, training,
                         momentum, eps, mask)
