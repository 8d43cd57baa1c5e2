"""Containers: Sequential (which fuses Linear/Conv + activation pairs into one kernel) and ModuleList."""
from __future__ import annotations

from .activation import _Activation
from .conv import Conv1d, Conv2d, _fused_conv_act_pool
from .linear import Linear
from .module import Module


# Layers whose forward(x, activation=, alpha=) fuses the next activation into their kernel.
_FUSES_ACT = (Linear, Conv1d, Conv2d)


class Sequential(Module):
    """Modules applied in order, named "0", "1", ... like PyTorch (so ``0.weight`` is the first
    layer's weight). A Linear followed by an activation runs as one fused kernel (forward and
    backward); the result is the same as running them one after the other.

    Example::

        >>> import hepnn
        >>> from hepnn import nn
        >>> model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 1))
        >>> model(hepnn.randn(5, 30)).shape
        (5, 1)
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is {type(m).__name__}, not a Module")
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        mods = list(self._modules.values())
        i = 0
        while i < len(mods):
            m = mods[i]
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if type(m) in _FUSES_ACT and isinstance(nxt, _Activation) and nxt.fused_act is not None:
                # Inference: Conv2d -> act -> MaxPool2d is one kernel (None when it does not apply).
                y = _fused_conv_act_pool(m, x, nxt.fused_act, mods[i + 2] if i + 2 < len(mods) else None)
                if y is not None:
                    x, i = y, i + 3
                    continue
                x = m(x, activation=nxt.fused_act[0], alpha=nxt.fused_act[1])
                i += 2
            else:
                x = m(x)
                i += 1
        return x


class ModuleList(Module):
    """A list of Modules registered as children ("0", "1", ...). ``nn.ModuleList([nn.Linear(2, 2)])``"""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        return list(self._modules.values())[i]
