"""hepnn.onnx: export hepnn models to ONNX files, for ONNX Runtime, hepnn's C++ runtime or any
other ONNX consumer. Needs the optional ``onnx`` package: ``pip install 'hepnn[onnx]'``.

Example:
    >>> import os, tempfile, hepnn
    >>> import hepnn.onnx
    >>> model = hepnn.nn.Sequential(hepnn.nn.Linear(4, 8), hepnn.nn.ReLU(), hepnn.nn.Linear(8, 1))
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
    >>> hepnn.onnx.export(model, hepnn.randn(2, 4), path) == path
    True
"""
from .export import export

__all__ = ["export"]
