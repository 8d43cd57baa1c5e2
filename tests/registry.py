"""The op registry: each op family declares its kernels once (inputs, NumPy float64 reference,
shapes, tolerances, backward) in tests/ops/<family>.py as ``SPECS``; test_registry.py runs every
spec forward and backward on every available backend, and bench/ reads the same specs.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, Optional

import numpy as np

import hepnn


@dataclasses.dataclass
class Backend:
    """Where a kernel runs: array module, device name, and the CUDA stream handle to pass."""

    name: str
    xp: Any

    @property
    def stream(self) -> int:
        if self.name == "cuda":
            return self.xp.cuda.get_current_stream().ptr
        return 0

    def asarray(self, a: np.ndarray):
        return self.xp.asarray(np.ascontiguousarray(a))

    def empty(self, shape, dtype):
        """An output buffer poisoned with NaN (or a sentinel for ints) so unwritten elements fail."""
        out = self.xp.empty(shape, dtype=dtype)
        out.fill(np.nan if np.dtype(dtype).kind == "f" else -(2**31))
        return out

    def numpy(self, a) -> np.ndarray:
        return a.get() if self.name == "cuda" else np.asarray(a)


def available_backends() -> list[Backend]:
    backends = [Backend("cpu", np)]
    if hepnn._core.cuda_built() and hepnn._core.cuda_device_count() > 0:
        try:
            import cupy

            backends.append(Backend("cuda", cupy))
        except ImportError:
            pass
    return backends


@dataclasses.dataclass
class OpSpec:
    """One kernel (or forward/backward pair) under test.

    make_inputs(rng, shape) -> dict of float64 (or integer) NumPy arrays, never all zeros/ones.
    forward(inputs, backend) -> dict of outputs; inputs arrive cast to the tested dtype and moved
        to the backend; the kernel must write into buffers made with backend.empty (poisoned).
    reference(inputs) -> dict of float64 NumPy outputs (same keys as forward, or a subset).
    backward(inputs, grad_outputs, backend) -> dict of gradients for the names in grad_inputs;
        checked against central finite differences of forward in float64.
    """

    name: str
    make_inputs: Callable[[np.random.Generator, Any], dict]
    forward: Callable[[dict, Backend], dict]
    reference: Callable[[dict], dict]
    shapes: list
    backward: Optional[Callable[[dict, dict, Backend], dict]] = None
    grad_inputs: tuple = ()
    # Outputs whose gradient flows in backward (default: every output of reference).
    grad_outputs: Optional[tuple] = None
    # Shapes for the finite-difference check (default: the first two of `shapes`).
    grad_shapes: Optional[list] = None
    tol: dict = dataclasses.field(
        default_factory=lambda: {np.float32: (1e-5, 1e-4), np.float64: (1e-12, 1e-10)}
    )
    grad_tol: tuple = (1e-6, 1e-5)
    dtypes: tuple = (np.float32, np.float64)
    backends: tuple = ("cpu", "cuda")
    bench: Optional[dict] = None  # {"shapes": [...], "flops": fn(shape)} for bench/


def all_specs() -> list[OpSpec]:
    from tests import ops

    specs = []
    for info in sorted(pkgutil.iter_modules(ops.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"tests.ops.{info.name}")
        specs.extend(getattr(module, "SPECS", []))
    return specs
