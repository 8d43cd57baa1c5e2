"""Calorimeter shower observables for judging fast-simulation models, on a cylindrical voxel
geometry (layers x angular bins x radial bins, as the CaloChallenge data sets): energy per layer,
total energy over incident energy, and per layer the energy-weighted centre and width in r and
in x = r cos(alpha), y = r sin(alpha) (the eta/phi-like directions). NumPy only.

Voxels are ordered (layer, alpha, r) with r fastest: voxel (l, a, i) is column
``(l * n_alpha + a) * n_r + i`` of a (N, n_layers * n_alpha * n_r) array, n_r = len(r_edges) - 1.
Each voxel sits at its bin centre: r at the middle of its radial bin, alpha at the middle of its
angular bin (n_alpha equal bins over [0, 2 pi)).
"""
import numpy as np

from ..data._arrays import to_numpy


def _voxels(fn, voxels, n_layers, n_alpha, r_edges):
    """(N, n_layers, n_alpha, n_r) float64 view of the voxel energies, validated."""
    r_edges = np.asarray(r_edges, dtype=np.float64)
    if r_edges.ndim != 1 or len(r_edges) < 2 or not (np.diff(r_edges) > 0).all() or r_edges[0] < 0:
        raise ValueError(f"[{fn}] r_edges must be an increasing 1-D array of >= 2 non-negative "
                         f"edges, got {r_edges.tolist()}")
    for name, v in (("n_layers", n_layers), ("n_alpha", n_alpha)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"[{fn}] {name} must be a positive integer, got {v!r}")
    n_r = len(r_edges) - 1
    v = to_numpy(fn, "voxels", voxels)
    if v.dtype.kind not in "fiu":
        raise TypeError(f"[{fn}] voxels must be numeric, got {v.dtype}")
    per_shower = n_layers * n_alpha * n_r
    if v.ndim == 4 and v.shape[1:] != (n_layers, n_alpha, n_r) or v.ndim not in (2, 4) or \
            v.ndim == 2 and v.shape[1] != per_shower:
        raise ValueError(f"[{fn}] voxels must have shape (N, {per_shower}) or (N, {n_layers}, "
                         f"{n_alpha}, {n_r}) for {n_layers} layers x {n_alpha} alpha x {n_r} r "
                         f"bins, got {v.shape}")
    v = v.astype(np.float64, copy=False).reshape(len(v), n_layers, n_alpha, n_r)
    if not np.isfinite(v).all():
        raise ValueError(f"[{fn}] voxels contain NaN or inf")
    return v, r_edges


def voxel_centres(n_alpha, r_edges):
    """(r, x, y) of the voxel centres of one layer, each of shape (n_alpha, n_r).

    Example:
        >>> import hepnn.metrics as M
        >>> r, x, y = M.voxel_centres(4, [0.0, 1.0, 3.0])
        >>> r[0].tolist(), round(float(x[0, 1]), 4), round(float(y[0, 1]), 4)
        ([0.5, 2.0], 1.4142, 1.4142)
    """
    r_edges = np.asarray(r_edges, dtype=np.float64)
    r_c = 0.5 * (r_edges[1:] + r_edges[:-1])
    a_c = (np.arange(n_alpha) + 0.5) * (2.0 * np.pi / n_alpha)
    r = np.broadcast_to(r_c, (n_alpha, len(r_c)))
    return r, r * np.cos(a_c)[:, None], r * np.sin(a_c)[:, None]


def layer_energy(voxels, n_layers, n_alpha, r_edges):
    """Energy per layer, (N, n_layers) float64.

    Example:
        >>> import numpy as np, hepnn.metrics as M
        >>> v = np.zeros((1, 2, 3, 2)); v[0, 1, 0, 0] = 5.0
        >>> M.layer_energy(v, 2, 3, [0.0, 1.0, 2.0]).tolist()
        [[0.0, 5.0]]
    """
    v, _ = _voxels("layer_energy", voxels, n_layers, n_alpha, r_edges)
    return v.sum(axis=(2, 3))


def energy_response(voxels, incident_energy):
    """Total deposited energy over incident energy per shower, (N,) float64.

    Example:
        >>> import numpy as np, hepnn.metrics as M
        >>> M.energy_response(np.array([[1.0, 2.0], [0.5, 0.5]]), [6.0, 2.0]).tolist()
        [0.5, 0.5]
    """
    fn = "energy_response"
    v = to_numpy(fn, "voxels", voxels)
    if v.ndim < 2:
        raise ValueError(f"[{fn}] voxels must have a shower axis and voxel axes, got shape {v.shape}")
    if v.dtype.kind not in "fiu" or not np.isfinite(v).all():
        raise ValueError(f"[{fn}] voxels must be finite numbers")
    e = to_numpy(fn, "incident_energy", incident_energy).astype(np.float64, copy=False).reshape(-1)
    if len(e) != len(v):
        raise ValueError(f"[{fn}] {len(v)} showers but {len(e)} incident energies")
    if not (e > 0).all() or not np.isfinite(e).all():
        raise ValueError(f"[{fn}] incident energies must be positive and finite")
    return v.reshape(len(v), -1).astype(np.float64, copy=False).sum(axis=1) / e


def centre_and_width(voxels, n_layers, n_alpha, r_edges, coordinate="r"):
    """Energy-weighted centre <c> and width sqrt(<c^2> - <c>^2) of coordinate c ("r", "x" or
    "y") in each layer: two (N, n_layers) float64 arrays. A layer with no energy has centre
    and width 0 (the CaloChallenge convention), so empty layers agree between samples.

    Example:
        >>> import numpy as np, hepnn.metrics as M
        >>> v = np.zeros((1, 1, 1, 2)); v[0, 0, 0] = [1.0, 1.0]   # r centres 0.5 and 1.5
        >>> c, w = M.centre_and_width(v, 1, 1, [0.0, 1.0, 2.0])
        >>> c.tolist(), w.tolist()
        ([[1.0]], [[0.5]])
    """
    fn = "centre_and_width"
    if coordinate not in ("r", "x", "y"):
        raise ValueError(f"[{fn}] coordinate must be 'r', 'x' or 'y', got {coordinate!r}")
    v, r_edges = _voxels(fn, voxels, n_layers, n_alpha, r_edges)
    pos = dict(zip("rxy", voxel_centres(n_alpha, r_edges)))[coordinate]
    total = v.sum(axis=(2, 3))
    safe = np.where(total > 0, total, 1.0)
    mean = np.einsum("nlar,ar->nl", v, pos) / safe
    second = np.einsum("nlar,ar->nl", v, pos * pos) / safe
    width = np.sqrt(np.maximum(second - mean * mean, 0.0))  # rounding can make it -0
    empty = total <= 0
    mean[empty] = 0.0
    width[empty] = 0.0
    return mean, width


def shower_observables(voxels, incident_energy, n_layers, n_alpha, r_edges):
    """All the observables above as a dict name -> (N,) float64 array: ``E_layer<l>``,
    ``E_total/E_inc``, and per layer ``<c>_layer<l>`` and ``width_<c>_layer<l>`` for c in r, x, y.

    Example:
        >>> import numpy as np, hepnn.metrics as M
        >>> v = np.random.default_rng(0).random((4, 2 * 3 * 2))
        >>> obs = M.shower_observables(v, np.full(4, 10.0), 2, 3, [0.0, 1.0, 2.0])
        >>> len(obs), obs["E_layer0"].shape
        (15, (4,))
    """
    out = {}
    e = layer_energy(voxels, n_layers, n_alpha, r_edges)
    for l in range(n_layers):
        out[f"E_layer{l}"] = e[:, l]
    out["E_total/E_inc"] = energy_response(voxels, incident_energy)
    for c in "rxy":
        mean, width = centre_and_width(voxels, n_layers, n_alpha, r_edges, c)
        for l in range(n_layers):
            out[f"<{c}>_layer{l}"] = mean[:, l]
            out[f"width_{c}_layer{l}"] = width[:, l]
    return out
