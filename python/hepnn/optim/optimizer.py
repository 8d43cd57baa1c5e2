"""Optimizer base: torch-style param_groups and per-parameter state, with each step running one
fused C++/CUDA call over all parameters of a group."""
from __future__ import annotations

import math

import numpy as np

from .. import _core


def _stream_of(arr) -> int:
    if type(arr).__module__.startswith("cupy"):
        import cupy

        return cupy.cuda.get_current_stream().ptr
    return 0


class Optimizer:
    """Base class. Subclasses define ``defaults`` and ``_step_group``.

    ``params`` is an iterable of Parameters or of dicts ``{"params": [...], "lr": ...}`` (param
    groups, as in PyTorch). ``state`` keeps per-parameter buffers as arrays on the parameter's
    device.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[int, dict] = {}
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        group["params"] = list(group["params"])
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_hyper(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not getattr(p, "requires_grad", False):
                raise ValueError(f"{type(self).__name__}: a parameter does not require grad")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
        self.param_groups.append(group)

    def _check_hyper(self, group: dict) -> None:
        name = type(self).__name__
        for key in ("lr", "weight_decay"):
            value = group.get(key, 0.0)
            try:
                ok = math.isfinite(float(value)) and float(value) >= 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"{name}: {key} must be a finite number >= 0, got {value!r}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears the gradients of every parameter (to None by default, like PyTorch)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def step(self) -> None:
        """Updates every parameter that has a gradient, one fused kernel call per group."""
        for group in self.param_groups:
            self._check_hyper(group)
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if p.grad.shape != p.shape:
                    raise ValueError(f"{type(self).__name__}: gradient shape {p.grad.shape} != parameter shape {p.shape}")
            self._step_group(group, params)

    def _state(self, p, *names: str, fill: float = 0.0) -> dict:
        """The state of parameter p, creating the named buffers (zeros, or `fill`) on first use."""
        st = self.state.get(id(p))
        if st is None:
            st = self.state[id(p)] = {"step": 0}
        for n in names:
            if n not in st:
                buf = p.data.copy()
                buf.fill(fill)
                st[n] = buf
        return st

    def _step_group(self, group: dict, params: list) -> None:
        raise NotImplementedError

    # ---- state dict: buffers keyed by parameter index, as PyTorch does -------------
    def state_dict(self) -> dict:
        index = {}
        for g in self.param_groups:
            for p in g["params"]:
                index.setdefault(id(p), len(index))
        state = {}
        for pid, st in self.state.items():
            if pid in index:
                state[index[pid]] = {k: (v if k == "step" else _host_copy(v)) for k, v in st.items()}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: parameter groups do not match")
        params = [p for g in self.param_groups for p in g["params"]]
        new_state = {}
        for idx, st in sd["state"].items():
            p = params[int(idx)]
            entry = {}
            for k, v in st.items():
                if k == "step":
                    entry[k] = int(v)
                    continue
                arr = np.asarray(v)
                if arr.shape != tuple(p.shape):
                    raise ValueError(f"{type(self).__name__}.load_state_dict: state {k!r} has shape {arr.shape}, parameter {tuple(p.shape)}")
                buf = p.data.copy()
                buf[...] = arr if p.device == "cpu" else __import__("cupy").asarray(arr)
                entry[k] = buf
            new_state[id(p)] = entry
        for g, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":
                    g[k] = v
        self.state = new_state


def _host_copy(arr) -> np.ndarray:
    """A NumPy copy of a state buffer (CuPy buffers come back to the host)."""
    return arr.get() if hasattr(arr, "get") and not isinstance(arr, np.ndarray) else np.array(arr)


def grouped_by_step(opt: Optimizer, params: list, *names: str, fill: float = 0.0):
    """Advances each parameter's step and yields (step, params, states) for runs of equal step,
    so one kernel call covers every parameter at the same step (the usual case: all of them)."""
    runs: dict[int, tuple[list, list]] = {}
    for p in params:
        st = opt._state(p, *names, fill=fill)
        st["step"] += 1
        ps, sts = runs.setdefault(st["step"], ([], []))
        ps.append(p)
        sts.append(st)
    for step, (ps, sts) in runs.items():
        yield step, ps, sts


__all__ = ["Optimizer", "grouped_by_step", "_core", "_stream_of"]
