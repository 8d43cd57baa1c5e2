"""The op table: every op (forward + backward rule, defined in _ops_math.py, _ops_shape.py,
_ops_kernel.py, _ops_data.py and _ops_trig.py) and the Tensor method or operator exposing it.
Forward functions are installed on Tensor directly, so an operator costs one Python call.
"""
from . import _ops_data as D
from . import _ops_kernel as K
from . import _ops_math as M
from . import _ops_shape as S
from . import _ops_trig as G
from .tensor import Tensor

# Ops that are also hepnn.<name> functions.
add, sub, mul, div, neg, pow = M.add, M.sub, M.mul, M.div, M.neg, M.pow
exp, log, sqrt, abs, clamp, where, clone, to_ = M.exp, M.log, M.sqrt, M.abs, M.clamp, M.where, \
    D.clone, D.to_
reshape, flatten, transpose, permute, unsqueeze, squeeze = S.reshape, S.flatten, S.transpose, \
    S.permute, S.unsqueeze, S.squeeze
cat, stack, sum, mean, max, min, argmax, argmin = S.cat, S.stack, S.sum, S.mean, S.max, S.min, \
    S.argmax, S.argmin
matmul, relu, sigmoid, tanh, softmax, log_softmax = K.matmul, K.relu, K.sigmoid, K.tanh, \
    K.softmax, K.log_softmax
sin, cos, sinh, cosh, log1p, expm1, atan2, maximum, minimum, var, std = G.sin, G.cos, G.sinh, \
    G.cosh, G.log1p, G.expm1, G.atan2, G.maximum, G.minimum, G.var, G.std

METHODS = {
    # arithmetic operators (scalars and arrays allowed on either side, broadcasting)
    "__add__": M.add, "__radd__": M.add, "__sub__": M.sub, "__rsub__": M.rsub,
    "__mul__": M.mul, "__rmul__": M.mul, "__truediv__": M.div, "__rtruediv__": M.rdiv,
    "__neg__": M.neg, "__pow__": M.pow, "__rpow__": M.rpow,
    "__matmul__": K.matmul, "__rmatmul__": K.rmatmul,
    "add": M.add, "sub": M.sub, "mul": M.mul, "div": M.div, "neg": M.neg, "pow": M.pow,
    "matmul": K.matmul,
    # in place on the storage (refused on leaves that require grad while grad mode is on)
    "__iadd__": D.add_, "__isub__": D.sub_, "__imul__": D.mul_, "__itruediv__": D.div_,
    "add_": D.add_, "sub_": D.sub_, "mul_": D.mul_, "div_": D.div_,
    # elementwise math
    "exp": M.exp, "log": M.log, "sqrt": M.sqrt, "abs": M.abs, "__abs__": M.abs,
    "clamp": M.clamp, "clip": M.clamp,
    "sin": G.sin, "cos": G.cos, "sinh": G.sinh, "cosh": G.cosh, "log1p": G.log1p,
    "expm1": G.expm1, "atan2": G.atan2, "maximum": G.maximum, "minimum": G.minimum,
    # comparisons and logic (no gradient)
    "__lt__": D.lt, "__le__": D.le, "__gt__": D.gt, "__ge__": D.ge, "__eq__": D.eq,
    "__ne__": D.ne, "__and__": D.and_, "__or__": D.or_, "__xor__": D.xor,
    "__invert__": D.invert,
    # shapes and indexing
    "reshape": S.reshape, "view": S.reshape, "flatten": S.flatten, "transpose": S.transpose,
    "permute": S.permute, "unsqueeze": S.unsqueeze, "squeeze": S.squeeze, "expand": S.expand,
    "__getitem__": S.getitem, "__setitem__": S.setitem,
    # reductions
    "sum": S.sum, "mean": S.mean, "max": S.max, "min": S.min, "argmax": S.argmax,
    "argmin": S.argmin, "var": G.var, "std": G.std,
    # kernel-backed
    "relu": K.relu, "sigmoid": K.sigmoid, "tanh": K.tanh, "softmax": K.softmax,
    "log_softmax": K.log_softmax,
}

for _name, _fn in METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.T = property(S.T, doc="The tensor with its dimensions reversed (2-D: the transpose).")
Tensor.mT = property(lambda t: S.transpose(t, -2, -1), doc="Transpose of the last two dims.")
Tensor.__hash__ = lambda self: id(self)  # __eq__ is elementwise; tensors still hash by identity
