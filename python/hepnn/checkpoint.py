"""Checkpoints in safetensors format (no pickle): model weights, optimizer state, a fitted scaler
and user metadata in one file, written atomically (temporary file, fsync, rename) and checked in
full before anything is loaded into a model or optimizer.

Layout: tensors "model.<name>", "optim.<param index>.<key>", "scaler.<name>"; the safetensors
string metadata holds JSON: "hepnn.format", "hepnn.optim" (class, param_groups, scalar state),
"hepnn.scaler" (class, non-array entries) and "hepnn.user" (your metadata).
"""
from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np

__all__ = ["save", "load", "read"]

_FORMAT = "hepnn-checkpoint-1"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def _safetensors():
    try:
        import safetensors.numpy as stn
    except ImportError:
        raise ImportError("[checkpoint] saving and loading checkpoints needs the 'safetensors' "
                          "package: pip install 'hepnn[checkpoint]' (or pip install safetensors)") from None
    return stn


def _host(value) -> np.ndarray:
    """A NumPy copy of an array, hepnn Tensor or CuPy array (C-contiguous, safetensors needs it)."""
    from .tensor import Tensor

    data = value.data if isinstance(value, Tensor) else value
    if hasattr(data, "get") and type(data).__module__.startswith("cupy"):
        data = data.get()
    # order="C", not np.ascontiguousarray: that one turns 0-d arrays (BatchNorm's
    # num_batches_tracked) into shape (1,).
    return np.array(data, copy=True, order="C")


def _model_arrays(model) -> dict:
    try:
        state = model.state_dict()
    except TypeError:  # CUDA parameters: Module.state_dict returns host arrays only on the CPU
        state = dict(model.named_parameters())
        state.update(model.named_buffers())
    return {name: _host(v) for name, v in state.items()}


def _jsonable(fn, what, value):
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"[{fn}] {what} must be JSON-serialisable (numbers, strings, lists, dicts): {exc}") from None


# ---- save ------------------------------------------------------------------------------------
def save(path, model, optimizer=None, scaler=None, metadata=None) -> None:
    """Write `model`'s weights (and optionally the optimizer state, a fitted scaler and a dict of
    JSON-serialisable `metadata`) to `path` in safetensors format.

    The file is written to a temporary name in the same directory, flushed, fsynced and renamed
    over `path`, so a crash mid-save leaves the previous file intact. `scaler` is any object with
    ``state_dict()`` returning a dict of NumPy arrays (or plain numbers/strings) and
    ``load_state_dict(dict)``.

    Example:
        >>> import hepnn, os, tempfile
        >>> from hepnn.checkpoint import save, load
        >>> model = hepnn.nn.Sequential(hepnn.nn.Linear(4, 8), hepnn.nn.ReLU(), hepnn.nn.Linear(8, 1))
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> save(path, model, metadata={"epoch": 12, "auc": 0.91})
        >>> load(path, hepnn.nn.Sequential(hepnn.nn.Linear(4, 8), hepnn.nn.ReLU(), hepnn.nn.Linear(8, 1)))
        {'epoch': 12, 'auc': 0.91}
    """
    fn = "save"
    stn = _safetensors()
    tensors, meta = {}, {"hepnn.format": _FORMAT}
    for name, arr in _model_arrays(model).items():
        tensors[f"model.{name}"] = arr
    meta["hepnn.model_class"] = type(model).__name__
    if optimizer is not None:
        tensors_o, meta["hepnn.optim"] = _pack_optimizer(fn, optimizer)
        tensors.update(tensors_o)
    if scaler is not None:
        tensors_s, meta["hepnn.scaler"] = _pack_scaler(fn, scaler)
        tensors.update(tensors_s)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"[{fn}] metadata must be a dict, got {type(metadata).__name__}")
    meta["hepnn.user"] = _jsonable(fn, "metadata", {} if metadata is None else metadata)
    for key, arr in tensors.items():
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"[{fn}] {key} has dtype {arr.dtype}; safetensors holds numbers only")
    blob = stn.save(tensors, metadata=meta)
    write_atomic(path, blob)


def _pack_optimizer(fn, optimizer):
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, (bool, int, float, str)) or value is None:
                scalars.setdefault(str(idx), {})[key] = value
            else:
                tensors[f"optim.{idx}.{key}"] = _host(value)
    info = {"class": type(optimizer).__name__, "param_groups": sd["param_groups"],
            "scalars": scalars}
    return tensors, _jsonable(fn, "optimizer param_groups", info)


def _pack_scaler(fn, scaler):
    if not hasattr(scaler, "state_dict") or not hasattr(scaler, "load_state_dict"):
        raise TypeError(f"[{fn}] scaler must have state_dict() and load_state_dict(), "
                        f"got {type(scaler).__name__}")
    tensors, plain = {}, {}
    for key, value in scaler.state_dict().items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            plain[key] = value
        else:
            tensors[f"scaler.{key}"] = _host(value)
    return tensors, _jsonable(fn, "scaler state", {"class": type(scaler).__name__, "plain": plain})


def write_atomic(path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix:
    temporary file in the same directory, flush + fsync, os.replace, fsync of the directory.

    Example:
        >>> import os, tempfile
        >>> from hepnn.checkpoint import write_atomic
        >>> p = os.path.join(tempfile.mkdtemp(), "x.bin"); write_atomic(p, b"abc")
        >>> open(p, "rb").read()
        b'abc'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # The rename itself must reach the disk, or a power cut can bring the old name back.
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---- read + validate -------------------------------------------------------------------------
def _refuse(path, problem):
    return ValueError(f"[load] {os.fspath(path)!s}: {problem}")


def _parse(path, blob: bytes):
    """(header dict, metadata dict) after checking the safetensors framing byte by byte."""
    if len(blob) < 8:
        raise _refuse(path, f"not a safetensors file (only {len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise _refuse(path, f"not a safetensors file or truncated (header says {n} bytes, the "
                            f"file has {len(blob) - 8} after the length)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse(path, "not a safetensors file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise _refuse(path, "not a safetensors file (the header is not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise _refuse(path, "malformed safetensors metadata")
    data_len = len(blob) - 8 - n
    end = 0
    for name, info in header.items():
        offs = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)):
            raise _refuse(path, f"malformed entry for tensor {name!r}")
        end = max(end, offs[1])
    if end > data_len:
        raise _refuse(path, f"truncated: the tensors need {end} bytes of data, the file has {data_len}")
    if end != data_len:
        raise _refuse(path, f"{data_len - end} unexpected bytes after the tensor data")
    return header, meta


def _meta_json(path, meta, key, default):
    if key not in meta:
        return default
    try:
        return json.loads(meta[key])
    except (TypeError, json.JSONDecodeError):
        raise _refuse(path, f"metadata entry {key!r} is not valid JSON") from None


def read(path) -> dict:
    """Read and check a checkpoint without a model: ``{"model": {name: array}, "optimizer":
    state_dict or None, "optimizer_class": str or None, "scaler": dict or None, "metadata": dict}``.

    Raises ValueError naming the file for a truncated, non-safetensors or non-hepnn file.

    Example:
        >>> import hepnn, os, tempfile
        >>> from hepnn.checkpoint import save, read
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save(path, hepnn.nn.Linear(3, 2))
        >>> sorted(read(path)["model"])
        ['bias', 'weight']
    """
    stn = _safetensors()
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except IsADirectoryError:
        raise _refuse(path, "is a directory, not a checkpoint file") from None
    _, meta = _parse(path, blob)
    if meta.get("hepnn.format") != _FORMAT:
        raise _refuse(path, f"a safetensors file but not a hepnn checkpoint "
                            f"(format {meta.get('hepnn.format')!r}, expected {_FORMAT!r})")
    try:
        tensors = stn.load(blob)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise _refuse(path, f"corrupt safetensors data ({exc})") from None
    out = {"model": {}, "optimizer": None, "optimizer_class": None, "scaler": None,
           "metadata": _meta_json(path, meta, "hepnn.user", {})}
    optim_t, scaler_t = {}, {}
    for key, arr in tensors.items():
        group, _, rest = key.partition(".")
        if group == "model" and rest:
            out["model"][rest] = arr
        elif group == "optim" and rest:
            optim_t[rest] = arr
        elif group == "scaler" and rest:
            scaler_t[rest] = arr
        else:
            raise _refuse(path, f"unexpected tensor {key!r} (expected model.*, optim.* or scaler.*)")
    info = _meta_json(path, meta, "hepnn.optim", None)
    if info is not None:
        out["optimizer"], out["optimizer_class"] = _unpack_optimizer(path, info, optim_t), info.get("class")
    elif optim_t:
        raise _refuse(path, "optimizer tensors without their hepnn.optim metadata")
    sinfo = _meta_json(path, meta, "hepnn.scaler", None)
    if sinfo is not None:
        out["scaler"] = {**sinfo.get("plain", {}), **scaler_t}
    elif scaler_t:
        raise _refuse(path, "scaler tensors without their hepnn.scaler metadata")
    return out


def _unpack_optimizer(path, info, arrays):
    try:
        groups = info["param_groups"]
        state = {int(i): dict(v) for i, v in info.get("scalars", {}).items()}
        for key, arr in arrays.items():
            idx, _, name = key.partition(".")
            state.setdefault(int(idx), {})[name] = arr
        if not isinstance(groups, list) or not all(isinstance(g.get("params"), list) for g in groups):
            raise ValueError
    except (KeyError, ValueError, TypeError, AttributeError):
        raise _refuse(path, "malformed optimizer state") from None
    return {"state": state, "param_groups": groups}


# ---- load ------------------------------------------------------------------------------------
def load(path, model=None, optimizer=None, scaler=None) -> dict:
    """Load a checkpoint written by save() into `model`, `optimizer` and `scaler` (each
    optional) and return the user metadata dict.

    Everything is checked first: a truncated or non-safetensors file, missing or unexpected
    weights, wrong shapes, an optimizer of another class or parameter layout, or a checkpoint
    without the optimizer/scaler asked for raise ValueError naming the file and the problem,
    and then nothing has been modified.

    Example:
        >>> import hepnn, os, tempfile
        >>> from hepnn.checkpoint import save, load
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> a, b = hepnn.nn.Linear(3, 2), hepnn.nn.Linear(3, 2)
        >>> save(path, a, metadata={"note": "demo"})
        >>> load(path, b)["note"], bool((a.weight.numpy() == b.weight.numpy()).all())
        ('demo', True)
    """
    ck = read(path)
    staged_model = _check_model(path, ck["model"], model) if model is not None else None
    staged_opt = _check_optimizer(path, ck, optimizer) if optimizer is not None else None
    if scaler is not None:
        if ck["scaler"] is None:
            raise _refuse(path, "holds no scaler state (it was saved without scaler=)")
        if not hasattr(scaler, "load_state_dict"):
            raise TypeError(f"[load] scaler must have load_state_dict(), got {type(scaler).__name__}")
        scaler.load_state_dict(ck["scaler"])  # first: the user's object may refuse on its own
    if staged_model is not None:
        model.load_state_dict(staged_model)
    if staged_opt is not None:
        optimizer.load_state_dict(staged_opt)
    return ck["metadata"]


def _check_model(path, arrays, model):
    own = _model_arrays(model)
    missing = [k for k in own if k not in arrays]
    unexpected = sorted(k for k in arrays if k not in own)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing weights {missing}")
        if unexpected:
            parts.append(f"unexpected weights {unexpected}")
        raise _refuse(path, "does not match the model: " + "; ".join(parts))
    for k, ref in own.items():
        arr = arrays[k]
        if arr.shape != ref.shape:
            raise _refuse(path, f"does not match the model: {k} has shape {arr.shape} in the "
                                f"file, the model expects {ref.shape}")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise _refuse(path, f"{k} contains NaN or infinity")
    return {k: arrays[k] for k in own}


def _check_optimizer(path, ck, optimizer):
    sd = ck["optimizer"]
    if sd is None:
        raise _refuse(path, "holds no optimizer state (it was saved without optimizer=)")
    if ck["optimizer_class"] != type(optimizer).__name__:
        raise _refuse(path, f"holds {ck['optimizer_class']} state, cannot load it into "
                            f"{type(optimizer).__name__}")
    groups = optimizer.param_groups
    saved = sd["param_groups"]
    if len(saved) != len(groups) or any(len(a["params"]) != len(b["params"])
                                        for a, b in zip(saved, groups)):
        raise _refuse(path, f"optimizer param groups do not match: the file has sizes "
                            f"{[len(g['params']) for g in saved]}, the optimizer "
                            f"{[len(g['params']) for g in groups]}")
    params = [p for g in groups for p in g["params"]]
    for idx, st in sd["state"].items():
        if not 0 <= idx < len(params):
            raise _refuse(path, f"optimizer state for parameter {idx}, the optimizer has {len(params)}")
        shape = tuple(params[idx].shape)
        for key, v in st.items():
            if isinstance(v, np.ndarray) and v.shape != shape:
                raise _refuse(path, f"optimizer state {key!r} of parameter {idx} has shape "
                                    f"{v.shape}, the parameter {shape}")
    # JSON turned tuples (Adam's betas) into lists: give each hyper-parameter its current type.
    fixed = []
    for g_saved, g_now in zip(saved, groups):
        g = dict(g_saved)
        for k, v in g.items():
            if isinstance(g_now.get(k), tuple) and isinstance(v, list):
                g[k] = tuple(v)
        fixed.append(g)
    return {"state": sd["state"], "param_groups": fixed}
