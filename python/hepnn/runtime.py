"""The C++ inference runtime from Python: load an ONNX file once, run it through hepnn's kernels.

Example::

    import numpy as np, hepnn.runtime as rt
    sess = rt.Session("mlp.onnx")                      # or the file's bytes, or a Model
    (y,) = sess.run({sess.input_names[0]: np.zeros((1, 30), np.float32)})

A ``Model`` is immutable and may be shared by many threads, each with its own ``Session``.
"""
from __future__ import annotations

import os

import numpy as np

from . import _core

__all__ = ["Model", "Session"]


class Model:
    """A loaded, validated ONNX model (path, ``bytes`` or ``bytearray``). ``input_dtypes`` lists
    each input's NumPy dtype (float32, int64 or bool).

    >>> import onnx, onnx.helper as h
    >>> vi = lambda n, t: h.make_tensor_value_info(n, t, ["N", 3])
    >>> g = h.make_graph([h.make_node("Where", ["m", "x", "x"], ["y"])], "g",
    ...                  [vi("m", onnx.TensorProto.BOOL), vi("x", onnx.TensorProto.FLOAT)],
    ...                  [vi("y", onnx.TensorProto.FLOAT)])
    >>> Model(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]).SerializeToString()).input_dtypes
    [dtype('bool'), dtype('float32')]
    """

    def __init__(self, source):
        if isinstance(source, Model):
            self._m = source._m
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self._m = _core.RuntimeModel.load_bytes(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            self._m = _core.RuntimeModel.load_file(os.fspath(source))
        else:
            raise TypeError(f"[runtime] expected a path, bytes or a Model, got {type(source).__name__}")
        self.input_names = list(self._m.input_names)
        self.output_names = list(self._m.output_names)
        self.input_dtypes = [np.dtype(d) for d in self._m.input_dtypes]

    @property
    def input_shapes(self):
        """Declared input shapes; -1 marks a symbolic dimension."""
        return [tuple(s) for s in self._m.input_shapes]

    @property
    def steps(self):
        """The planned steps after fusion, e.g. ``['Gemm+Relu', 'Gemm']``."""
        return list(self._m.step_ops)


class Session:
    """Runs a Model; one Session per thread. ``run({name: array})`` returns a list of arrays (float32,
    or int64/bool where the graph's outputs are) in the model's output order. Inputs are converted
    to each input's dtype (``model.input_dtypes``). The GIL is released while the graph runs.

    ``threads`` is recorded for per-session thread control, not implemented yet: kernels share
    hepnn's global pool (``hepnn.set_num_threads``) and small batches run on the calling thread."""

    def __init__(self, model, threads: int = 1):
        self.model = model if isinstance(model, Model) else Model(model)
        self._s = _core.RuntimeSession(self.model._m, int(threads))
        self.input_names = self.model.input_names
        self.output_names = self.model.output_names

    def run(self, feeds: dict):
        names = self.input_names
        try:
            arrays = [np.asarray(feeds[n], dtype=d, order="C") for n, d in zip(names, self.model.input_dtypes)]
        except KeyError as e:
            raise ValueError(f"[runtime] missing input {e.args[0]!r}; the model takes {names}") from None
        except TypeError:
            raise TypeError("[runtime] run takes a dict {input name: array}") from None
        if len(feeds) != len(names):
            unknown = sorted(set(feeds) - set(names))
            raise ValueError(f"[runtime] unknown input(s) {unknown}; the model takes {names}")
        return self._s.run(arrays)
