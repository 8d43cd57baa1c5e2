"""BatchNorm1d and BatchNorm2d: batch normalisation layers with PyTorch's arguments, buffers and
state_dict keys (weight, bias, running_mean, running_var, num_batches_tracked); BatchNorm1d takes
an optional mask of valid points for padded particle sets (N, C, L).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from . import _functional_norm as F
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    """Shared by BatchNorm1d / BatchNorm2d; subclasses say which input ranks they take."""

    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: str = "cpu",
                 dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        if int(num_features) < 1:
            raise ValueError(f"{name}: num_features must be >= 1, got {num_features}")
        if not float(eps) >= 0.0:
            raise ValueError(f"{name}: eps must be >= 0, got {eps}")
        if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None, got {momentum}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = np.dtype(dtype)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        if device != "cpu":
            self.to(device)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        """Running statistics reset; weight 1, bias 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def _check_input(self, x, mask):
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"[batch_norm] {name} input must be a hepnn Tensor, got {type(x).__name__}")
        if x.ndim not in self._ranks:
            want = " or ".join(f"{r}D" for r in self._ranks)
            raise ValueError(f"[batch_norm] {name} expected {want} input, got {x.ndim}D input "
                             f"of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"[batch_norm] {name} expected {self.num_features} channels in dim 1, "
                             f"got input of shape {tuple(x.shape)}")

    def forward(self, input, mask=None):
        self._check_input(input, mask)
        # Torch's rule: the factor is momentum, or 1 / batches seen (a cumulative average) when
        # momentum is None; the counter advances on every training step with running stats.
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep else None,
                            self.running_var if keep else None, self.weight, self.bias,
                            use_batch, factor, self.eps, mask)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs, per channel C, like
    ``torch.nn.BatchNorm1d``. ``forward(x, mask=None)``: for (N, C, L) particle sets padded to L,
    a bool mask (N, L) (True = real particle) restricts the statistics to real particles; padded
    positions output 0, so the result does not depend on how much padding there is.

    Example::

        >>> import numpy as np, hepnn
        >>> bn = hepnn.nn.BatchNorm1d(4)
        >>> x = hepnn.randn(8, 4, 10)
        >>> mask = np.tile(np.arange(10) < 7, (8, 1))  # 7 real particles, 3 padded
        >>> y = bn(x, mask=mask)
        >>> y.shape, float(abs(y.numpy()[:, :, 7:]).max()), int(bn.num_batches_tracked.item())
        ((8, 4, 10), 0.0, 1)
        >>> sorted(bn.state_dict())
        ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs, per channel C, like ``torch.nn.BatchNorm2d``
    (e.g. calorimeter images). An optional mask (N, H, W) selects valid pixels.

    Example::

        >>> import hepnn
        >>> bn = hepnn.nn.BatchNorm2d(3).eval()
        >>> bn(hepnn.ones(2, 3, 4, 4)).shape
        (2, 3, 4, 4)
    """

    _ranks = (4,)
