"""ROC curve, area under it, and background rejection at a signal efficiency, with per-event
weights. roc_curve and roc_auc_score give scikit-learn's numbers (same tie handling, same
drop_intermediate default); negative weights are accepted (see roc_curve).
"""
import numpy as np

from ._inputs import binary_inputs, vector


def trapezoid(y, x):
    """Trapezoidal area under y(x) in x order (no monotonicity check; NumPy-version independent)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) * 0.5)


def _cumulative_rates(fn, y, s, w):
    """Weighted true/false positive sums at each distinct score, scores descending."""
    if w is not None:
        keep = w != 0  # zero-weight events would add thresholds but no area (as scikit-learn)
        y, s, w = y[keep], s[keep], w[keep]
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # A group of tied scores is one threshold: take the sums at the last event of each group.
    # (!= rather than diff so that runs of equal infinite scores stay one group.)
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    if w is None:
        tps = np.cumsum(y, dtype=np.float64)[last]
        fps = (last + 1.0) - tps
    else:
        w = w[order]
        tps = np.cumsum(np.where(y, w, 0.0))[last]
        fps = np.cumsum(np.where(y, 0.0, w))[last]
    if len(last) == 0 or tps[-1] <= 0 or fps[-1] <= 0:
        total_s = tps[-1] if len(last) else 0.0
        total_b = fps[-1] if len(last) else 0.0
        raise ValueError(f"[{fn}] the ROC curve needs signal and background events with positive "
                         f"total weight; got signal {total_s:g}, background {total_b:g}")
    return fps, tps, s[last]


def roc_curve(y_true, score, sample_weight=None, drop_intermediate=True):
    """ROC curve: (fpr, tpr, thresholds), equal to sklearn.metrics.roc_curve's.

    y_true: 0 = background, 1 = signal (bool, int or float); score: higher = more signal-like.
    fpr[i] / tpr[i] are the background / signal efficiencies of ``score >= thresholds[i]``
    (weighted fractions with ``sample_weight``); thresholds decrease from ``inf`` (the (0, 0)
    point). Tied scores form one threshold. drop_intermediate=True (scikit-learn's default)
    drops points lying on a straight line between their neighbours: the curve's shape and area
    are unchanged; pass False to keep one point per distinct score.

    Negative weights (NLO Monte Carlo) are accepted, as scikit-learn does: the curve is then not
    necessarily monotonic. The total signal and background weights must be positive.
    Events with weight zero are ignored.

    Example:
        >>> import hepnn.metrics as M
        >>> fpr, tpr, thr = M.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    y, s, w = binary_inputs("roc_curve", y_true, score, sample_weight)
    fps, tps, thresholds = _cumulative_rates("roc_curve", y, s, w)
    if drop_intermediate and len(fps) > 2:
        corner = np.logical_or(np.diff(fps, 2) != 0, np.diff(tps, 2) != 0)
        keep = np.r_[True, corner, True]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fpr = np.r_[0.0, fps] / fps[-1]
    tpr = np.r_[0.0, tps] / tps[-1]
    return fpr, tpr, np.r_[np.inf, thresholds]


def auc(x, y):
    """Area under a curve by the trapezoidal rule; `x` must be monotonic (either direction).

    As sklearn.metrics.auc: ``auc(fpr, tpr)`` is the ROC area. For the area from labels and
    scores use roc_auc_score.

    Example:
        >>> import hepnn.metrics as M
        >>> M.auc([0.0, 0.5, 1.0], [0.0, 1.0, 1.0])
        0.75
    """
    fn = "auc"
    xs = vector(fn, "x", x).astype(np.float64, copy=False)
    ys = vector(fn, "y", y).astype(np.float64, copy=False)
    if len(xs) != len(ys):
        raise ValueError(f"[{fn}] x and y have different lengths ({len(xs)} and {len(ys)})")
    if len(xs) < 2:
        raise ValueError(f"[{fn}] need at least 2 points, got {len(xs)}")
    if np.isnan(xs).any() or np.isnan(ys).any():
        raise ValueError(f"[{fn}] x or y contains NaN")
    dx = np.diff(xs)
    direction = 1.0
    if (dx < 0).any():
        if not (dx <= 0).all():
            raise ValueError(f"[{fn}] x is neither increasing nor decreasing")
        direction = -1.0
    return direction * trapezoid(ys, xs)


def roc_auc_score(y_true, score, sample_weight=None):
    """Area under the ROC curve from labels and scores (weighted), equal to scikit-learn's.

    It is the (weighted) probability that a signal event scores above a background event,
    ties counting one half. With negative weights the trapezoidal area of the possibly
    non-monotonic curve is returned (scikit-learn raises there instead).

    Example:
        >>> import hepnn.metrics as M
        >>> M.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    fpr, tpr, _ = roc_curve(y_true, score, sample_weight)
    return trapezoid(tpr, fpr)


def background_rejection(y_true, score, eps_s, sample_weight=None):
    """Background rejection 1/eps_B at signal efficiency eps_s (a scalar or an array in [0, 1]).

    eps_B is interpolated linearly along the ROC curve (fpr as a function of tpr) at the first
    point where the signal efficiency reaches eps_s, i.e. the best cut giving at least eps_s.
    Returns ``inf`` where eps_B = 0. A scalar eps_s gives a float, an array an array.

    Example:
        >>> import hepnn.metrics as M
        >>> y, s = [0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.5, 0.9]
        >>> M.background_rejection(y, s, 0.5), M.background_rejection(y, s, 1.0)
        (inf, 4.0)
    """
    fn = "background_rejection"
    eps = np.asarray(eps_s, dtype=np.float64)
    if np.isnan(eps).any() or (eps < 0).any() or (eps > 1).any():
        raise ValueError(f"[{fn}] eps_s must be in [0, 1], got {eps_s}")
    y, s, w = binary_inputs(fn, y_true, score, sample_weight)
    fps, tps, _ = _cumulative_rates(fn, y, s, w)
    fpr, tpr = np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]
    # NOTE: the running maximum makes tpr non-decreasing (it already is unless weights are
    # negative), so the search finds the first crossing of eps_s.
    reach = np.maximum.accumulate(tpr)
    i = np.clip(np.searchsorted(reach, eps, side="left"), 1, len(tpr) - 1)
    t0, t1, f0, f1 = tpr[i - 1], tpr[i], fpr[i - 1], fpr[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(t1 > t0, (eps - t0) / (t1 - t0), 1.0)
        eps_b = np.where(eps <= 0, 0.0, f0 + np.clip(frac, 0.0, 1.0) * (f1 - f0))
        rej = np.where(eps_b == 0, np.inf, 1.0 / eps_b)
    return float(rej) if rej.ndim == 0 else rej
