"""Metrics for generative models: shower observables against a direct float64 loop, separation
power and 1-Wasserstein against scipy (or a NumPy quantile-integral reference), the classifier
two-sample test on identical and shifted samples, and the toy calorimeter's basic physics."""
import os
import sys

import numpy as np
import pytest

import hepnn.metrics as M

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "data"))
import calo_showers  # noqa: E402

R_EDGES = np.array([0.0, 0.3, 0.7, 1.2, 2.0, 3.5, 5.0])
L, A = 3, 7
R = len(R_EDGES) - 1


def _sparse_voxels(rng, n):
    v = rng.gamma(0.7, 1.0, (n, L * A * R)) * (rng.random((n, L * A * R)) < 0.4)
    v[0, :A * R] = 0.0  # an empty first layer in the first shower
    return v


def test_shower_observables_match_loop():
    rng = np.random.default_rng(3)
    v = _sparse_voxels(rng, 13)
    e_inc = rng.uniform(5, 50, 13)
    obs = M.shower_observables(v.astype(np.float32), e_inc, L, A, R_EDGES)
    r_c = 0.5 * (R_EDGES[1:] + R_EDGES[:-1])
    a_c = (np.arange(A) + 0.5) * 2 * np.pi / A
    for n in range(13):
        assert obs["E_total/E_inc"][n] == pytest.approx(v[n].sum() / e_inc[n], rel=1e-6)
        for l in range(L):
            pos = {"r": [], "x": [], "y": []}
            w = []
            for a in range(A):
                for i in range(R):
                    w.append(v[n, (l * A + a) * R + i])
                    pos["r"].append(r_c[i])
                    pos["x"].append(r_c[i] * np.cos(a_c[a]))
                    pos["y"].append(r_c[i] * np.sin(a_c[a]))
            w = np.array(w)
            assert obs[f"E_layer{l}"][n] == pytest.approx(w.sum(), rel=1e-6)
            for c, p in pos.items():
                p = np.array(p)
                if w.sum() == 0:
                    mean = width = 0.0
                else:
                    mean = np.sum(w * p) / w.sum()
                    width = np.sqrt(np.sum(w * (p - mean) ** 2) / w.sum())
                assert obs[f"<{c}>_layer{l}"][n] == pytest.approx(mean, rel=1e-5, abs=1e-6)
                assert obs[f"width_{c}_layer{l}"][n] == pytest.approx(width, rel=1e-5, abs=1e-6)
    assert obs["<r>_layer0"][0] == 0.0 and obs["width_x_layer0"][0] == 0.0


def test_shower_observables_reject_bad_input():
    v = np.ones((4, L * A * R))
    with pytest.raises(ValueError, match=r"\[layer_energy\] voxels must have shape"):
        M.layer_energy(v[:, :-1], L, A, R_EDGES)
    with pytest.raises(ValueError, match="r_edges must be an increasing"):
        M.centre_and_width(v, L, A, R_EDGES[::-1])
    with pytest.raises(ValueError, match="coordinate"):
        M.centre_and_width(v, L, A, R_EDGES, "z")
    v[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.layer_energy(v, L, A, R_EDGES)
    with pytest.raises(ValueError, match="4 showers but 3"):
        M.energy_response(np.ones((4, 5)), np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        M.energy_response(np.ones((2, 5)), [1.0, 0.0])


def _w1_reference(a, b, wa=None, wb=None):
    """Integral of |F_a - F_b| on a fine grid of all sample points (float64)."""
    try:
        from scipy.stats import wasserstein_distance
        return wasserstein_distance(a, b, wa, wb)
    except ImportError:
        pts = np.sort(np.concatenate([a, b]))
        wa = np.ones(len(a)) if wa is None else np.asarray(wa)
        wb = np.ones(len(b)) if wb is None else np.asarray(wb)
        fa = np.array([wa[a <= t].sum() for t in pts[:-1]]) / wa.sum()
        fb = np.array([wb[b <= t].sum() for t in pts[:-1]]) / wb.sum()
        return float(np.sum(np.abs(fa - fb) * np.diff(pts)))


@pytest.mark.parametrize("weighted", [False, True])
def test_wasserstein1_matches_reference(weighted):
    rng = np.random.default_rng(7)
    a = rng.normal(0.3, 1.1, 311)
    b = np.concatenate([rng.exponential(1.0, 157), a[:40]])  # shared values: ties across samples
    wa = rng.uniform(0.1, 2.0, len(a)) if weighted else None
    wb = rng.uniform(0.1, 2.0, len(b)) if weighted else None
    assert M.wasserstein1(a, b, wa, wb) == pytest.approx(_w1_reference(a, b, wa, wb), rel=1e-10)
    assert M.wasserstein1(a, a + 0.25) == pytest.approx(0.25, rel=1e-12)
    assert M.wasserstein1(a, b, wa, wb) == pytest.approx(M.wasserstein1(b, a, wb, wa), rel=1e-12)


def test_wasserstein1_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[wasserstein1\] a is empty"):
        M.wasserstein1([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        M.wasserstein1([1.0, np.nan], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        M.wasserstein1([1.0, 2.0], [1.0], weights_a=[1.0, -1.0])


def test_separation_power_matches_formula():
    rng = np.random.default_rng(11)
    a, b = rng.normal(0, 1, 1001), rng.normal(0.4, 1.3, 777)
    edges = np.linspace(-4, 4, 17)
    p = np.histogram(a, edges)[0].astype(float)
    q = np.histogram(b, edges)[0].astype(float)
    p, q = p / p.sum(), q / q.sum()
    s = p + q
    ref = 0.5 * np.sum(np.where(s > 0, (p - q) ** 2 / np.where(s > 0, s, 1), 0.0))
    assert M.separation_power(a, b, edges) == pytest.approx(ref, rel=1e-12)
    assert 0.0 < M.separation_power(a, b, 30) < 1.0
    assert M.separation_power(a, a, 30) == 0.0
    assert M.separation_power(a, a + 50.0, 30) == pytest.approx(1.0)
    same = M.separation_power(rng.normal(size=20000), rng.normal(size=20000), 30)
    assert same < 0.005  # only the statistical fluctuation of 30 bins
    with pytest.raises(ValueError, match="bins must be"):
        M.separation_power(a, b, 0)
    with pytest.raises(ValueError, match="no entry of b"):
        M.separation_power(a, b + 100.0, edges)


def test_classifier_two_sample_test_sees_a_shift_only():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(3000, 4))
    same = M.classifier_two_sample_test(ref, rng.normal(size=(2500, 4)), epochs=8, seed=1)
    x = rng.normal(size=(2500, 4))
    x[:, 2] *= 1.6  # a wider distribution in one feature: a mean-only test would miss it
    wide = M.classifier_two_sample_test(ref, x, epochs=8, seed=1)
    assert abs(same - 0.5) < 0.04
    assert wide > 0.6
    assert M.classifier_two_sample_test(ref, x, epochs=8, seed=1) == wide  # deterministic
    with pytest.raises(ValueError, match="reference has 4 features but generated has 3"):
        M.classifier_two_sample_test(ref, ref[:, :3])
    with pytest.raises(ValueError, match="val_fraction"):
        M.classifier_two_sample_test(ref, ref, val_fraction=0.8, test_fraction=0.3)


def test_calo_showers_generator():
    v, e = calo_showers.generate(3000, seed=4)
    assert v.shape == (3000, calo_showers.N_VOXELS) and v.dtype == np.float32 and e.dtype == np.float32
    assert np.array_equal(v, calo_showers.generate(3000, seed=4)[0])
    assert not np.array_equal(v, calo_showers.generate(3000, seed=5)[0])
    assert e.min() >= 1.0 and e.max() <= 100.0
    assert (v == 0).mean() > 0.3 and v[v > 0].min() >= calo_showers.READOUT_THRESHOLD
    # Log-uniform energies: log E uniform, so its mean is the middle of [0, ln 100].
    assert np.log(e).mean() == pytest.approx(np.log(100) / 2, abs=0.1)
    resp = M.energy_response(v, e)
    low, high = e < 3, e > 30
    # Sampling fluctuations: the relative resolution falls roughly as 1 / sqrt(E).
    assert resp[low].std() > 2.5 * resp[high].std()
    assert 0.8 < resp.mean() < 1.05
    # Longitudinal profile: higher energy showers peak deeper.
    layers = M.layer_energy(v, **calo_showers.GEOMETRY)
    depth = (layers * np.arange(calo_showers.N_LAYERS)).sum(1) / np.maximum(layers.sum(1), 1e-9)
    assert depth[high].mean() > depth[low].mean() + 0.2
    # Lateral profile: the shower widens with depth.
    _, width = M.centre_and_width(v[high], **calo_showers.GEOMETRY, coordinate="r")
    assert width[:, 4].mean() > width[:, 1].mean()
    with pytest.raises(ValueError, match="n must be"):
        calo_showers.generate(0)


@pytest.mark.parametrize("module", ["hepnn.metrics.showers", "hepnn.metrics.compare",
                                    "hepnn.metrics.c2st", "calo_showers"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
