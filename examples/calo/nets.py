"""The networks' building blocks: an MLP whose hidden layers are fused linear+activation kernels
(one _core call each way per layer), and the sinusoidal embedding of the diffusion time step.
"""
import math

import numpy as np

from hepnn import nn


class MLP(nn.Module):
    """widths[0] -> ... -> widths[-1]; `activation` (a fused _core activation name) after every
    layer but the last, which is linear."""

    def __init__(self, widths, activation="leaky_relu", alpha=0.2):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.activation, self.alpha = activation, alpha

    def forward(self, x):
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, activation=None if i == last else self.activation, alpha=self.alpha)
        return x


def sinusoidal_embedding(t, dim, max_period=1000.0):
    """(len(t), dim) float32: cos and sin of t at dim/2 frequencies spaced geometrically from 1
    to 1/max_period (the transformer position code, here for the diffusion step t)."""
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half) / half)
    arg = np.asarray(t, dtype=np.float64)[:, None] * freqs[None, :]
    return np.concatenate([np.cos(arg), np.sin(arg)], axis=1).astype(np.float32)
