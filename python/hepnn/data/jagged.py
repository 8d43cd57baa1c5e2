"""Jagged (variable-length) particle sets to padded arrays plus a validity mask: lists of
per-event arrays, awkward Arrays (optional dependency, imported only when given one), or dicts /
awkward records of per-feature jagged fields. Particles can be ordered by one feature (e.g. pT,
descending) before events are truncated to max_len. All the work is vectorised over the
flattened particles; nothing loops over events except building the flat array from a list.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pad"]

_OP = "[pad]"


def _is_awkward(obj):
    return type(obj).__module__.split(".")[0] == "awkward"


def _awkward():
    try:
        import awkward
    except ImportError as exc:  # only reached when an awkward object was passed in
        raise ImportError(f"{_OP} awkward input needs the awkward package (pip install awkward)") from exc
    return awkward


def _numeric(arr, what):
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{_OP} {what} must hold numbers, got dtype {arr.dtype}")
    return arr


def _flat_from_awkward(arr, what):
    """(flat particles (T,) or (T, F), counts (B,)) of an awkward array of events."""
    ak = _awkward()
    if arr.ndim < 2:
        raise ValueError(f"{_OP} {what} must be jagged (events x particles), got type {arr.type}")
    try:
        counts = np.asarray(ak.num(arr, axis=1), dtype=np.int64)
        flat = ak.to_numpy(ak.flatten(arr, axis=1))
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{_OP} {what} must be events x particles of numbers (optionally x a fixed "
                        f"feature count), got type {arr.type}: {exc}") from exc
    return _numeric(flat, what), counts


def _flat_from_list(events, what):
    """(flat particles, counts) from a sequence of per-event arrays (n_i,) or (n_i, F)."""
    arrays = [_numeric(e, f"{what} event {i}") for i, e in enumerate(events)]
    if not arrays:
        return np.zeros((0,)), np.zeros(0, np.int64)
    nd = {a.ndim for a in arrays}
    if not nd <= {1, 2} or len(nd) != 1:
        raise ValueError(f"{_OP} {what}: every event must be (n_i,) or (n_i, F) with the same "
                         f"rank, got ranks {sorted(nd)}")
    if nd == {2}:
        feats = {a.shape[1] for a in arrays}
        if len(feats) != 1:
            raise ValueError(f"{_OP} {what}: events have different feature counts {sorted(feats)}")
    counts = np.fromiter((a.shape[0] for a in arrays), np.int64, len(arrays))
    return np.concatenate(arrays, axis=0), counts


def _flat(obj, what):
    if _is_awkward(obj):
        return _flat_from_awkward(obj, what)
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        if obj.ndim not in (2, 3):
            raise ValueError(f"{_OP} {what}: a regular array must be (B, n) or (B, n, F), got "
                             f"shape {obj.shape}")
        counts = np.full(obj.shape[0], obj.shape[1], np.int64)
        return _numeric(obj.reshape((-1,) + obj.shape[2:]), what), counts
    if isinstance(obj, (str, bytes)) or not hasattr(obj, "__len__"):
        raise TypeError(f"{_OP} {what} must be a list of per-event arrays, an awkward Array or a "
                        f"dict of jagged fields, got {type(obj).__name__}")
    return _flat_from_list(obj, what)


def _from_fields(fields, order):
    """Stack per-feature jagged fields (each events x particles of scalars) into (T, F)."""
    names = list(order) if order is not None else list(fields)
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"{_OP} unknown fields {missing}; available: {list(fields)}")
    if not names:
        raise ValueError(f"{_OP} no fields to stack")
    columns, counts = [], None
    for name in names:
        flat, c = _flat(fields[name], f"field {name!r}")
        if flat.ndim != 1:
            raise ValueError(f"{_OP} field {name!r} must hold one number per particle, got "
                             f"{flat.shape[1:]} per particle")
        if counts is not None and (len(c) != len(counts) or np.any(c != counts)):
            raise ValueError(f"{_OP} field {name!r} has different event sizes from field "
                             f"{names[0]!r}")
        counts = c
        columns.append(flat)
    return np.stack(columns, axis=1), counts, names


def pad(jagged, max_len=None, sort_by=None, descending=True, fill=0.0, dtype=np.float32,
        fields=None):
    """Pads variable-length particle sets to ``max_len``: returns ``(padded, mask)``.

    ``jagged``: a list of per-event arrays (n_i, F) or (n_i,); an awkward Array of events
    (``var * float`` or ``var * F * float``, or records of per-particle fields); or a dict of
    per-feature jagged fields (lists or awkward arrays). Records and dicts are stacked as
    features in ``fields`` order (default: their own order). ``padded`` is (B, max_len, F),
    or (B, max_len) for one number per particle, with ``fill`` in padded slots; ``mask``
    (B, max_len) is True for real particles. ``sort_by`` (a feature index, or a field name for
    records and dicts) orders each event's particles, ``descending`` by default (leading pT
    first), before events longer than ``max_len`` are truncated; ties keep their input order.
    ``max_len=None`` pads to the longest event.

    Example:
        >>> import numpy as np, hepnn
        >>> events = [np.array([[10.0, 0.5], [30.0, -0.25]]), np.array([[5.0, 1.0]])]
        >>> x, mask = hepnn.data.pad(events, max_len=3, sort_by=0)  # leading particle first
        >>> x[0].tolist()
        [[30.0, -0.25], [10.0, 0.5], [0.0, 0.0]]
        >>> mask.tolist()
        [[True, True, False], [True, False, False]]
        >>> x, mask = hepnn.data.pad({"pt": [[3.0, 7.0], [1.0]], "eta": [[0.5, -1.0], [2.0]]}, 1, sort_by="pt")
        >>> x.tolist(), mask.tolist()
        ([[[7.0, -1.0]], [[1.0, 2.0]]], [[True], [True]])
    """
    names = None
    if isinstance(jagged, dict):
        flat, counts, names = _from_fields(jagged, fields)
    elif _is_awkward(jagged) and _awkward().fields(jagged):
        ak = _awkward()
        flat, counts, names = _from_fields({f: jagged[f] for f in ak.fields(jagged)}, fields)
    else:
        if fields is not None:
            raise ValueError(f"{_OP} fields= needs a dict or an awkward record array")
        flat, counts = _flat(jagged, "jagged")
    B = len(counts)
    if max_len is None:
        max_len = int(counts.max()) if B else 0
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
        if not (max_len == 0 and B == 0):
            raise ValueError(f"{_OP} max_len must be an integer >= 1, got {max_len!r}")
    max_len = int(max_len)
    dtype = np.dtype(dtype)
    feat = flat.shape[1:]
    event = np.repeat(np.arange(B, dtype=np.int64), counts)
    if sort_by is not None:
        key = flat[:, _feature_index(sort_by, names, feat)] if flat.ndim == 2 else _scalar_key(sort_by, flat)
        key = key.astype(np.float64)
        # One stable lexsort over all particles: events stay in order (primary key), particles
        # are ordered by the feature inside each event.
        order = np.lexsort((-key if descending else key, event))
        flat = flat[order]
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(event), dtype=np.int64) - np.repeat(starts, counts)
    keep = pos < max_len
    padded = np.full((B, max_len) + feat, fill, dtype=dtype)
    mask = np.zeros((B, max_len), dtype=bool)
    padded[event[keep], pos[keep]] = flat[keep]
    mask[event[keep], pos[keep]] = True
    return padded, mask


def _feature_index(sort_by, names, feat):
    F = feat[0]
    if isinstance(sort_by, str):
        if names is None:
            raise ValueError(f"{_OP} sort_by={sort_by!r} names a field, but the input has no "
                             "field names (pass a feature index)")
        if sort_by not in names:
            raise ValueError(f"{_OP} sort_by={sort_by!r} is not one of the fields {names}")
        return names.index(sort_by)
    if isinstance(sort_by, bool) or not isinstance(sort_by, (int, np.integer)) or not -F <= sort_by < F:
        raise ValueError(f"{_OP} sort_by must be a feature index in [-{F}, {F}) or a field name, "
                         f"got {sort_by!r}")
    return int(sort_by)


def _scalar_key(sort_by, flat):
    if sort_by not in (0, -1) or isinstance(sort_by, bool):
        raise ValueError(f"{_OP} the particles carry one number each; sort_by must be 0 (that "
                         f"number), got {sort_by!r}")
    return flat
