"""hepnn: deep learning for particle physics with C++/CUDA kernels and a thin Python autograd.

Example:
    >>> import hepnn
    >>> x = hepnn.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.tolist()
    [2.0, 4.0]
"""
from . import _core
from . import cuda
from .tensor import Tensor, as_dtype, bool_, float32, float64, int32, int64
from ._factories import (arange, empty, from_dlpack, full, ones, ones_like, rand, randn, tensor,
                         zeros, zeros_like)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .random import manual_seed
from .ops import (abs, add, argmax, argmin, atan2, cat, clamp, clone, cos, cosh, div, exp, expm1,
                  flatten, log, log1p, log_softmax, matmul, max, maximum, mean, min, minimum, mul,
                  neg, permute, pow, relu, reshape, sigmoid, sin, sinh, softmax, sqrt, squeeze,
                  stack, std, sub, sum, tanh, transpose, unsqueeze, var, where)
from . import data, metrics, nn, optim, random  # noqa: E402  (after the core names they build on)
from . import callbacks, checkpoint, onnx  # noqa: E402
from . import flows  # noqa: E402
from .callbacks import Callback, EarlyStopping, ModelCheckpoint  # noqa: E402
from .checkpoint import load, save  # noqa: E402
from .linear_model import linear_regression  # noqa: E402
from .predict import predict  # noqa: E402
from .train import History, Trainer, evaluate, fit  # noqa: E402

__version__ = "0.1.0"

float = float32
double = float64
long = int64


def set_num_threads(n):
    """Set the number of threads the CPU kernels use.

    Example:
        >>> import hepnn
        >>> hepnn.set_num_threads(1); hepnn.get_num_threads()
        1
    """
    _core.set_num_threads(int(n))


def get_num_threads():
    """The number of threads the CPU kernels use.

    Example:
        >>> import hepnn
        >>> hepnn.get_num_threads() >= 1
        True
    """
    return _core.get_num_threads()
