"""Checks of the committed H -> WW -> l nu l nu sample (examples/data/hww_sample.npz).

The sample tests need only NumPy. The generator's feature code is tested on hand-made
events; a tiny Pythia run is tested only where pythia8mc and fastjet are installed.
"""

import importlib.util
import json
import math
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "examples", "data")
SAMPLE = os.path.join(DATA_DIR, "hww_sample.npz")

EXPECTED_FEATURES = [
    "n_leptons", "lep1_pt", "lep1_eta", "lep2_pt", "lep2_eta", "m_ll", "pt_ll",
    "dphi_ll", "dr_ll", "met", "mt", "n_jets",
]


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate_hww", os.path.join(DATA_DIR, "generate_hww.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample():
    with np.load(SAMPLE, allow_pickle=False) as d:
        out = {k: d[k] for k in d.files}
    out["names"] = [str(n) for n in out["feature_names"]]
    out["col"] = {n: i for i, n in enumerate(out["names"])}
    return out


def _feature(sample, name, label=None):
    x = sample["X"][:, sample["col"][name]].astype(np.float64)
    if label is None:
        return x
    return x[sample["label"] == label]


def test_file_is_small_and_loads_without_pickle():
    assert os.path.getsize(SAMPLE) <= 6 * 1024 * 1024
    with np.load(SAMPLE, allow_pickle=False) as d:
        assert {"X", "weight", "label", "feature_names", "metadata"} <= set(d.files)


def test_feature_names_and_shapes(sample):
    assert sample["names"] == EXPECTED_FEATURES
    X, w, y = sample["X"], sample["weight"], sample["label"]
    assert X.ndim == 2 and X.shape[1] == len(EXPECTED_FEATURES)
    assert X.dtype == np.float32 and w.dtype == np.float64 and y.dtype == np.int8
    assert w.shape == y.shape == (X.shape[0],)


def test_finite_values_and_binary_labels(sample):
    assert np.isfinite(sample["X"]).all()
    y = sample["label"]
    assert set(np.unique(y).tolist()) == {0, 1}
    # A useful sample: many events of each class after the preselection.
    assert (y == 1).sum() >= 5000 and (y == 0).sum() >= 5000


def test_weights_are_cross_section_weights(sample):
    w, y = sample["weight"], sample["label"]
    assert np.isfinite(w).all() and (w > 0).all()
    meta = json.loads(str(sample["metadata"]))
    for process, label in (("signal", 1), ("background", 0)):
        m = meta[process]
        # One weight per class: sigma x BR / N_generated, in fb.
        np.testing.assert_allclose(w[y == label], m["sigma_fb"] / m["n_generated"], rtol=1e-12)
        assert m["n_selected"] == int((y == label).sum())
        # The summed weight is sigma x BR x preselection efficiency.
        np.testing.assert_allclose(w[y == label].sum(), m["sigma_fb"] * m["efficiency"],
                                   rtol=1e-9)
    # Pythia LO, 13 TeV, W -> e/mu nu only: gg->H->WW->lvlv ~ 0.26 pb, qq->WW->lvlv ~ 3 pb.
    assert 150 < meta["signal"]["sigma_fb"] < 400
    assert 2000 < meta["background"]["sigma_fb"] < 4500
    assert meta["versions"]["pythia8mc"] != "unknown"


def test_lepton_kinematics(sample):
    assert (_feature(sample, "n_leptons") >= 2).all()
    pt1, pt2 = _feature(sample, "lep1_pt"), _feature(sample, "lep2_pt")
    assert (pt2 > 10.0).all()
    assert (pt1 >= pt2).all()
    for name in ("lep1_eta", "lep2_eta"):
        assert (np.abs(_feature(sample, name)) < 2.5).all()
    assert (_feature(sample, "m_ll") > 0).all()
    assert (_feature(sample, "pt_ll") >= 0).all()
    dphi = _feature(sample, "dphi_ll")
    assert (dphi >= 0).all() and (dphi <= math.pi + 1e-5).all()
    # dR^2 = deta^2 + dphi^2 >= dphi^2
    assert (_feature(sample, "dr_ll") >= dphi - 1e-4).all()


def test_met_mt_and_jets(sample):
    met, mt = _feature(sample, "met"), _feature(sample, "mt")
    assert (met >= 0).all() and (mt >= 0).all()
    nj = _feature(sample, "n_jets")
    assert (nj >= 0).all() and np.array_equal(nj, np.round(nj))
    # Both classes have mostly 0 or 1 jets at this generator level, but some with more.
    assert 0.3 < (nj == 0).mean() < 0.9 and (nj >= 2).any()


def test_signal_physics(sample):
    mll_sig = _feature(sample, "m_ll", 1)
    mll_bkg = _feature(sample, "m_ll", 0)
    # H(125) -> W W*: the dilepton mass is mostly below ~80 GeV; the continuum is not.
    assert (mll_sig < 80).mean() > 0.9
    assert (mll_bkg < 80).mean() < 0.7
    # The transverse mass of the signal sits below m_H.
    assert np.median(_feature(sample, "mt", 1)) < 125 < np.median(_feature(sample, "mt", 0)) + 60


def test_dphi_spin_correlation_separates(sample):
    s, b = _feature(sample, "dphi_ll", 1), _feature(sample, "dphi_ll", 0)
    assert s.mean() < b.mean()
    se = math.sqrt(s.var() / len(s) + b.var() / len(b))
    assert (b.mean() - s.mean()) / se > 10


def _auc(score, y):
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    n1 = (y == 1).sum()
    n0 = len(y) - n1
    return (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def test_logistic_regression_separates(sample):
    rng = np.random.default_rng(0)
    X = sample["X"].astype(np.float64)
    y = sample["label"].astype(np.float64)
    idx = rng.permutation(len(y))[:8000]
    X, y = X[idx], y[idx]
    X = (X - X.mean(0)) / (X.std(0) + 1e-12)
    half = len(y) // 2
    w = np.zeros(X.shape[1])
    b = 0.0
    for _ in range(300):
        p = 1.0 / (1.0 + np.exp(-(X[:half] @ w + b)))
        g = p - y[:half]
        w -= 0.5 * X[:half].T @ g / half
        b -= 0.5 * g.mean()
    auc = _auc(X[half:] @ w + b, y[half:])
    assert auc > 0.8, auc


def test_event_features_by_hand():
    gen = _load_generator()
    # Two isolated leptons, a soft non-isolated muon inside a "jet", two neutrinos.
    ids = np.array([11, -13, 13, 211, 211, 12, -14])
    px = np.array([40.0, -30.0, 12.0, 30.0, 10.0, 5.0, 5.0])
    py = np.array([0.0, 10.0, 30.0, 75.0, 25.0, 20.0, 0.0])
    pz = np.array([10.0, -5.0, 1.0, 2.0, 1.0, 3.0, 1.0])
    e = np.sqrt(px**2 + py**2 + pz**2)
    visible = np.array([True, True, True, True, True, False, False])
    row = gen.event_features(ids, px, py, pz, e, visible, None, None)
    f = dict(zip(gen.FEATURE_NAMES, row))
    assert f["n_leptons"] == 2
    assert f["lep1_pt"] == pytest.approx(40.0)
    assert f["lep2_pt"] == pytest.approx(math.hypot(30.0, 10.0))
    lx, ly, lz, le = 10.0, 10.0, 5.0, e[0] + e[1]
    m_ll = math.sqrt(le**2 - lx**2 - ly**2 - lz**2)
    assert f["m_ll"] == pytest.approx(m_ll)
    assert f["pt_ll"] == pytest.approx(math.hypot(lx, ly))
    assert f["dphi_ll"] == pytest.approx(math.pi - math.atan2(10.0, 30.0))
    met = math.hypot(10.0, 20.0)
    assert f["met"] == pytest.approx(met)
    et_ll = math.sqrt(lx**2 + ly**2 + m_ll**2)
    mt = math.sqrt((et_ll + met) ** 2 - ((lx + 10.0) ** 2 + (ly + 20.0) ** 2))
    assert f["mt"] == pytest.approx(mt)
    # One lepton only: rejected by the preselection.
    assert gen.event_features(ids[[0, 5]], px[[0, 5]], py[[0, 5]], pz[[0, 5]], e[[0, 5]],
                              visible[[0, 5]], None, None) is None


def test_tiny_generation(tmp_path):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    gen = _load_generator()
    out = gen.generate(20, 20, seed=5, procs=1, verbose=False)
    path = tmp_path / "tiny.npz"
    gen.write_npz(str(path), out)
    with np.load(path, allow_pickle=False) as d:
        assert d["X"].shape[1] == len(gen.FEATURE_NAMES)
        assert d["X"].shape[0] == d["label"].shape[0] > 0
        assert np.isfinite(d["X"]).all() and (d["weight"] > 0).all()
        assert (d["X"][:, 0] >= 2).all()
    again = gen.generate(20, 20, seed=5, procs=1, verbose=False)
    np.testing.assert_array_equal(out["X"], again["X"])  # seeded: reproducible


def test_generator_docstring_examples():
    import doctest

    gen = _load_generator()
    result = doctest.testmod(gen, verbose=False)
    assert result.failed == 0 and result.attempted >= 2
