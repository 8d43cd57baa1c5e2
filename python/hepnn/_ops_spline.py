"""Op table, rational-quadratic spline: _core.spline_forward / _inverse / _backward as autograd ops.
Both directions return (out, logdet) from one node (a packed (2, *S) array sliced into two
tensors). The inverse's gradient comes from the forward's backward at the solved x (implicit
function theorem), so a flow can also be trained through its sampling direction.
Shapes: x (*S), widths / heights (*S, K), derivatives (*S, K-1), all unnormalised.
"""
from . import _backend, _core
from ._ops_kernel import _contig, _xp
from ._ops_shape import getitem
from .autograd import _mode, constant, result_n
from .tensor import Tensor

_OP = "rq_spline"


def _arr(t, name, ref=None):
    if not isinstance(t, Tensor):
        raise TypeError(f"[{_OP}] {name} must be a hepnn.Tensor, got {type(t).__name__}")
    d = t.data
    if ref is not None and t.device != ref.device:
        raise RuntimeError(f"[{_OP}] {name} is on {t.device}, x on {ref.device}")
    return _contig(d)


def rq_spline(x, widths, heights, derivatives, bound=3.0, min_width=1e-3, min_height=1e-3,
              min_derivative=1e-3, inverse=False):
    """Monotone rational-quadratic spline (Neural Spline Flows), elementwise, identity outside
    [-bound, bound]. Returns (y, log|dy/dx|), or with inverse=True (x, log|dx/dy|) for input y.

    widths / heights (*S, K) go through softmax (each bin at least min_width / min_height of
    the interval), derivatives (*S, K-1) through softplus + min_derivative (interior knots; the
    boundary derivatives are 1 so the tails join smoothly).

    Example:
        >>> import hepnn
        >>> from hepnn._ops_spline import rq_spline
        >>> x = hepnn.tensor([-4.0, 0.5, 2.0])
        >>> w, h, d = hepnn.randn(3, 8), hepnn.randn(3, 8), hepnn.randn(3, 7)
        >>> y, logdet = rq_spline(x, w, h, d)
        >>> x2, inv_logdet = rq_spline(y, w, h, d, inverse=True)
        >>> float((x2 - x).abs().max()) < 1e-5, float((logdet + inv_logdet).abs().max()) < 1e-5
        (True, True)
    """
    xd = _arr(x, "x")
    wd, hd, dd = (_arr(t, n, x) for t, n in ((widths, "widths"), (heights, "heights"),
                                              (derivatives, "derivatives")))
    cfg = (float(bound), float(min_width), float(min_height), float(min_derivative))
    xp = _xp(xd)
    packed = xp.empty((2,) + tuple(xd.shape), dtype=xd.dtype)
    fn = _core.spline_inverse if inverse else _core.spline_forward
    fn(xd, wd, hd, dd, packed[0], packed[1], *cfg, _backend.stream_of(xd))
    parents = (x, widths, heights, derivatives)
    if not (_mode.enabled and any(p._rg for p in parents)):
        return constant(packed[0]), constant(packed[1])
    bw = _inverse_bw if inverse else _forward_bw
    node = result_n(packed, bw, parents, (xd, wd, hd, dd, cfg, packed[0]))
    return getitem(node, 0), getitem(node, 1)


def _grads(xd, wd, hd, dd, cfg, gy, gl, want):
    xp = _xp(xd)
    px, pw, ph, pd = want
    dx = xp.empty_like(xd) if px else None
    dw = xp.empty_like(wd) if pw else None
    dh = xp.empty_like(hd) if ph else None
    ddv = xp.empty_like(dd) if pd else None
    _core.spline_backward(xd, wd, hd, dd, gy, gl, dx, dw, dh, ddv, *cfg, _backend.stream_of(xd))
    return dx, dw, dh, ddv


def _forward_bw(node, g):
    xd, wd, hd, dd, cfg, _ = node._saved
    g = _contig(g)
    want = tuple(p is not None for p in node._parents)
    return _grads(xd, wd, hd, dd, cfg, g[0], g[1], want)


# NOTE: x = f^-1(y; theta) gives dx/dy = 1 / f'(x) and dx/dtheta = -(df/dtheta) / f'(x); the
# inverse log-det is -L(x, theta) with L = log f'. Two backward calls at x (one for f, one for L)
# give every term, so the inverse needs no kernel of its own.
def _inverse_bw(node, g):
    yd, wd, hd, dd, cfg, xd = node._saved
    g = _contig(g)
    gx, gl = g[0], g[1]
    xp = _xp(xd)
    want_p = tuple(p is not None for p in node._parents[1:])
    ones = xp.ones_like(xd)
    fprime, df_w, df_h, df_d = _grads(xd, wd, hd, dd, cfg, ones, None, (True,) + want_p)
    dl_x, dl_w, dl_h, dl_d = _grads(xd, wd, hd, dd, cfg, None, ones, (True,) + want_p)
    # total upstream on x itself: gx from x's use, -gl * dL/dx from logdet = -L(x)
    gxt = (gx - gl * dl_x) / fprime
    dy = gxt if node._parents[0] is not None else None
    out = [dy]
    for df, dl in ((df_w, dl_w), (df_h, dl_h), (df_d, dl_d)):
        if df is None:
            out.append(None)
            continue
        out.append(-gxt[..., None] * df - gl[..., None] * dl)
    return tuple(out)

