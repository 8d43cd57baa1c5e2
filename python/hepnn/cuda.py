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
