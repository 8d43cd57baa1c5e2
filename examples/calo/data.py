"""Toy calorimeter showers for training and testing (examples/data/calo_showers.py) and their
preprocessing: sqrt of voxel energy over incident energy, standardised per voxel; the condition
is log10(E / 10 GeV), in [-1, 1]. The square root is the variance-stabilising transform of the
Poisson-like sampling fluctuations: a deposit count's noise becomes about the same size at every
energy, which suits Gaussian likelihoods and noise (a log transform blows small errors up into
large energies when inverted). The inverse maps a model's output back to GeV and applies the
calorimeter's readout threshold, so generated showers are as sparse as real ones.
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
