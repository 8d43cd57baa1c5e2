"""The op table: every differentiable op (forward + backward rule, defined in _ops_math.py,
_ops_shape.py and _ops_kernel.py) and the Tensor method or operator that exposes it.
Forward functions are installed on Tensor directly, so an operator costs one Python call.
"""
from . import _ops_kernel as K
from . import _ops_math as M
from . import _ops_shape as S
from .tensor import Tensor

# Ops that are also hepnn.<name> functions.
add, sub, mul, div, neg, pow = M.add, M.sub, M.mul, M.div, M.neg, M.pow
exp, log, sqrt, abs, clamp, where, clone, to_ = M.exp, M.log, M.sqrt, M.abs, M.clamp, M.where, \
    M.clone, M.to_
reshape, flatten, transpose, permute, unsqueeze, squeeze = S.reshape, S.flatten, S.transpose, \
    S.permute, S.unsqueeze, S.squeeze
cat, stack, sum, mean, max, min, argmax, argmin = S.cat, S.stack, S.sum, S.mean, S.max, S.min, \
    S.argmax, S.argmin
matmul, relu, sigmoid, tanh, softmax, log_softmax = K.matmul, K.relu, K.sigmoid, K.tanh, \
    K.softmax, K.log_softmax

METHODS = {
    # arithmetic operators (scalars and arrays allowed on either side, broadcasting)
    "__add__": M.add, "__radd__": M.add, "__sub__": M.sub, "__rsub__": M.rsub,
    "__mul__": M.mul, "__rmul__": M.mul, "__truediv__": M.div, "__rtruediv__": M.rdiv,
    "__neg__": M.neg, "__pow__": M.pow, "__rpow__": M.rpow,
    "__matmul__": K.matmul, "__rmatmul__": K.rmatmul,
    "add": M.add, "sub": M.sub, "mul": M.mul, "div": M.div, "neg": M.neg, "pow": M.pow,
    "matmul": K.matmul,
    # elementwise math
    "exp": M.exp, "log": M.log, "sqrt": M.sqrt, "abs": M.abs, "__abs__": M.abs,
    "clamp": M.clamp, "clip": M.clamp,
    # comparisons and logic (no gradient)
    "__lt__": M.lt, "__le__": M.le, "__gt__": M.gt, "__ge__": M.ge, "__eq__": M.eq,
    "__ne__": M.ne, "__and__": M.and_, "__or__": M.or_, "__xor__": M.xor,
    "__invert__": M.invert,
    # shapes and indexing
    "reshape": S.reshape, "view": S.reshape, "flatten": S.flatten, "transpose": S.transpose,
    "permute": S.permute, "unsqueeze": S.unsqueeze, "squeeze": S.squeeze, "expand": S.expand,
    "__getitem__": S.getitem, "__setitem__": S.setitem,
    # reductions
    "sum": S.sum, "mean": S.mean, "max": S.max, "min": S.min, "argmax": S.argmax,
    "argmin": S.argmin,
    # kernel-backed
    "relu": K.relu, "sigmoid": K.sigmoid, "tanh": K.tanh, "softmax": K.softmax,
    "log_softmax": K.log_softmax,
}

for _name, _fn in METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.T = property(S.T, doc="The tensor with its dimensions reversed (2-D: the transpose).")
Tensor.mT = property(lambda t: S.transpose(t, -2, -1), doc="Transpose of the last two dims.")
Tensor.__hash__ = lambda self: id(self)  # __eq__ is elementwise; tensors still hash by identity
