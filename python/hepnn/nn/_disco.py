"""The DisCo decorrelation term (Kasieczka & Shih, arXiv:2001.05310) as an autograd op: the
event-weighted squared distance correlation between a classifier output and a variable it should
not learn (e.g. the jet mass), from one fused _core call that returns value and gradient.
"""
from .. import _backend, _core
from .._ops_kernel import _contig
from ..autograd import _mode, constant, result_n
from ..tensor import Tensor

_OP = "disco"


def _as_1d(op, name, arr, batch):
    """(B,) or (B, 1) -> (B,); anything else is refused."""
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1 or (batch is not None and arr.shape[0] != batch):
        want = "(B,) or (B, 1)" if batch is None else f"({batch},) or ({batch}, 1)"
        raise ValueError(f"[{op}] {name} must have shape {want}, got {tuple(arr.shape)}")
    return arr


def _constant_like(op, name, value, ref, batch):
    """A constant operand (Tensor, array or list) as a contiguous (B,) array on ref's device in
    ref's dtype."""
    if isinstance(value, Tensor):
        if value.requires_grad and _mode.enabled:
            raise RuntimeError(f"[{op}] {name} gets no gradient; pass {name}.detach()")
        value = value.data
    if _backend.device_of(value) != _backend.device_of(ref):
        value = _backend.to_device(value, _backend.device_of(ref))
    xp = _backend.xp_of(ref)
    arr = xp.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"[{op}] {name} must be numeric, got dtype {arr.dtype}")
    return _contig(_as_1d(op, name, arr, batch).astype(ref.dtype, copy=False))


def disco(score, mass, event_weight=None, power=1):
    """Distance-correlation decorrelation term: dCorr^2(score, mass) ** power, a 0-d tensor.

    With normalised event weights p_i = w_i / sum_j w_j (the value does not depend on their
    scale), a_ij = |score_i - score_j| double-centred with p-weighted means (A), the same for the
    mass (B), dCov^2 = sum_ij p_i p_j A_ij B_ij and dCorr^2 = dCov^2(s, m) /
    sqrt(dCov^2(s, s) dCov^2(m, m)), in [0, 1]: 0 when independent (as B grows), 1 when one is a
    linear function of the other. power=1 is the paper's DisCo term (its code also calls this
    value dCorr); power=0.5 gives the distance correlation itself. Used as
    ``loss = bce + lam * disco(score, mass, weights)``.

    score: Tensor (B,) or (B, 1), B >= 2, float32/float64; the gradient flows into it.
    mass: (B,) or (B, 1) Tensor or array, a constant (no gradient).
    event_weight: None or (B,) non-negative with a positive sum, a constant.
    Cost: O(B^2) time (two passes with a gradient, one without), O(B) memory.
    NOTE: at tied scores the derivative of |s_i - s_j| is taken as 0; when the score or the mass
    has zero spread under the weights the value and the gradient are 0. On the GPU, non-finite
    inputs or bad weights give NaN instead of an exception (checking would stall the stream).

    Example:
        >>> import numpy as np, hepnn
        >>> from hepnn.nn._disco import disco
        >>> rng = np.random.default_rng(0)
        >>> mass = rng.uniform(50.0, 150.0, 1000)
        >>> s = hepnn.tensor(np.tanh(mass / 100.0), requires_grad=True)
        >>> d = disco(s, mass)
        >>> round(d.item(), 2)  # a monotonic function of the mass: strongly correlated
        0.98
        >>> round(disco(hepnn.tensor(2.0 * mass + 1.0), mass).item(), 6)  # linear: exactly 1
        1.0
        >>> d.backward()
        >>> s.grad.shape
        (1000,)
        >>> round(disco(hepnn.tensor(rng.normal(size=1000)), mass).item(), 2)  # independent
        0.0
    """
    if not isinstance(score, Tensor):
        raise TypeError(f"[{_OP}] score must be a hepnn Tensor, got {type(score).__name__}")
    power = float(power)
    if not (power > 0.0 and power != float("inf")):
        raise ValueError(f"[{_OP}] power must be finite and > 0, got {power}")
    sd = score.data
    if sd.dtype.kind != "f":
        raise TypeError(f"[{_OP}] score must be floating point, got {sd.dtype}")
    x = _contig(_as_1d(_OP, "score", sd, None))
    batch = x.shape[0]
    if batch < 2:
        raise ValueError(f"[{_OP}] needs at least 2 events, got {batch}")
    y = _constant_like(_OP, "mass", mass, x, batch)
    w = None if event_weight is None else _constant_like(_OP, "event_weight", event_weight, x, batch)
    xp = _backend.xp_of(x)
    need_grad = _mode.enabled and score.requires_grad
    loss = xp.empty((1,), dtype=x.dtype)
    grad = xp.empty_like(x) if need_grad else None
    _core.disco_loss(x, y, w, loss, grad, power, _backend.stream_of(x))
    value = loss.reshape(())
    if not need_grad:
        return constant(value)
    return result_n(value, _disco_bw, (score,), (grad,))


def _disco_bw(node, g):
    (grad,) = node._saved
    (s,) = node._parents
    return ((grad * g).reshape(s.data.shape),)


__all__ = ["disco"]
