"""Toy calorimeter showers for training and testing (examples/data/calo_showers.py) and their
preprocessing: sqrt of voxel energy over incident energy, standardised per voxel; the condition
is log10(E / 10 GeV), in [-1, 1]. The square root is the variance-stabilising transform of the
Poisson-like sampling fluctuations: a deposit count's noise becomes about the same size at every
energy, which suits Gaussian likelihoods and noise (a log transform blows small errors up into
large energies when inverted). The inverse maps a model's output back to GeV and applies the
calorimeter's readout threshold, so generated showers are as sparse as real ones.

LayerScaler (the default of the VAE and the diffusion model) normalises per layer instead, as
the CaloChallenge flows and diffusion models do: sqrt of each voxel's fraction of its layer's
energy, plus log(E_layer / E_inc) as five extra features. Under VoxelScaler an empty voxel sits
at u = 0, a hair below the threshold (u_thr = sqrt(5 MeV / E_inc) ~ 0.007 at 100 GeV), so any
noise a model leaves there lifts dozens of empty voxels over it and E_total / E_inc comes out
high; with the fractions renormalised to the generated layer energy, that noise only reshapes a
layer. (A logit of E_voxel / E_inc was tried first: no leak, but the model's Gaussian noise on
the logit of the hit voxels is multiplicative and its lognormal tail overshot E_total more.)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
import calo_showers  # noqa: E402

GEOMETRY = calo_showers.GEOMETRY
N_VOXELS = calo_showers.N_VOXELS


def showers(n_train, n_test, seed):
    """((voxels, energy) for training, (voxels, energy) for testing), independent seeds."""
    return calo_showers.generate(n_train, seed=2 * seed), calo_showers.generate(n_test, seed=2 * seed + 1)


def condition(energy):
    """(N, 1) float32 log10(E / 10 GeV)."""
    return (np.log10(np.asarray(energy, dtype=np.float64)) - 1.0).astype(np.float32)[:, None]


class VoxelScaler:
    """Voxels (GeV) <-> standardised sqrt(E_voxel / E_inc), fitted on training showers."""

    n_features = N_VOXELS

    def fit(self, voxels, energy):
        u = self._sqrt(voxels, energy)
        self.mean = u.mean(0)
        # NOTE: a floor on the spread: a voxel that is almost always empty would otherwise turn
        # its rare hits into values of 40 or more, heavy tails every model handles badly.
        std = u.std(0)
        self.std = np.maximum(std, 0.5 * np.median(std))
        return self

    @staticmethod
    def _sqrt(voxels, energy):
        return np.sqrt(voxels / np.asarray(energy, dtype=np.float64)[:, None])

    def transform(self, voxels, energy, dequantize=None):
        """Standardised sqrt(E_voxel / E_inc). With `dequantize` (a NumPy Generator), empty voxels
        get a uniform value below the readout threshold's, sqrt(threshold / E_inc), instead of 0.
        NOTE: for training inputs: the exact zeros are a spike models cannot fit; smeared, they
        become a density below the threshold, which the inverse maps back to 0."""
        u = self._sqrt(voxels, energy)
        if dequantize is not None:
            u_thr = np.sqrt(calo_showers.READOUT_THRESHOLD / np.asarray(energy, dtype=np.float64))[:, None]
            u = np.where(u > 0, u, dequantize.random(u.shape) * u_thr)
        return ((u - self.mean) / self.std).astype(np.float32)

    def inverse(self, x, energy):
        u = np.asarray(x, dtype=np.float64) * self.std + self.mean
        e = np.maximum(u, 0.0) ** 2 * np.asarray(energy, dtype=np.float64)[:, None]
        e[e < calo_showers.READOUT_THRESHOLD] = 0.0
        return e.astype(np.float32)



class LayerScaler:
    """Voxels (GeV) <-> (standardised sqrt of each voxel's fraction of its layer's energy,
    standardised log(E_layer / E_inc + eps)): N_VOXELS + N_LAYERS features, fitted on training
    showers (energy-fraction normalisation per layer, as CaloFlow and CaloDiffusion do).

    inverse() squares the fractions, renormalises each layer's to sum to one, multiplies by the
    generated layer energy and applies the readout threshold. The point: a model's noise on empty
    voxels only moves energy around inside a layer instead of adding to it, and the layer energies
    (hence E_total / E_inc) are five well-behaved dimensions the model learns directly.
    `dequantize` (a Generator) smears empty voxels' fractions as VoxelScaler does, below
    sqrt(threshold / E_layer). Exactly invertible (float64) for showers whose voxels are all
    above the threshold or empty.

    Example:
        >>> from calo import data
        >>> v, e = data.calo_showers.generate(50, seed=1)
        >>> s = data.LayerScaler().fit(v, e)
        >>> back = s.inverse(s.transform(v, e, dtype=np.float64), e, dtype=np.float64)
        >>> s.n_features, bool(np.allclose(back, v, rtol=1e-6, atol=0))
        (505, True)
    """

    EPS = 1e-6  # floor of E_layer / E_inc in the log (an empty last layer at 1 GeV)

    def __init__(self, n_layers=GEOMETRY["n_layers"], threshold=calo_showers.READOUT_THRESHOLD):
        self.n_layers, self.threshold = int(n_layers), float(threshold)
        self.n_features = N_VOXELS + self.n_layers

    def _parts(self, voxels, energy, dequantize):
        v = np.asarray(voxels, dtype=np.float64)
        e = np.asarray(energy, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != N_VOXELS or e.shape != (len(v),):
            raise ValueError(f"[LayerScaler] voxels must be (N, {N_VOXELS}) and energy (N,), got {v.shape}, {e.shape}")
        if not (np.isfinite(v).all() and np.isfinite(e).all()) or (v < 0).any() or not (e > 0).all():
            raise ValueError("[LayerScaler] voxels must be finite and >= 0, energies finite and > 0")
        layers = v.reshape(len(v), self.n_layers, -1)
        e_layer = layers.sum(2)
        safe = np.where(e_layer > 0, e_layer, 1.0)[:, :, None]
        u = np.sqrt(layers / safe)
        if dequantize is not None:
            u_thr = np.sqrt(np.minimum(self.threshold / safe, 1.0))
            u = np.where(u > 0, u, dequantize.random(u.shape) * u_thr)
        return u.reshape(len(v), -1), np.log(e_layer / e[:, None] + self.EPS)

    def fit(self, voxels, energy):
        u, w = self._parts(voxels, energy, None)
        std = u.std(0)
        self.mean, self.std = u.mean(0), np.maximum(std, 0.5 * np.median(std))  # as VoxelScaler
        self.w_mean, self.w_std = w.mean(0), np.maximum(w.std(0), 1e-3)
        return self

    def transform(self, voxels, energy, dequantize=None, dtype=np.float32):
        """(N, n_features) of `dtype`: the voxel part, then the layer-energy part."""
        u, w = self._parts(voxels, energy, dequantize)
        return np.concatenate([(u - self.mean) / self.std, (w - self.w_mean) / self.w_std], 1).astype(dtype)

    def inverse(self, x, energy, dtype=np.float32):
        """Back to GeV voxels, (N, N_VOXELS); voxels below the threshold read zero."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"[LayerScaler] expected (N, {self.n_features}) features, got {x.shape}")
        e = np.asarray(energy, dtype=np.float64)[:, None]
        frac = (np.maximum(x[:, :N_VOXELS] * self.std + self.mean, 0.0) ** 2).reshape(len(x), self.n_layers, -1)
        total = frac.sum(2, keepdims=True)
        frac = frac / np.where(total > 0, total, 1.0)
        w = np.clip(x[:, N_VOXELS:] * self.w_std + self.w_mean, None, 0.0)  # a layer holds <= E_inc
        e_layer = np.maximum(np.exp(w) - self.EPS, 0.0) * e
        out = (frac * e_layer[:, :, None]).reshape(len(x), -1)
        out[out < self.threshold] = 0.0
        return out.astype(dtype)


def make_scaler(kind, voxels, energy):
    """The fitted preprocessing `kind` ("layer" or "sqrt") for the training showers."""
    if kind == "layer":
        return LayerScaler().fit(voxels, energy)
    if kind == "sqrt":
        return VoxelScaler().fit(voxels, energy)
    raise ValueError(f"[make_scaler] unknown preprocessing {kind!r} (layer or sqrt)")
