"""hepnn.metrics against scikit-learn (ROC, AUC) on random, tied and weighted scores, against
brute-force definitions (negative weights, rejection at ROC vertices), against mpmath (Asimov)
and scipy (KS)."""
import numpy as np
import pytest

import hepnn
import hepnn.metrics as M

skm = pytest.importorskip("sklearn.metrics")


def _sample(n, kind, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[-1] = 0, 1  # both classes present
    if kind == "random":
        s = rng.normal(size=n) + 0.8 * y
    elif kind == "tied":
        s = np.round(rng.random(n) * 4 + y) / 4  # few distinct values, many ties
    else:  # a discrete classifier output with ties between classes
        s = rng.integers(0, 3, n).astype(np.float32)
    return y, s, rng


WEIGHTS = ["none", "float", "int_with_zeros"]


def _weights(kind, n, rng, y):
    if kind == "none":
        return None
    if kind == "float":
        return rng.exponential(size=n)
    w = rng.integers(0, 4, n).astype(np.float64)
    w[0], w[-1] = 1.0, 1.0
    return w


@pytest.mark.parametrize("n", [2, 7, 33, 257, 1001])
@pytest.mark.parametrize("kind", ["random", "tied", "discrete"])
@pytest.mark.parametrize("wkind", WEIGHTS)
@pytest.mark.parametrize("drop", [True, False])
def test_roc_curve_matches_sklearn(n, kind, wkind, drop):
    y, s, rng = _sample(n, kind, seed=n)
    w = _weights(wkind, n, rng, y)
    ours = M.roc_curve(y, s, sample_weight=w, drop_intermediate=drop)
    ref = skm.roc_curve(y, s, sample_weight=w, drop_intermediate=drop)
    for a, b, name in zip(ours, ref, ("fpr", "tpr", "thresholds")):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("n", [7, 33, 257, 1001])
@pytest.mark.parametrize("kind", ["random", "tied", "discrete"])
@pytest.mark.parametrize("wkind", WEIGHTS)
def test_roc_auc_score_matches_sklearn(n, kind, wkind):
    y, s, rng = _sample(n, kind, seed=3 * n)
    w = _weights(wkind, n, rng, y)
    assert M.roc_auc_score(y, s, w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w),
                                                     rel=1e-13, abs=1e-15)
    fpr, tpr, _ = M.roc_curve(y, s, w)
    assert M.auc(fpr, tpr) == pytest.approx(skm.auc(fpr, tpr), rel=1e-14)
    assert M.auc(fpr[::-1], tpr[::-1]) == pytest.approx(skm.auc(fpr, tpr), rel=1e-14)


def _pairwise_auc(y, s, w):
    """P(score_sig > score_bkg) + P(tie)/2 with signed weights: the AUC's definition."""
    ws, wb = w[y == 1], w[y == 0]
    ss, sb = s[y == 1][:, None], s[y == 0][None, :]
    num = ws[:, None] * wb[None, :] * ((ss > sb) + 0.5 * (ss == sb))
    return num.sum() / (ws.sum() * wb.sum())


@pytest.mark.parametrize("kind", ["random", "tied"])
def test_negative_weights_auc_is_the_pairwise_probability(kind):
    y, s, rng = _sample(301, kind, seed=5)
    w = rng.exponential(size=301) * np.where(rng.random(301) < 0.15, -0.5, 1.0)
    assert M.roc_auc_score(y, s, w) == pytest.approx(_pairwise_auc(y, s, w), rel=1e-12)
    ours, ref = M.roc_curve(y, s, w), skm.roc_curve(y, s, sample_weight=w)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_unweighted_auc_is_pairwise_probability_with_ties():
    y, s, _ = _sample(200, "tied", seed=8)
    assert M.roc_auc_score(y, s) == pytest.approx(_pairwise_auc(y, s, np.ones(200)), rel=1e-13)


def test_roc_curve_accepts_tensors_bools_and_column_scores():
    y, s, _ = _sample(33, "random", seed=1)
    a = M.roc_curve(y.astype(bool), hepnn.tensor(s[:, None]))
    b = skm.roc_curve(y, s.astype(np.float32))
    for p, q in zip(a, b):
        np.testing.assert_allclose(p, q, rtol=1e-6)


def test_background_rejection_at_roc_vertices():
    rng = np.random.default_rng(2)
    n = 501
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 1.2 * y  # distinct scores
    sig, bkg = np.sort(s[y == 1])[::-1], s[y == 0]
    for k in (1, 5, 37, len(sig) // 2, len(sig)):
        eps_s = k / len(sig)
        eps_b = (bkg >= sig[k - 1]).mean()  # the cut that keeps exactly k signal events
        expect = np.inf if eps_b == 0 else 1.0 / eps_b
        assert M.background_rejection(y, s, eps_s) == pytest.approx(expect, rel=1e-12)


def test_background_rejection_interpolates_and_vectorises():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9])
    # ROC (fpr, tpr): (0,0) (0,.25) (0,.5) (0,.75) (.25,.75) (.25,1) ...
    eps = np.array([0.0, 0.5, 0.75, 0.875, 1.0])
    out = M.background_rejection(y, s, eps)
    np.testing.assert_allclose(out, [np.inf, np.inf, np.inf, 4.0, 4.0])
    assert isinstance(M.background_rejection(y, s, 0.875), float)
    # Weighted: doubling every background weight changes nothing; weights on signal move eps_s.
    w = np.where(y == 0, 2.0, 1.0)
    np.testing.assert_allclose(M.background_rejection(y, s, eps, w), out)
    rng = np.random.default_rng(0)
    yy, ss = rng.integers(0, 2, 2000), rng.normal(size=2000)
    ss += yy
    grid = np.linspace(0.05, 1.0, 40)
    rej = M.background_rejection(yy, ss, grid)
    assert (np.diff(rej) <= 0).all() and rej[-1] >= 1.0  # harder cuts reject more
    # With negative weights the curve need not be monotonic; the result stays finite and defined.
    wn = rng.exponential(size=2000) * np.where(rng.random(2000) < 0.1, -1, 1)
    assert np.isfinite(M.background_rejection(yy, ss, grid[5:], wn)).all()


def test_input_validation():
    y, s = np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.3, 0.2])
    with pytest.raises(ValueError, match=r"\[roc_curve\] score has 3 entries but y_true has 4"):
        M.roc_curve(y, s[:3])
    with pytest.raises(ValueError, match=r"labels must be binary .* found values \[0, 1, 2\]"):
        M.roc_auc_score(np.array([0, 1, 2, 0]), s)
    with pytest.raises(ValueError, match="score contains 1 NaN"):
        M.roc_auc_score(y, np.array([0.1, np.nan, 0.3, 0.2]))
    with pytest.raises(ValueError, match="signal and background"):
        M.roc_curve(np.zeros(4), s)
    with pytest.raises(ValueError, match="positive total weight"):
        M.roc_auc_score(y, s, np.array([1.0, 0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        M.roc_curve(y, s, np.array([1.0, np.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"eps_s must be in \[0, 1\]"):
        M.background_rejection(y, s, 1.2)
    with pytest.raises(ValueError, match="neither increasing nor decreasing"):
        M.auc([0, 1, 0.5], [0, 1, 1])
    with pytest.raises(ValueError, match="1-D"):
        M.roc_curve(y, np.ones((4, 2)))


# ---- significance ----

def _asimov_mp(s, b, sigma=None):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    s, b = mp.mpf(float(s)), mp.mpf(float(b))
    if sigma is None or sigma == 0:
        return float(mp.sqrt(2 * ((s + b) * mp.log(1 + s / b) - s)))
    v = mp.mpf(float(sigma)) ** 2
    t1 = (s + b) * mp.log((s + b) * (b + v) / (b * b + (s + b) * v))
    t2 = b * b / v * mp.log(1 + v * s / (b * (b + v)))
    return float(mp.sqrt(2 * (t1 - t2)))


@pytest.mark.parametrize("b", [0.5, 10.0, 1e4, 1e7])
@pytest.mark.parametrize("ratio", [1e-9, 1e-6, 3e-4, 1e-2, 0.5, 3.0, 100.0])
@pytest.mark.parametrize("rel_sigma", [None, 1e-6, 0.05, 0.3, 2.0])
def test_asimov_against_high_precision(b, ratio, rel_sigma):
    s = ratio * b
    sigma = None if rel_sigma is None else rel_sigma * b
    ref = _asimov_mp(s, b, sigma)
    assert M.asimov_significance(s, b, sigma) == pytest.approx(ref, rel=1e-7)


def test_significance_limits_and_broadcasting():
    assert M.significance(10.0, 100.0) == 1.0
    np.testing.assert_allclose(M.significance([1.0, 4.0], 4.0), [0.5, 2.0])
    # Asimov -> s/sqrt(b) for s << b; with sigma_b -> s/sqrt(b + sigma_b^2); below s/sqrt(b) always.
    assert M.asimov_significance(1e-3, 1e3) == pytest.approx(1e-3 / np.sqrt(1e3), rel=1e-6)
    assert M.asimov_significance(1e-3, 1e3, 30.0) == pytest.approx(1e-3 / np.sqrt(1e3 + 900), rel=1e-6)
    s = np.array([1.0, 5.0, 20.0, 50.0])
    z0 = M.asimov_significance(s, 25.0)
    assert (z0 < M.significance(s, 25.0)).all()
    z = M.asimov_significance(s[:, None], 25.0, np.array([0.0, 1.0, 5.0]))
    assert z.shape == (4, 3)
    np.testing.assert_allclose(z[:, 0], z0, rtol=1e-15)
    assert (np.diff(z, axis=1) < 0).all()  # more uncertainty, less significance
    assert M.asimov_significance(0.0, 5.0) == 0.0


def test_significance_validation():
    with pytest.raises(ValueError, match=r"\[significance\] b must be > 0"):
        M.significance(1.0, 0.0)
    with pytest.raises(ValueError, match=r"\[asimov_significance\] s must be >= 0"):
        M.asimov_significance(-1.0, 4.0)
    with pytest.raises(ValueError, match="sigma_b must be >= 0"):
        M.asimov_significance(1.0, 4.0, -1.0)
    with pytest.raises(ValueError, match="s contains NaN"):
        M.asimov_significance(np.array([1.0, np.nan]), 4.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        M.significance(np.ones(3), np.ones(2))


# ---- KS ----

def test_kolmogorov_sf_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    lam = np.r_[0.0, np.linspace(0.05, 3.5, 200)]
    np.testing.assert_allclose(M.kolmogorov_sf(lam), stats.kstwobign.sf(lam), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_ks_2samp_matches_scipy(shift):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    a = np.round(rng.normal(size=1500), 1)  # ties within and across samples
    b = np.round(rng.normal(size=1101) + shift, 1)
    d, p = M.ks_2samp(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, abs=0.01, rel=0.05)
    if shift:
        assert p < 1e-3


def test_ks_weights():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=300), rng.normal(size=200)
    wa = rng.integers(1, 4, 300).astype(float)
    d_w, _ = M.ks_2samp(a, b, weights_a=wa)
    d_rep, _ = M.ks_2samp(np.repeat(a, wa.astype(int)), b)  # integer weights = repeated events
    assert d_w == pytest.approx(d_rep, rel=1e-12)
    with pytest.raises(ValueError, match="positive sum"):
        M.ks_2samp(a, b, weights_a=-wa)
    with pytest.raises(ValueError, match="a contains NaN"):
        M.ks_2samp(np.array([np.nan, 1.0]), b)


@pytest.mark.parametrize("module", ["hepnn.metrics", "hepnn.metrics.roc", "hepnn.metrics.ks",
                                    "hepnn.metrics.significance"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
