"""Inputs of the jet taggers from the committed top/QCD sample (examples/data/top_qcd_sample.npz):
per-constituent features with the padding mask (for sets, graphs and transformers) and
pT-weighted jet images in (deta, dphi) (for the CNN baseline). NumPy preprocessing only.
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "data", "top_qcd_sample.npz")

# Per-constituent features, in this order (ParticleNet's set, less the charge and PID it
# needs a detector for): log pT, log E, log pT/pT_jet, log E/E_jet, deta, dphi, dR.
FEATURES = ("log_pt", "log_e", "log_pt_rel", "log_e_rel", "deta", "dphi", "dr")


def load(path=SAMPLE, max_particles=None):
    """(constituents (B, N, 4) pt,deta,dphi,e; mask (B, N) bool; jet (B, 4); label (B,) float32)."""
    with np.load(path, allow_pickle=False) as f:
        c, n, jet, y = f["constituents"], f["n_constituents"], f["jet"], f["label"]
    if max_particles is not None:
        c = c[:, :max_particles]
    mask = np.arange(c.shape[1])[None, :] < n[:, None]
    return c.astype(np.float32), mask, jet.astype(np.float32), y.astype(np.float32)


def particle_features(c, mask, jet):
    """(B, N, 7) float32 features (FEATURES) with padded entries set to 0, and the (B, N, 2)
    (deta, dphi) coordinates that EdgeConv's first kNN uses."""
    pt, deta, dphi, e = (c[..., k].astype(np.float64) for k in range(4))
    safe_pt, safe_e = np.where(mask, pt, 1.0), np.where(mask, e, 1.0)
    # Jet energy from its pT, eta and mass (the sample stores pT, eta, phi, m).
    jpt, jeta, jm = (jet[:, k].astype(np.float64)[:, None] for k in (0, 1, 3))
    je = np.sqrt((jpt * np.cosh(jeta)) ** 2 + jm ** 2)
    feats = np.stack([np.log(safe_pt), np.log(safe_e), np.log(safe_pt / jpt), np.log(safe_e / je),
                      deta, dphi, np.hypot(deta, dphi)], axis=-1)
    feats = np.where(mask[..., None], feats, 0.0).astype(np.float32)
    coords = np.where(mask[..., None], np.stack([deta, dphi], axis=-1), 0.0).astype(np.float32)
    return feats, coords


def standardise(feats, mask, stats=None):
    """Features shifted and scaled per column by the mean/std of the real (unpadded) entries;
    `stats` from the training part is reused for the others. Padding stays 0."""
    if stats is None:
        real = feats[mask]
        stats = (real.mean(axis=0), real.std(axis=0) + 1e-6)
    mean, std = stats
    out = np.where(mask[..., None], (feats - mean) / std, 0.0).astype(np.float32)
    return out, stats


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
