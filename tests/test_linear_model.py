"""Closed-form least squares against NumPy's lstsq and the ridge normal equations."""
import numpy as np
import pytest

import hepnn


@pytest.mark.parametrize("n,d,k", [(7, 1, 1), (33, 5, 1), (257, 17, 3)])
def test_matches_lstsq(n, d, k):
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal((n, k)) if k > 1 else rng.standard_normal(n)
    w, b = hepnn.linear_regression(X, y)
    A = np.hstack([X, np.ones((n, 1))])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(w, ref[:d], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(b, ref[d], rtol=1e-9, atol=1e-11)


def test_ridge_without_intercept():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((41, 6)), rng.standard_normal(41)
    w, b = hepnn.linear_regression(X, y, ridge=2.5, fit_intercept=False)
    np.testing.assert_allclose(w, np.linalg.solve(X.T @ X + 2.5 * np.eye(6), X.T @ y), rtol=1e-10)
    assert b == 0.0


def test_singular_design_falls_back_to_least_squares():
    X = np.ones((9, 2))
    w, b = hepnn.linear_regression(X, np.arange(9.0), fit_intercept=False)
    np.testing.assert_allclose(X @ w, np.full(9, 4.0), rtol=1e-9)


@pytest.mark.parametrize("args,match", [((np.ones(5), np.ones(5)), "2-D"), ((np.ones((5, 2)), np.ones(4)), "rows"),
                                        ((np.full((3, 1), np.nan), np.ones(3)), "NaN")])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        hepnn.linear_regression(*args)
    with pytest.raises(ValueError, match="ridge"):
        hepnn.linear_regression(np.ones((3, 1)), np.ones(3), ridge=-1.0)
