import importlib
import os
import sys

import pytest

# Tests import their helpers as `tests.registry`; the repository root must be importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Under compute-sanitizer (.ci/gpu_check) CuPy's memory pool would hide out-of-bounds accesses
# inside its large blocks; plain cudaMalloc per array lets memcheck see them.
if os.environ.get("HEPNN_CUPY_NO_POOL") == "1":
    try:
        import cupy

        cupy.cuda.set_allocator(None)
    except ImportError:
        pass


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.fixture
def example(monkeypatch):
    """example("name") imports examples/name.py afresh (the examples folder on sys.path)."""
    monkeypatch.syspath_prepend(EXAMPLES)

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load
