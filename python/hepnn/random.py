"""The global random generators behind hepnn.randn / hepnn.rand and dropout masks: a NumPy
Generator for CPU tensors and a CuPy RandomState for CUDA tensors, both reseeded by manual_seed.
"""
import numpy as np

from . import _backend

_seed = None
_cpu = np.random.default_rng()
_cuda = None  # created on first CUDA use, from _seed when one was set


def manual_seed(seed):
    """Seed the generators used by randn, rand, and dropout (CPU and CUDA).

    Example:
        >>> import hepnn
        >>> hepnn.manual_seed(0); a = hepnn.randn(3)
        >>> hepnn.manual_seed(0); b = hepnn.randn(3)
        >>> bool((a.numpy() == b.numpy()).all())
        True
    """
    global _seed, _cpu, _cuda
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"[manual_seed] seed must be non-negative, got {seed}")
    _seed = seed
    _cpu = np.random.default_rng(seed)
    _cuda = None  # re-created from _seed on first CUDA use (no CUDA work on CPU-only machines)


def initial_seed():
    """The seed last given to manual_seed, or None when the generators were seeded from entropy."""
    return _seed


def cpu_generator():
    """The NumPy Generator used for CPU tensors (a new object after each manual_seed).

    Example:
        >>> import hepnn
        >>> hepnn.random.cpu_generator().random() < 1.0
        True
    """
    return _cpu


generator = cpu_generator


def cuda_generator():
    """The CuPy RandomState used for CUDA tensors."""
    global _cuda
    if _cuda is None:
        cp = _backend.require_cuda()
        # Without a manual seed, draw one from the CPU generator so manual_seed fixes both.
        _cuda = cp.random.RandomState(_seed if _seed is not None else int(_cpu.integers(2**63)))
    return _cuda


def normal(shape, dtype, device):
    """Standard normal samples of `shape` as an array on `device` ('cpu' or 'cuda')."""
    if device == "cpu":
        if np.dtype(dtype) in (np.float32, np.float64):
            return _cpu.standard_normal(shape, dtype=dtype)
        return _cpu.standard_normal(shape).astype(dtype)
    return cuda_generator().standard_normal(shape, dtype=dtype)


def uniform(shape, dtype, device):
    """Uniform samples in [0, 1) of `shape` as an array on `device`."""
    if device == "cpu":
        if np.dtype(dtype) in (np.float32, np.float64):
            return _cpu.random(shape, dtype=dtype)
        return _cpu.random(shape).astype(dtype)
    return cuda_generator().random_sample(shape, dtype=dtype)
