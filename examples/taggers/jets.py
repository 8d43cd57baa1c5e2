"""The committed top/QCD jet sample (examples/data/top_qcd_sample.npz) as arrays with the padding
mask, and pT-weighted jet images in (deta, dphi) for the CNN baseline (NumPy preprocessing; the
per-constituent features of each tagger live beside its model).
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "data", "top_qcd_sample.npz")


def load(path=SAMPLE, max_particles=None):
    """(constituents (B, N, 4) pt,deta,dphi,e; mask (B, N) bool; jet (B, 4); label (B,) float32)."""
    with np.load(path, allow_pickle=False) as f:
        c, n, jet, y = f["constituents"], f["n_constituents"], f["jet"], f["label"]
    if max_particles is not None:
        c = c[:, :max_particles]
    mask = np.arange(c.shape[1])[None, :] < n[:, None]
    return c.astype(np.float32), mask, jet.astype(np.float32), y.astype(np.float32)


def jet_images(c, mask, size=40, half_width=0.8):
    """(B, 1, size, size) float32 images: constituent pT / jet pT summed into (deta, dphi)
    pixels over [-half_width, half_width]^2 (the jet axis at the centre), then square-rooted
    to tame the leading pixel as jet-image taggers do."""
    B = c.shape[0]
    pt, deta, dphi = c[..., 0], c[..., 1], c[..., 2]
    scale = size / (2 * half_width)
    ix = np.floor((deta + half_width) * scale).astype(np.int64)
    iy = np.floor((dphi + half_width) * scale).astype(np.int64)
    inside = mask & (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
    img = np.zeros((B, size * size), dtype=np.float64)
    rows = np.broadcast_to(np.arange(B)[:, None], pt.shape)
    np.add.at(img, (rows[inside], (ix * size + iy)[inside]), pt[inside])
    total = np.where(mask, pt, 0.0).sum(axis=1, keepdims=True)
    img = np.sqrt(img / np.maximum(total, 1e-12))
    return img.reshape(B, 1, size, size).astype(np.float32)
