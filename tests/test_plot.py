"""hepnn.plot: every plot writes a valid PNG atomically (no temp file left, an old file survives
a failed write), accepts the documented input forms, and refuses bad input."""
import os
import struct
import sys

import numpy as np
import pytest

import hepnn
import hepnn.metrics as M
import hepnn.plot as P

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_size=(300, 200)):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    assert width >= min_size[0] and height >= min_size[1]


def _no_temp_files(folder):
    return [f for f in os.listdir(folder) if f.endswith(".tmp")] == []


def _scores(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y))), rng.exponential(size=n)


def test_roc_rejection_input_forms(tmp_path):
    y, s, w = _scores()
    fpr, tpr, _ = M.roc_curve(y, s)
    curves = {"labels": (y, s), "weighted": (y, s, w), "curve": (fpr, tpr),
              "dict": {"fpr": fpr, "tpr": tpr}, "tensor": (hepnn.tensor(y), hepnn.tensor(s)),
              "dict-labels": {"y": y, "score": s, "weight": w}}
    out = P.roc_rejection(curves, tmp_path / "roc.png", title="test")
    assert out == str(tmp_path / "roc.png")
    _assert_png(out)
    assert _no_temp_files(tmp_path)


def test_roc_rejection_bad_input(tmp_path):
    y, s, _ = _scores()
    path = tmp_path / "roc.png"
    with pytest.raises(ValueError, match="non-empty dict"):
        P.roc_rejection({}, path)
    with pytest.raises(ValueError, match="reads both as"):
        P.roc_rejection({"x": (np.array([0, 0, 1]), np.array([0.0, 1.0, 1.0]))}, path)
    with pytest.raises(ValueError, match="neither binary labels nor an fpr"):
        P.roc_rejection({"x": (s, s)}, path)
    with pytest.raises(ValueError, match="labels must be binary"):
        P.roc_rejection({"x": (y * 2, s, np.ones_like(s))}, path)
    with pytest.raises(ValueError, match="keys fpr and tpr"):
        P.roc_rejection({"x": {"a": y}}, path)
    with pytest.raises(ValueError, match=r"must end with \.png"):
        P.roc_rejection({"x": (y, s)}, tmp_path / "roc.pdf")
    assert not path.exists()


def test_loss_curves(tmp_path):
    class History:
        history = {"loss": [1.0, 0.6, 0.5, 0.45], "val_loss": [1.1, 0.7, 0.65, float("nan")]}

    _assert_png(P.loss_curves({"loss": [0.9, 0.5]}, tmp_path / "a.png"))
    _assert_png(P.loss_curves(History(), tmp_path / "sub" / "b.png", log_y=True))
    with pytest.raises(ValueError, match="'loss' list"):
        P.loss_curves({"val_loss": [1.0]}, tmp_path / "c.png")
    with pytest.raises(ValueError, match="is empty"):
        P.loss_curves({"loss": []}, tmp_path / "c.png")
    with pytest.raises(TypeError, match="list of numbers"):
        P.loss_curves({"loss": ["a", "b"]}, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists() and _no_temp_files(tmp_path)


def test_score_distributions(tmp_path):
    y, s, w = _scores(1000)
    out = P.score_distributions(y[:600], s[:600], y[600:], s[600:], tmp_path / "s.png",
                                w_train=w[:600], w_test=w[600:], bins=25, range=(0, 1))
    _assert_png(out)
    alt = np.arange(10) % 2
    _assert_png(P.score_distributions(alt, np.full(10, 0.5), alt, np.full(10, 0.5),
                                      tmp_path / "const.png"))  # one score value: still a plot
    with pytest.raises(ValueError, match="need signal events"):
        P.score_distributions(y[:600], s[:600], np.zeros(5), s[:5], tmp_path / "x.png")
    with pytest.raises(ValueError, match="score contains 1 NaN"):
        bad = s.copy()
        bad[3] = np.nan
        P.score_distributions(y, bad, y, s, tmp_path / "x.png")
    with pytest.raises(ValueError, match="bins"):
        P.score_distributions(y, s, y, s, tmp_path / "x.png", bins=0)
    with pytest.raises(ValueError, match="range"):
        P.score_distributions(y, s, y, s, tmp_path / "x.png", range=(1, 0))
    assert not (tmp_path / "x.png").exists()


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    y, s, _ = _scores()
    path = P.roc_rejection({"a": (y, s)}, tmp_path / "roc.png")
    old = open(path, "rb").read()

    def broken_savefig(self, f, **kwargs):
        f.write(PNG_SIGNATURE + b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        P.roc_rejection({"b": (y, 1 - s)}, path)
    assert open(path, "rb").read() == old
    assert _no_temp_files(tmp_path)


def test_missing_matplotlib_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    y, s, _ = _scores()
    with pytest.raises(ImportError, match=r"\[loss_curves\] plotting needs matplotlib.*hepnn\[plot\]"):
        P.loss_curves({"loss": [1.0, 0.5]}, tmp_path / "l.png")


def test_docstring_examples():
    import doctest

    result = doctest.testmod(P, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
