"""A toy H -> WW -> l nu l nu sample: one row of event features per event, signal vs the WW/top
backgrounds, seeded. The shapes follow the physics qualitatively (spin correlations make signal
leptons collinear: small dphi_ll and m_ll), not a detector simulation."""
from __future__ import annotations

import numpy as np

FEATURES = ["lep1_pt", "lep2_pt", "lep1_eta", "lep2_eta", "dphi_ll", "m_ll", "pt_ll", "met",
            "mt_higgs", "n_jets", "jet1_pt", "dphi_ll_met"]


def make_events(n: int, seed: int = 0, signal_fraction: float = 0.5):
    """Returns (X float32 [n, len(FEATURES)], y float32 [n]) with y = 1 for signal."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < signal_fraction).astype(np.float32)
    sig = y == 1
    lep1 = np.where(sig, rng.gamma(6.0, 6.0, n), rng.gamma(4.0, 12.0, n)) + 25.0
    lep2 = np.minimum(lep1, np.where(sig, rng.gamma(4.0, 5.0, n), rng.gamma(3.0, 9.0, n)) + 15.0)
    eta1 = rng.normal(0, np.where(sig, 1.0, 1.3), n).clip(-2.5, 2.5)
    eta2 = rng.normal(0, np.where(sig, 1.0, 1.3), n).clip(-2.5, 2.5)
    dphi = np.where(sig, np.abs(rng.normal(0, 0.9, n)), rng.uniform(0, np.pi, n)).clip(0, np.pi)
    m_ll = np.sqrt(2 * lep1 * lep2 * (np.cosh(eta1 - eta2) - np.cos(dphi)))
    pt_ll = np.sqrt(lep1**2 + lep2**2 + 2 * lep1 * lep2 * np.cos(dphi))
    met = np.where(sig, rng.gamma(5.0, 9.0, n), rng.gamma(4.0, 14.0, n))
    dphi_met = np.where(sig, rng.uniform(1.5, np.pi, n), rng.uniform(0, np.pi, n))
    mt = np.sqrt(np.maximum(0.0, 2 * pt_ll * met * (1 - np.cos(dphi_met))))
    n_jets = np.where(sig, rng.poisson(0.6, n), rng.poisson(1.6, n)).astype(np.float64)
    jet1 = np.where(n_jets > 0, rng.gamma(3.0, 20.0, n) + 30.0, 0.0)
    X = np.stack([lep1, lep2, eta1, eta2, dphi, m_ll, pt_ll, met, mt, n_jets, jet1, dphi_met], axis=1)
    return X.astype(np.float32), y
