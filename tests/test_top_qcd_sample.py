"""Checks of the committed top/QCD jet sample (examples/data/top_qcd_sample.npz) and of the
generator's helper functions; a tiny Pythia run only where pythia8mc and fastjet are installed.
"""
import importlib.util
import json
import math
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "examples", "data")
SAMPLE = os.path.join(DATA_DIR, "top_qcd_sample.npz")


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate_top_qcd", os.path.join(DATA_DIR, "generate_top_qcd.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample():
    with np.load(SAMPLE, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def _jet_mass_from_constituents(c, n, jet_eta):
    pt, deta, dphi, e = (c[:n, k].astype(np.float64) for k in range(4))
    # deta is relative to the jet: a longitudinal boost, so pz needs the jet's eta back.
    px, py, pz = pt * np.cos(dphi), pt * np.sin(dphi), pt * np.sinh(deta + jet_eta)
    return math.sqrt(max(e.sum() ** 2 - px.sum() ** 2 - py.sum() ** 2 - pz.sum() ** 2, 0.0))


def test_file_layout(sample):
    assert os.path.getsize(SAMPLE) <= 6 * 1024 * 1024
    c, n, jet, y = sample["constituents"], sample["n_constituents"], sample["jet"], sample["label"]
    assert c.dtype == np.float32 and c.ndim == 3 and c.shape[2] == 4
    assert n.dtype == np.int32 and jet.shape == (len(y), 4) and y.dtype == np.int8
    assert len(c) == len(n) == len(y) and set(np.unique(y)) == {0, 1}
    assert [str(s) for s in sample["feature_names"]] == ["pt", "deta", "dphi", "e"]
    assert [str(s) for s in sample["jet_feature_names"]] == ["pt", "eta", "phi", "mass"]
    meta = json.loads(str(sample["metadata"]))
    assert meta["jet_r"] == 0.8 and meta["max_constituents"] == c.shape[1]


def test_constituents_sorted_padded_and_inside_the_jet(sample):
    c, n = sample["constituents"], sample["n_constituents"]
    assert (n >= 1).all() and (n <= c.shape[1]).all()
    valid = np.arange(c.shape[1])[None, :] < n[:, None]
    assert (c[~valid] == 0).all()  # zero padding beyond each jet's constituents
    pt = np.where(valid, c[..., 0], -np.inf)
    assert (np.diff(pt, axis=1)[valid[:, 1:]] <= 0).all()  # pT-ordered
    assert (c[..., 0][valid] > 0).all() and (c[..., 3][valid] >= c[..., 0][valid] * 0.999).all()
    dr = np.hypot(c[..., 1], c[..., 2])[valid]
    # anti-kT R = 0.8 clusters in rapidity; deta is in pseudorapidity, which differs for soft
    # massive hadrons, so soft constituents can lie further out; the pT flow stays inside.
    pt = c[..., 0][valid]
    assert np.median(dr) < 0.35 and np.quantile(dr[pt > 2], 0.99) < 0.8
    assert (pt * (dr < 0.8)).sum() > 0.995 * pt.sum()
    assert np.abs(c[..., 2][valid]).max() <= math.pi


def test_jet_kinematics_and_physics(sample):
    jet, y, c, n = sample["jet"], sample["label"], sample["constituents"], sample["n_constituents"]
    assert (jet[:, 0] >= 550).all() and (jet[:, 0] <= 650).all() and (np.abs(jet[:, 1]) < 2).all()
    # Constituents rebuild the jet mass (those not truncated away).
    full = np.flatnonzero(n < c.shape[1])[:200]
    m = np.array([_jet_mass_from_constituents(c[i], n[i], float(jet[i, 1])) for i in full])
    np.testing.assert_allclose(m, jet[full, 3], rtol=2e-3, atol=0.5)
    top_m, qcd_m = jet[y == 1, 3], jet[y == 0, 3]
    # Fully contained hadronic tops peak at the top mass; QCD jets are much lighter.
    assert 155 < np.median(top_m) < 195 and np.median(qcd_m) < 120
    assert np.mean(n[y == 1]) > np.mean(n[y == 0])


def test_generator_helpers():
    gen = _load_generator()
    np.testing.assert_allclose(gen.wrap_phi(np.array([math.pi, -math.pi, 7.0])),
                               [-math.pi, -math.pi, 7.0 - 2 * math.pi])
    f, k = gen.constituent_features((600.0, 0.1, -3.0), np.array([5.0, 50.0, 20.0]),
                                    np.array([0.2, 0.0, 0.3]), np.array([3.1, -2.9, -3.0]),
                                    np.array([6.0, 51.0, 21.0]), 2)
    assert k == 2 and f.shape == (2, 4)
    np.testing.assert_allclose(f[:, 0], [50.0, 20.0])
    np.testing.assert_allclose(f[:, 1], [-0.1, 0.2], atol=1e-6)
    np.testing.assert_allclose(f[:, 2], [0.1, 0.0], atol=1e-6)
    import doctest
    assert doctest.testmod(gen, verbose=False).failed == 0


def test_tiny_generation(tmp_path):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    gen = _load_generator()
    out = gen.generate(3, 3, seed=7, procs=1, max_constituents=64, verbose=False)
    assert out["constituents"].shape == (6, 64, 4)
    assert list(out["label"]) == [1, 1, 1, 0, 0, 0]
    again = gen.generate(3, 3, seed=7, procs=1, max_constituents=64, verbose=False)
    np.testing.assert_array_equal(out["constituents"], again["constituents"])  # seeded
    gen.write_npz(str(tmp_path / "t.npz"), out)
    with np.load(tmp_path / "t.npz", allow_pickle=False) as d:
        np.testing.assert_array_equal(d["jet"], out["jet"])
