"""hepnn.cuda: whether CUDA tensors can be used here, how many GPUs there are, and synchronising
with the GPU (CUDA arrays are CuPy arrays; kernels run on CuPy's current stream)."""
from . import _backend, _core


def is_available():
    """True when hepnn was built with CUDA, a GPU is visible and CuPy imports.

    Example:
        >>> import hepnn
        >>> isinstance(hepnn.cuda.is_available(), bool)
        True
    """
    return _backend.cuda_unavailable_reason() is None


def unavailable_reason():
    """None when CUDA can be used, else a sentence saying why not.

    Example:
        >>> import hepnn
        >>> r = hepnn.cuda.unavailable_reason()
        >>> r is None or isinstance(r, str)
        True
    """
    return _backend.cuda_unavailable_reason()


def device_count():
    """Number of CUDA GPUs visible to hepnn (0 without a CUDA build).

    Example:
        >>> import hepnn
        >>> hepnn.cuda.device_count() >= 0
        True
    """
    return int(_core.cuda_device_count()) if _core.cuda_built() else 0


def synchronize():
    """Wait for the work queued on the current CUDA device (for timing); no-op without CUDA.

    Example:
        >>> import hepnn
        >>> hepnn.cuda.synchronize()
    """
    if is_available():
        _backend.cupy_module().cuda.get_current_stream().synchronize()


def set_allow_tf32(allowed):
    """Let CUDA float32 matrix products (matmul, Linear, Conv, attention projections, their
    gradients) run on TF32 tensor cores: inputs rounded to a 10-bit mantissa, sums in float32,
    about 1e-3 relative error instead of 1e-6, several times the fp32 speed on A100/H100/H200.
    Off by default; process-wide, like ``torch.backends.cuda.matmul.allow_tf32``. CPU results
    never change. Without a CUDA build only ``False`` is accepted.

    Example:
        >>> import hepnn
        >>> hepnn.cuda.set_allow_tf32(False)
        >>> hepnn.cuda.allow_tf32()
        False
    """
    if not isinstance(allowed, bool):
        raise TypeError(f"[set_allow_tf32] allowed must be True or False, got {allowed!r}")
    _core.cuda_set_allow_tf32(allowed)


def allow_tf32():
    """Whether CUDA float32 products may use TF32 tensor cores (see set_allow_tf32).

    Example:
        >>> import hepnn
        >>> hepnn.cuda.allow_tf32() in (True, False)
        True
    """
    return bool(_core.cuda_allow_tf32())
