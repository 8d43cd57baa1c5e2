"""Standard plots of a signal/background classifier: background rejection vs signal efficiency,
loss curves, and train-vs-test score distributions (overtraining check). matplotlib is an
optional extra: it is imported only when a plot is made, and figures are drawn without pyplot
(no display needed, no global state). Each PNG is written to a temporary file and renamed.
"""
import os
import tempfile
from collections.abc import Mapping

import numpy as np

from .metrics import ks_2samp, roc_curve
from .metrics.roc import trapezoid
from .metrics._inputs import binary_inputs, vector

_SIGNAL, _BACKGROUND = "#1f5fbf", "#d62728"


def _figure(fn, size=(6.0, 4.5)):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"[{fn}] plotting needs matplotlib: pip install 'hepnn[plot]' "
                          "(or pip install matplotlib)") from None
    # A bare Figure renders through the Agg canvas on savefig, whatever the pyplot backend.
    fig = Figure(figsize=size, dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _check_path(fn, path):
    path = os.fspath(path)
    if not isinstance(path, str) or not path.lower().endswith(".png"):
        raise ValueError(f"[{fn}] path must end with .png, got {path!r}")
    return path


def _save(fig, path):
    """Write the figure as PNG to `path` atomically: temp file in the same folder, fsync, rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ---- ROC as background rejection ----

def _is_curve(a, b):
    if len(a) != len(b) or len(a) < 2 or a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
        return False
    a, b = a.astype(np.float64), b.astype(np.float64)
    return bool(a[0] == 0 and b[0] == 0 and a[-1] == 1 and b[-1] == 1
                and (np.diff(a) >= 0).all() and (np.diff(b) >= 0).all())


def _is_labels(a):
    return a.dtype.kind == "b" or (a.dtype.kind in "iuf" and np.isin(a, (0, 1)).all())


def _curve_of(fn, name, value):
    """(fpr, tpr) from (y, score[, w]), (fpr, tpr) or a dict with those keys."""
    if isinstance(value, Mapping):
        if {"fpr", "tpr"} <= set(value):
            fpr = vector(fn, f"{name}: fpr", value["fpr"]).astype(np.float64)
            tpr = vector(fn, f"{name}: tpr", value["tpr"], len(fpr)).astype(np.float64)
            return fpr, tpr
        if {"y", "score"} <= set(value):
            fpr, tpr, _ = roc_curve(value["y"], value["score"], value.get("weight"))
            return fpr, tpr
        raise ValueError(f"[{fn}] curve {name!r}: a dict needs keys fpr and tpr, or y and score "
                         f"[and weight]; got {sorted(value)}")
    if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
        raise ValueError(f"[{fn}] curve {name!r} must be (y, score), (y, score, weights) or "
                         f"(fpr, tpr), got {type(value).__name__}")
    if len(value) == 3:
        fpr, tpr, _ = roc_curve(*value)
        return fpr, tpr
    a = vector(fn, f"{name}: first array", value[0])
    b = vector(fn, f"{name}: second array", value[1])
    curve, labels = _is_curve(a, b), _is_labels(a) and len(a) == len(b)
    if curve and labels:
        raise ValueError(f"[{fn}] curve {name!r} reads both as (fpr, tpr) and as (labels, scores); "
                         "pass a dict {'fpr': ..., 'tpr': ...} or {'y': ..., 'score': ...}")
    if curve:
        return a.astype(np.float64), b.astype(np.float64)
    if labels:
        fpr, tpr, _ = roc_curve(a, b)
        return fpr, tpr
    raise ValueError(f"[{fn}] curve {name!r}: the first array is neither binary labels nor an fpr "
                     "running from 0 to 1 with a matching tpr")


def roc_rejection(curves, path, title=None):
    """Plot background rejection 1/eps_B against signal efficiency eps_S (log y) and save a PNG.

    curves: dict name -> (y_true, score), (y_true, score, weights), (fpr, tpr) as from
    roc_curve, or a dict with keys fpr/tpr or y/score[/weight]. The legend gives each AUC;
    a dashed line shows a random classifier (1/eps_B = 1/eps_S). Returns `path`.

    Example:
        >>> import numpy as np, os, tempfile, hepnn.plot
        >>> rng = np.random.default_rng(0); y = rng.integers(0, 2, 500); s = y + rng.normal(size=500)
        >>> p = hepnn.plot.roc_rejection({"MLP": (y, s)}, os.path.join(tempfile.mkdtemp(), "roc.png"))
        >>> open(p, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
        True
    """
    fn = "roc_rejection"
    path = _check_path(fn, path)
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"[{fn}] curves must be a non-empty dict name -> (y, score[, w]) or "
                         "(fpr, tpr)")
    resolved = {str(name): _curve_of(fn, name, value) for name, value in curves.items()}
    fig, ax = _figure(fn)
    lowest, highest = np.inf, 1.0
    for name, (fpr, tpr) in resolved.items():
        area = trapezoid(tpr, fpr)
        ok = (fpr > 0) & (tpr > 0)  # rejection is infinite where eps_B = 0
        rej = 1.0 / fpr[ok]
        ax.plot(tpr[ok], rej, lw=1.8, label=f"{name} (AUC = {area:.3f})")
        if ok.any():
            lowest, highest = min(lowest, rej.min()), max(highest, rej.max())
    eps = np.linspace(0.01, 1.0, 200)
    ax.plot(eps, 1.0 / eps, ls="--", color="0.5", lw=1.0, label="random")
    ax.set_yscale("log")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(max(0.8 * min(lowest, 1.0), 0.5), 1.5 * max(highest, 10.0))
    ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.legend(loc="upper right", frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


# ---- loss curves ----

def _series(fn, name, values):
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"[{fn}] history[{name!r}] must be a list of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"[{fn}] history[{name!r}] must be a flat list, got shape {arr.shape}")
    return arr


def loss_curves(history, path, title=None, log_y=False):
    """Plot training (and validation) loss per epoch and save a PNG; returns `path`.

    history: a dict with "loss" (one value per epoch) and optionally "val_loss", or an object
    whose ``.history`` is such a dict. The best validation epoch is marked.

    Example:
        >>> import os, tempfile, hepnn.plot
        >>> h = {"loss": [0.7, 0.5, 0.4, 0.35], "val_loss": [0.72, 0.55, 0.5, 0.52]}
        >>> os.path.exists(hepnn.plot.loss_curves(h, os.path.join(tempfile.mkdtemp(), "loss.png")))
        True
    """
    fn = "loss_curves"
    path = _check_path(fn, path)
    if not isinstance(history, Mapping) and isinstance(getattr(history, "history", None), Mapping):
        history = history.history
    if not isinstance(history, Mapping) or "loss" not in history:
        raise ValueError(f"[{fn}] history must be a dict with a 'loss' list (and optionally "
                         "'val_loss')")
    loss = _series(fn, "loss", history["loss"])
    if len(loss) == 0:
        raise ValueError(f"[{fn}] history['loss'] is empty")
    val = _series(fn, "val_loss", history["val_loss"]) if history.get("val_loss") is not None \
        else np.empty(0)
    fig, ax = _figure(fn)
    ax.plot(np.arange(1, len(loss) + 1), loss, "-o", ms=3, color=_SIGNAL, label="training")
    if len(val):
        epochs = np.arange(1, len(val) + 1)
        ax.plot(epochs, val, "-s", ms=3, color=_BACKGROUND, label="validation")
        if np.isfinite(val).any():
            best = int(np.nanargmin(np.where(np.isfinite(val), val, np.nan)))
            ax.axvline(best + 1, color="0.4", ls=":", lw=1.0)
            ax.plot([best + 1], [val[best]], "*", ms=12, color=_BACKGROUND,
                    label=f"best validation (epoch {best + 1})")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


# ---- score distributions: the overtraining check ----

def _density(x, w, edges):
    """Normalised histogram and its statistical error (sqrt of the summed squared weights)."""
    width = np.diff(edges)
    total = w.sum()
    h, _ = np.histogram(x, bins=edges, weights=w)
    e2, _ = np.histogram(x, bins=edges, weights=w * w)
    return h / (total * width), np.sqrt(e2) / (abs(total) * width)


def score_distributions(y_train, s_train, y_test, s_test, path, w_train=None, w_test=None,
                        bins=40, range=None, title=None):
    """Overlay the classifier score of signal and background on training (filled) and test
    (points) events, normalised to unit area, and save a PNG; returns `path`.

    The legend gives the two-sample KS p-value (train vs test, weighted; hepnn.metrics.ks_2samp)
    per class: a very small p-value hints at overtraining. w_train / w_test: event weights.

    Example:
        >>> import numpy as np, os, tempfile, hepnn.plot
        >>> rng = np.random.default_rng(0); y = rng.integers(0, 2, 800); s = y + rng.normal(size=800)
        >>> p = hepnn.plot.score_distributions(y[:400], s[:400], y[400:], s[400:],
        ...                                    os.path.join(tempfile.mkdtemp(), "scores.png"))
        >>> os.path.getsize(p) > 1000
        True
    """
    fn = "score_distributions"
    path = _check_path(fn, path)
    ytr, str_, wtr = binary_inputs(fn, y_train, s_train, w_train)
    yte, ste, wte = binary_inputs(fn, y_test, s_test, w_test)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"[{fn}] bins must be a positive integer, got {bins!r}")
    if range is None:
        finite = np.concatenate([str_, ste])
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            raise ValueError(f"[{fn}] no finite scores to histogram")
        lo, hi = float(finite.min()), float(finite.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = (float(v) for v in range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"[{fn}] range must be finite with min < max, got {range}")
    edges = np.linspace(lo, hi, int(bins) + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    wtr = np.ones(len(ytr)) if wtr is None else wtr
    wte = np.ones(len(yte)) if wte is None else wte
    fig, ax = _figure(fn)
    top = 0.0
    for cls, name, color in ((True, "signal", _SIGNAL), (False, "background", _BACKGROUND)):
        a, b = ytr == cls, yte == cls
        if not a.any() or not b.any():
            raise ValueError(f"[{fn}] both training and test sets need {name} events")
        _, p = ks_2samp(str_[a], ste[b], wtr[a], wte[b])
        h_tr, _ = _density(str_[a], wtr[a], edges)
        h_te, e_te = _density(ste[b], wte[b], edges)
        top = max(top, float(np.max(h_tr)), float(np.max(h_te + e_te)))
        ax.stairs(h_tr, edges, fill=True, alpha=0.3, color=color, label=f"{name} (train)")
        ax.stairs(h_tr, edges, color=color, lw=1.2)
        ax.errorbar(centres, h_te, yerr=e_te, fmt="o", ms=3.5, color=color, elinewidth=1.0,
                    label=f"{name} (test), KS p = {p:.3g}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0.0, 1.35 * top if top > 0 else 1.0)  # headroom for the legend
    ax.set_xlabel("classifier score")
    ax.set_ylabel("normalised events / bin width")
    ax.legend(frameon=False, fontsize="small", ncols=2, loc="upper center")
    if title:
        ax.set_title(title)
    return _save(fig, path)
