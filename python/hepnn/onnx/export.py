"""hepnn.onnx.export: writes a hepnn model (Sequential MLPs and their activations) as an ONNX file,
built with the `onnx` package, checked with onnx.checker, and written atomically."""
from __future__ import annotations

import os

import numpy as np

from .. import nn
from ..checkpoint import write_atomic
from ..tensor import Tensor
from ._emit import GraphBuilder, emit_layers
from ._walk import check_chain, flatten, leaf_type

_MIN_OPSET = 13  # Softmax/LogSoftmax take a single axis from opset 13 on
_FN = "[onnx.export]"


def _import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as e:
        raise ImportError(f"{_FN} needs the 'onnx' package: pip install 'hepnn[onnx]'") from e
    return onnx


def export(model, example_input, path, input_names=("input",), output_names=("output",),
           dynamic_batch=True, opset=17):
    """Write `model` to `path` as an ONNX file for inference; returns `path`.

    The model is exported in eval mode (Dropout is dropped) and its training flags are restored
    afterwards. Supported layers: Linear (as Gemm with transB=1, weights stay out x in, like the
    PyTorch exporter), ReLU, LeakyReLU, ELU, SELU, GELU (the Gelu op from opset 20, else the
    erf or tanh pattern), Sigmoid, Tanh, Softplus, Softmax, LogSoftmax and Dropout, inside
    Sequential or inside Module subclasses whose forward applies their registered children in
    order (checked numerically on `example_input` and on a random probe; anything else raises
    NotImplementedError). float32 and float64 models; the initializers keep the model's dtype.

    NOTE: ONNX float attributes are 32-bit, so in a float64 model the LeakyReLU/ELU alphas and
    Selu's constants are rounded to float32 (as in the PyTorch exporter): ~3e-8 relative.
    ONNX Runtime also lacks float64 kernels for Elu, Selu, Erf and Softplus.

    Args:
        model: a hepnn.nn.Module.
        example_input: a (batch, features) array or Tensor; it fixes the feature count (and the
            batch size when ``dynamic_batch`` is False). It is cast to the model's dtype.
        path: the output file; its directory must exist. Written to a temporary file in the
            same directory, fsynced, then renamed, so a crash never leaves half a file.
        input_names, output_names: one name each (a str or a 1-element sequence).
        dynamic_batch: the first dimension of input and output is the symbolic "batch".
        opset: the ONNX opset, 13 up to the installed onnx package's newest.

    Raises:
        NotImplementedError: a layer or a forward that cannot be exported (names it).
        ValueError: example_input's shape does not fit the first Linear, bad names or opset.
        FileNotFoundError / IsADirectoryError: the target directory is missing / path is a dir.

    Example:
        >>> import os, tempfile, numpy as np, hepnn
        >>> import hepnn.onnx, onnx
        >>> model = hepnn.nn.Sequential(hepnn.nn.Linear(30, 64), hepnn.nn.GELU(),
        ...                             hepnn.nn.Linear(64, 1), hepnn.nn.Sigmoid())
        >>> path = hepnn.onnx.export(model, np.zeros((1, 30), np.float32),
        ...                          os.path.join(tempfile.mkdtemp(), "tagger.onnx"))
        >>> [n.op_type for n in onnx.load(path).graph.node]
        ['Gemm', 'Div', 'Erf', 'Add', 'Mul', 'Mul', 'Gemm', 'Sigmoid']
    """
    onnx = _import_onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"{_FN} model must be a hepnn.nn.Module, got {type(model).__name__}")
    in_name = _one_name("input_names", input_names)
    out_name = _one_name("output_names", output_names)
    if in_name == out_name:
        raise ValueError(f"{_FN} the input and the output are both named {in_name!r}")
    opset = _check_opset(onnx, opset)
    target = _check_path(path)
    layers = flatten(model)
    dtype, device = _model_placement(model, example_input)
    x = _example_array(example_input, dtype)
    first = next((m for _, m in layers if leaf_type(m) is nn.Linear), None)
    if first is not None and x.shape[1] != first.in_features:
        raise ValueError(f"{_FN} example_input has {x.shape[1]} features (shape {x.shape}); the first "
                         f"Linear expects {first.in_features}")
    y = _run_checked(model, x, dtype, device)

    g = GraphBuilder(onnx, dtype, opset, rank=x.ndim)
    g._used.update((in_name, out_name))
    last = emit_layers(g, layers, in_name)
    if last == in_name:  # nothing but Dropout: ONNX wants a node between input and output
        g.nodes.append(onnx.helper.make_node("Identity", [in_name], [out_name], name="/Identity"))
    else:
        g.nodes[-1].output[0] = out_name
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    batch = "batch" if dynamic_batch else int(x.shape[0])
    graph = onnx.helper.make_graph(
        g.nodes, _graph_name(model),
        [onnx.helper.make_tensor_value_info(in_name, elem, [batch, *x.shape[1:]])],
        [onnx.helper.make_tensor_value_info(out_name, elem, [batch, *y.shape[1:]])],
        initializer=g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="hepnn",
                                   producer_version=_version(),
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    write_atomic(target, proto.SerializeToString())
    return path


def _one_name(what, names):
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if len(names) != 1 or not isinstance(names[0], str) or not names[0]:
        raise ValueError(f"{_FN} {what} must hold exactly one non-empty name (the model has one "
                         f"input and one output), got {names!r}")
    return names[0]


def _check_opset(onnx, opset):
    newest = onnx.defs.onnx_opset_version()
    is_int = isinstance(opset, (int, np.integer)) and not isinstance(opset, bool)
    if not is_int or not _MIN_OPSET <= opset <= newest:
        raise ValueError(f"{_FN} opset must be an integer from {_MIN_OPSET} to {newest}, got {opset!r}")
    return int(opset)


def _check_path(path):
    target = os.fspath(path)
    if not isinstance(target, str):
        target = os.fsdecode(target)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{_FN} directory {directory!r} does not exist (for {target!r})")
    if os.path.isdir(target):
        raise IsADirectoryError(f"{_FN} {target!r} is a directory; give a file name")
    return target


def _model_placement(model, example_input):
    params = list(model.parameters())
    dtypes = {np.dtype(p.dtype) for p in params}
    devices = {p.device for p in params}
    if len(dtypes) > 1 or len(devices) > 1:
        mixed = sorted(map(str, dtypes | devices))
        raise TypeError(f"{_FN} the model's parameters mix dtypes/devices {mixed}")
    if dtypes:
        dtype = dtypes.pop()
    else:
        dtype = np.dtype(getattr(example_input, "dtype", np.float32))
        if dtype.kind != "f":
            dtype = np.dtype(np.float32)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{_FN} only float32 and float64 models can be exported, got {dtype}")
    return dtype, (devices.pop() if devices else "cpu")


def _example_array(example_input, dtype):
    d = example_input.data if isinstance(example_input, Tensor) else example_input
    if hasattr(d, "get") and type(d).__module__.startswith("cupy"):
        d = d.get()
    elif hasattr(d, "detach") and hasattr(d, "cpu"):  # a torch tensor
        d = d.detach().cpu().numpy()
    x = np.asarray(d)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{_FN} example_input must be a non-empty 2-D (batch, features) array, "
                         f"got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{_FN} example_input must hold numbers, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=dtype)


def _run_checked(model, x, dtype, device):
    """Runs the model in eval mode on the example and on a fixed random probe (the user's random
    state untouched), checking every custom forward; restores each module's training flag."""
    from .._factories import tensor

    probe = np.random.default_rng(20240611).standard_normal(x.shape).astype(dtype)
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        tol = (1e-4, 1e-5) if dtype == np.float32 else (1e-9, 1e-12)
        return check_chain(model, [tensor(a, device=device) for a in (x, probe)], *tol)
    finally:
        for m, flag in flags:
            object.__setattr__(m, "training", flag)


def _graph_name(model):
    return f"hepnn_{type(model).__name__}"


def _version():
    from .. import __version__

    return __version__


__all__ = ["export"]
