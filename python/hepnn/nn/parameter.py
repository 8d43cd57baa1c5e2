"""Parameter: a leaf Tensor that a Module registers as trainable."""
from __future__ import annotations

from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that requires grad and is collected by ``Module.parameters()``.

    Example::

        >>> import numpy as np, hepnn
        >>> w = hepnn.nn.Parameter(np.zeros((2, 3), dtype=np.float32))
        >>> w.requires_grad
        True
    """

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
