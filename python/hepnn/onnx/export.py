"""hepnn.onnx.export: writes a hepnn model (any chain of its layers, with an optional padding mask
input) as an ONNX file, built with the `onnx` package, checked with onnx.checker, and written
atomically."""
from __future__ import annotations

import os

import numpy as np

from .. import nn
from ..checkpoint import write_atomic
from ..tensor import Tensor
from ._chain import emit_layers
from ._emit import GraphBuilder
from ._walk import check_chain, flatten, leaf_of, leaf_type

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

    The model is exported in eval mode (Dropout is dropped, BatchNorm uses its running
    statistics) and its training flags are restored afterwards. Layers and their ONNX form:
    Linear (Gemm with transB=1 on 2-D inputs, like the PyTorch exporter; MatMul + Add on others),
    the activations (GELU: the Gelu op from opset 20, else the erf or tanh pattern), Softmax,
    LogSoftmax, Dropout; Conv1d/Conv2d (Conv; a fused activation is emitted after it),
    ConvTranspose2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvg/MaxPool (global -> GlobalAverage/
    MaxPool, equal windows -> a plain pool, other sizes refused), Flatten, BatchNorm1d/2d
    (BatchNormalization), LayerNorm (LayerNormalization, opset >= 17); GRU / LSTM (one ONNX
    GRU / LSTM per layer, outputs ``output, h_n[, c_n]``; must be the last layer);
    MultiheadAttention (self-attention, output only), TransformerEncoderLayer and
    TransformerEncoder as MatMul/Softmax subgraphs; DeepSets (masked pooling) and EdgeConv (kNN as
    TopK). They may sit inside Sequential or inside Module subclasses whose forward applies their
    registered children in order (checked numerically on `example_input` and on a random probe
    with another batch size; anything else raises NotImplementedError). float32 and float64
    models; the initializers keep the model's dtype (hepnn's own runtime runs float32).

    A padding mask becomes a second, bool graph input ("mask"): give ``example_input=(x, mask)``.
    It is passed as ``key_padding_mask`` / ``src_key_padding_mask`` (True = padded) to attention
    layers and as ``mask`` (True = real) to DeepSets and EdgeConv; a model that is not one of
    these layers is called as ``model(x, mask)``.

    NOTE: ONNX float attributes are 32-bit, so in a float64 model the LeakyReLU/ELU alphas,
    Selu's constants and the norms' eps are rounded to float32 (as in the PyTorch exporter).
    ONNX Runtime also lacks float64 kernels for Elu, Selu, Erf and Softplus.

    Args:
        model: a hepnn.nn.Module.
        example_input: an array or Tensor (batch first; (L, B, .) for recurrent and attention
            layers with batch_first=False), or a pair (x, mask) with a bool mask (B, N). It fixes
            every size but the batch (and the batch too when ``dynamic_batch`` is False) and is
            cast to the model's dtype.
        path: the output file; its directory must exist. Written to a temporary file in the
            same directory, fsynced, then renamed, so a crash never leaves half a file.
        input_names, output_names: one name per graph input / output (a str or a sequence).
            The defaults become ("input", "mask") with a mask and ("output", "output_1", ...)
            for several outputs.
        dynamic_batch: the batch dimension of every input and output is the symbolic "batch".
        opset: the ONNX opset, 13 up to the installed onnx package's newest.

    Raises:
        NotImplementedError: a layer or a forward that cannot be exported (names it).
        ValueError: example_input's shape does not fit the model, a bad mask, names or opset.
        TypeError: a mask that is not bool, an example that is not numbers, a model of mixed dtypes.
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
        >>> enc = hepnn.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0)
        >>> x, pad = np.zeros((2, 10, 16), np.float32), np.zeros((2, 10), bool)
        >>> path = hepnn.onnx.export(enc, (x, pad), os.path.join(tempfile.mkdtemp(), "enc.onnx"))
        >>> [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
        ...  for i in onnx.load(path).graph.input]
        [('input', ['batch', 10, 16]), ('mask', ['batch', 10])]
    """
    onnx = _import_onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"{_FN} model must be a hepnn.nn.Module, got {type(model).__name__}")
    opset = _check_opset(onnx, opset)
    target = _check_path(path)
    layers = flatten(model)
    dtype, device = _model_placement(
        model, example_input[0] if isinstance(example_input, (tuple, list)) and example_input else example_input)
    x, mask = _example_arrays(example_input, dtype)
    axis = leaf_of(layers[0][1]).batch_axis(layers[0][1]) if layers else 0
    _check_example(layers, x, mask, axis)
    # eval mode for the whole build: the emitters of composite layers run their parts again
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        proto = _build(onnx, model, layers, x, mask, axis, dtype, device, input_names, output_names,
                       dynamic_batch, opset)
    finally:
        for m, flag in flags:
            object.__setattr__(m, "training", flag)
    onnx.checker.check_model(proto, full_check=True)
    write_atomic(target, proto.SerializeToString())
    return path


def _build(onnx, model, layers, x, mask, axis, dtype, device, input_names, output_names, dynamic_batch,
           opset):
    """The ModelProto of `model` (already in eval mode), not yet checked."""
    in_names = _names("input_names", input_names, ("input", "mask")[:1 + (mask is not None)])
    outs, shapes, probe_shapes = _run_checked(model, x, mask, axis, dtype, device)
    out_names = _names("output_names", output_names,
                       ["output"] + [f"output_{i}" for i in range(1, len(outs))], default=("output",))
    dup = [n for i, n in enumerate(in_names + out_names) if n in (in_names + out_names)[:i]]
    if dup:
        raise ValueError(f"{_FN} two of the graph's inputs and outputs are both named {dup[0]!r}")

    g = GraphBuilder(onnx, dtype, opset)
    g._used.update(in_names + out_names)
    g.mask = in_names[1] if mask is not None else None
    last = emit_layers(g, layers, shapes, in_names[0])
    _bind_outputs(onnx, g, last if isinstance(last, tuple) else (last,), out_names)
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)

    def dims(shape, batch_axes):
        return [("batch" if dynamic_batch and i in batch_axes else int(n)) for i, n in enumerate(shape)]

    def out_dims(i, y, probe):
        # a dim that follows the batch is "batch"; one that grows with it otherwise (Flatten(0, 1))
        # gets a symbol of its own
        b, pb = x.shape[axis], x.shape[axis] + 3
        return [n if not dynamic_batch or n == m else ("batch" if (n, m) == (b, pb) else f"{out_names[i]}_dim{d}")
                for d, (n, m) in enumerate(zip(y.shape, probe))]

    inputs = [onnx.helper.make_tensor_value_info(in_names[0], elem, dims(x.shape, {axis}))]
    if mask is not None:
        inputs.append(onnx.helper.make_tensor_value_info(in_names[1], onnx.TensorProto.BOOL, dims(mask.shape, {0})))
    outputs = [onnx.helper.make_tensor_value_info(name, elem, out_dims(i, y, ps))
               for i, (name, y, ps) in enumerate(zip(out_names, outs, probe_shapes))]
    graph = onnx.helper.make_graph(g.nodes, _graph_name(model), inputs, outputs, initializer=g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="hepnn",
                                   producer_version=_version(),
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    return proto


def _bind_outputs(onnx, g, values, names):
    """Gives the final values the graph's output names: the node producing a value is renamed
    (and its consumers follow); a graph input, an initializer or a repeated value gets an Identity."""
    produced = {o for n in g.nodes for o in n.output}
    seen = set()
    for value, name in zip(values, names):
        if value not in produced or value in seen:
            g.nodes.append(onnx.helper.make_node("Identity", [value], [name], name=f"/Identity_{name}"))
            continue
        seen.add(value)
        for n in g.nodes:
            for field in (n.input, n.output):
                for i, v in enumerate(field):
                    if v == value:
                        field[i] = name


def _names(what, names, auto, default=("input",)):
    """The graph's input or output names: `names` (a str or a sequence) must hold one per tensor;
    the default names are replaced by `auto` when the model has more than one."""
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if names == tuple(default) and len(auto) != len(names):
        names = tuple(auto)
    if len(names) != len(auto) or not all(isinstance(n, str) and n for n in names):
        count = {1: "one", 2: "two", 3: "three"}.get(len(auto), str(len(auto)))
        raise ValueError(f"{_FN} {what} must hold exactly {count} non-empty name"
                         f"{'s' if len(auto) > 1 else ''} (the model has {count}), got {names!r}")
    return list(names)


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


def _host_array(d):
    d = d.data if isinstance(d, Tensor) else d
    if hasattr(d, "get") and type(d).__module__.startswith("cupy"):
        d = d.get()
    elif hasattr(d, "detach") and hasattr(d, "cpu"):  # a torch tensor
        d = d.detach().cpu().numpy()
    return np.asarray(d)


def _example_arrays(example_input, dtype):
    """(x cast to the model's dtype, mask or None) from an array / Tensor or a pair (x, mask)."""
    mask = None
    if isinstance(example_input, (tuple, list)):
        if len(example_input) != 2:
            raise ValueError(f"{_FN} example_input must be one array or a pair (x, mask), got a "
                             f"{type(example_input).__name__} of {len(example_input)}")
        example_input, mask = example_input
        mask = _host_array(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"{_FN} the example mask must be bool (B, N), got dtype {mask.dtype}")
    x = _host_array(example_input)
    if x.ndim < 2 or x.shape[0] < 1 or 0 in x.shape:
        raise ValueError(f"{_FN} example_input must be a non-empty array of at least 2-D (batch, "
                         f"features, ...), got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{_FN} example_input must hold numbers, got dtype {x.dtype}")
    with np.errstate(over="ignore"):  # an overflow to inf is refused just below
        x = np.ascontiguousarray(x, dtype=dtype)
    if not np.all(np.isfinite(x)):  # the export check compares outputs; NaN never compares equal
        raise ValueError(f"{_FN} example_input holds NaN or inf; give finite example values")
    return x, (None if mask is None else np.ascontiguousarray(mask))


def _check_example(layers, x, mask, axis):
    first = layers[0][1] if layers else None
    if first is not None and leaf_type(first) is nn.Linear and x.shape[-1] != first.in_features:
        raise ValueError(f"{_FN} example_input has {x.shape[-1]} features (shape {x.shape}); the first "
                         f"Linear expects {first.in_features}")
    if mask is None:
        return
    if not any(masked for _, _, masked in layers):
        raise ValueError(f"{_FN} example_input has a mask, but no layer of the model takes one (a mask "
                         "reaches DeepSets, EdgeConv, MultiheadAttention and TransformerEncoder(Layer) "
                         "when the model is that layer or its forward(x, mask) passes it on)")
    want = (x.shape[axis], x.shape[1 - axis])
    if mask.shape != want:
        raise ValueError(f"{_FN} the example mask has shape {mask.shape}; for x of shape {x.shape} it must "
                         f"be (batch, N) = {want}")


def _run_checked(model, x, mask, axis, dtype, device):
    """Runs the model (in eval mode) on the example and on a fixed random probe with 3 more in the
    batch (the user's random state untouched), checking every custom forward. Returns the example's outputs, the leaves' input shapes and the
    probe's output shapes (the dims that differ are the batch)."""
    from .._factories import tensor

    rng = np.random.default_rng(20240611)
    shape = list(x.shape)
    shape[axis] += 3
    probe = rng.standard_normal(shape).astype(dtype)
    pm = None if mask is None else rng.random((shape[axis], mask.shape[1])) < 0.8
    tol = (1e-4, 1e-5) if dtype == np.float32 else (1e-9, 1e-12)
    feeds = [(tensor(x, device=device), mask), (tensor(probe, device=device), pm)]
    return check_chain(model, feeds, *tol)


def _graph_name(model):
    return f"hepnn_{type(model).__name__}"


def _version():
    from .. import __version__

    return __version__


__all__ = ["export"]
