"""Module: the base class of every layer, with PyTorch's parameter naming and state_dict layout."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

from ..tensor import Tensor
from .parameter import Parameter


class Module:
    """Base class for layers and models, used like ``torch.nn.Module``.

    Assign Parameters and sub-Modules as attributes; they are found by ``parameters()`` and named
    like PyTorch's (``0.weight``, ``encoder.1.bias``), so ``state_dict`` keys and weight layouts
    match a PyTorch model of the same structure.

    Example::

        >>> import hepnn
        >>> class Net(hepnn.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = hepnn.nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         return self.fc(x).relu()
        >>> sorted(Net().state_dict())
        ['fc.bias', 'fc.weight']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- attribute registration -------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers and (value is None or type(value) is Tensor):
            # Like torch: assigning a tensor (or None) to a buffer's name keeps it a buffer.
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        for table in (self._parameters, self._modules, self._buffers):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for table in (self._parameters, self._modules, self._buffers):
            table.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value) -> None:
        """Registers state that is saved in ``state_dict`` but not trained (e.g. running means)."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def add_module(self, name: str, module: "Module") -> None:
        setattr(self, name, module)

    # ---- traversal ----------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yields ``(name, parameter)`` pairs, each parameter once, in registration order."""
        seen = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Yields every trainable parameter once (for optimizers)."""
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = ""):
        for mod_name, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    # ---- modes ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Sets training mode (dropout active) on this module and all children."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Sets evaluation mode (dropout off); same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears the gradients of all parameters."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def apply(self, fn) -> "Module":
        for m in self.modules():
            fn(m)
        return self

    def to(self, device=None, dtype=None) -> "Module":
        """Moves (or casts) every parameter and buffer in place; returns self.

        ``module.to("cuda")``, ``module.to(dtype=numpy.float64)`` or ``module.to("cpu", numpy.float32)``.
        """
        if device is not None and not isinstance(device, str):
            device, dtype = None, device
        for mod in self.modules():
            for name, p in mod._parameters.items():
                if p is None:
                    continue
                moved = p.detach()
                if dtype is not None:
                    moved = moved.to(np.dtype(dtype))
                if device is not None:
                    moved = moved.to(device)
                p.data = moved.data
                p.grad = None
            for name, b in list(mod._buffers.items()):
                if isinstance(b, Tensor):
                    moved = b
                    if dtype is not None and b.dtype.kind == "f":
                        moved = moved.to(np.dtype(dtype))
                    if device is not None:
                        moved = moved.to(device)
                    mod.register_buffer(name, moved)
        return self

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    # ---- state --------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by PyTorch-style name, as NumPy arrays (copies)."""
        out = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = _to_numpy(p).copy()
        for name, b in self.named_buffers():
            out[name] = _to_numpy(b).copy() if isinstance(b, Tensor) else np.array(b)
        return out

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Loads weights from a dict of NumPy arrays, hepnn Tensors or PyTorch tensors.

        Shapes must match exactly (PyTorch layout: Linear weight is out x in); with ``strict``
        missing or unexpected keys raise KeyError. Nothing is changed if any check fails.

        Example (weights from PyTorch)::

            model.load_state_dict({k: v.detach().numpy() for k, v in torch_model.state_dict().items()})
        """
        own = dict(self.named_parameters())
        own_buffers = {name: (mod, key) for mod_name, mod in self.named_modules()
                       for key, buf in mod._buffers.items() if buf is not None
                       for name in [f"{mod_name}.{key}" if mod_name else key]}
        if strict:
            missing = [k for k in list(own) + list(own_buffers) if k not in state]
            unexpected = [k for k in state if k not in own and k not in own_buffers]
            if missing or unexpected:
                raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for key, value in state.items():
            if key not in own and key not in own_buffers:
                continue
            arr = _to_numpy(value)
            target = own[key] if key in own else getattr(*own_buffers[key])
            tshape = tuple(target.shape) if hasattr(target, "shape") else np.shape(target)
            if tuple(arr.shape) != tshape:
                raise ValueError(f"load_state_dict: {key} has shape {tuple(arr.shape)}, the model expects {tshape}")
            if not np.all(np.isfinite(arr)) and arr.dtype.kind == "f":
                raise ValueError(f"load_state_dict: {key} contains NaN or infinity")
            staged.append((key, arr))
        for key, arr in staged:
            if key in own:
                p = own[key]
                p.data = _like(p, arr)
            else:
                mod, name = own_buffers[key]
                old = getattr(mod, name)
                mod.register_buffer(name, Tensor(_like(old, arr)) if isinstance(old, Tensor) else arr.copy())

    # ---- calling ------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            lines[0] = lines[0]
            for name, m in self._modules.items():
                child = repr(m).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "get") and type(value).__module__.startswith("cupy"):
        return value.get()
    return np.asarray(value)


def _like(target: Tensor, arr: np.ndarray):
    """arr with target's dtype, on target's device, as a fresh contiguous array."""
    out = np.array(arr, dtype=target.dtype, copy=True, order="C")
    if target.device == "cuda":
        import cupy

        return cupy.asarray(out)
    return out
