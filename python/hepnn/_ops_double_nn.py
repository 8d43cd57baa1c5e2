"""Differentiable backward rules (create_graph=True) for the kernel activations and the fused
linear(+activation) layer. The fused C++ backward returns arrays, so under create_graph its
gradient is composed from matmul, sum and the activation's derivative written in hepnn ops.
Activations whose derivative is not written here (selu, gelu) are refused by name.
"""
from . import _backend
from . import _ops_kernel as K
from . import _ops_math as M
from . import _ops_shape as S
from . import _ops_trig as G
from ._autograd_graph import unsupported
from ._ops_double import register
from .autograd import constant
from .nn.functional import _linear_bw


def act_factor(act, alpha, y, pre, x=None):
    """d act / d pre-activation as a Tensor (or constant) of y's shape: y the recorded output,
    pre the raw pre-activation (or, where it is not saved, the output: same sign for these
    activations with alpha >= 0), x the recorded pre-activation when there is one."""
    if act == "none":
        return None
    if act == "relu":
        return constant((pre > 0).astype(y.dtype))
    if act == "leaky_relu":
        return constant(_backend_where(pre > 0, 1.0, alpha, y.dtype))
    if act == "elu":  # alpha * exp(z) = y + alpha for z <= 0
        return M.where(constant(pre > 0), 1.0, y + alpha)
    if act == "tanh":
        return 1.0 - y * y
    if act == "sigmoid":
        return y * (1.0 - y)
    if act == "softplus":  # sigmoid(z) = 1 - exp(-softplus(z)), kept accurate for tiny y
        return K.sigmoid(x) if x is not None else -G.expm1(-y)
    raise unsupported(f"ActBackward ({act})")


def _backend_where(mask, a, b, dtype):
    return _backend.xp_of(mask).where(mask, a, b).astype(dtype)


@register(K._act_bw)
def _act_dbw(node, g, need):
    act, xd, _, alpha = node._saved
    f = act_factor(act, alpha, node, xd, node._parents[0])
    return (g if f is None else g * f,)


@register(G._expm1_bw)
def _expm1_dbw(node, g, need):
    return (g * (node + 1.0),)


@register(_linear_bw)
def _linear_dbw(node, g, need):
    x2, wd, z, y, act, alpha = node._saved
    a, w, b = node._parents
    if act in ("leaky_relu", "elu") and z is None and alpha < 0:
        raise unsupported("LinearBackward", f" (activation {act} with alpha < 0)")
    if act not in ("none", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "softplus"):
        raise unsupported(f"LinearBackward (activation {act})")
    pre = (z if z is not None else y).reshape(node.shape)
    f = act_factor(act, alpha, node, pre)
    dz = g if f is None else g * f
    dz2 = S.reshape(dz, (-1, wd.shape[0]))
    dx = dw = db = None
    if need[0]:
        W = w if w is not None else constant(wd)
        dx = S.reshape(K.matmul(dz2, W), a.data.shape)
    if need[1]:
        X2 = S.reshape(a, (-1, wd.shape[1])) if a is not None else constant(x2)
        dw = K.matmul(S.transpose(dz2, 0, 1), X2)
    if need[2]:
        db = S.sum(dz2, dim=0)
    return dx, dw, db

