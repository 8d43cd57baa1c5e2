"""hepnn.data.pad: jagged particle sets (lists, dicts, awkward Arrays and records) to padded
arrays plus masks; sorting by a feature before truncation; bad input. The awkward tests skip
when awkward (the `hep` extra) is not installed."""
import numpy as np
import pytest

import hepnn


def _events(rng, B=9, F=3, max_n=12):
    return [rng.standard_normal((int(n), F)) for n in rng.integers(0, max_n, B)]


def _reference(events, max_len, key=None, descending=True, fill=0.0):
    """Event-by-event loop: the obvious implementation."""
    F = events[0].shape[1:] if events else ()
    out = np.full((len(events), max_len) + F, fill)
    mask = np.zeros((len(events), max_len), bool)
    for i, e in enumerate(events):
        if key is not None:
            k = e[:, key] if e.ndim == 2 else e
            e = e[np.argsort(-k if descending else k, kind="stable")]
        n = min(len(e), max_len)
        out[i, :n], mask[i, :n] = e[:n], True
    return out, mask


@pytest.mark.parametrize("max_len", [1, 5, 12, 20])
@pytest.mark.parametrize("sort_by,descending", [(None, True), (0, True), (2, False), (-1, True)])
def test_list_of_events_matches_loop(max_len, sort_by, descending):
    events = _events(np.random.default_rng(max_len))
    x, mask = hepnn.data.pad(events, max_len, sort_by=sort_by, descending=descending, fill=-9.0,
                             dtype=np.float64)
    rx, rm = _reference(events, max_len, sort_by, descending, fill=-9.0)
    assert x.shape == (9, max_len, 3) and x.dtype == np.float64 and mask.dtype == bool
    np.testing.assert_array_equal(mask, rm)
    np.testing.assert_array_equal(x, rx)


def test_scalar_events_defaults_and_ties():
    events = [[3.0, 1.0, 3.0, 2.0], [], [5.0]]
    x, mask = hepnn.data.pad(events, sort_by=0)  # max_len=None: the longest event
    assert x.shape == (3, 4) and x.dtype == np.float32
    assert x.tolist() == [[3.0, 3.0, 2.0, 1.0], [0.0] * 4, [5.0, 0.0, 0.0, 0.0]]
    assert mask.sum(axis=1).tolist() == [4, 0, 1]
    # ties keep input order: sort by the first feature, the second tells which came first
    ev = [np.array([[1.0, 0.0], [2.0, 1.0], [1.0, 2.0], [2.0, 3.0]])]
    x, _ = hepnn.data.pad(ev, 4, sort_by=0, dtype=np.float64)
    assert x[0, :, 1].tolist() == [1.0, 3.0, 0.0, 2.0]


def test_truncation_keeps_leading_particles():
    pt = np.array([5.0, 50.0, 20.0, 1.0, 40.0])
    x, mask = hepnn.data.pad([np.stack([pt, -pt], axis=1)], 3, sort_by=0)
    assert x[0, :, 0].tolist() == [50.0, 40.0, 20.0] and mask.all()
    x, _ = hepnn.data.pad([pt], 3)  # no sorting: the first three as given
    assert x[0].tolist() == [5.0, 50.0, 20.0]


def test_dict_of_fields_in_given_order():
    fields = {"pt": [[3.0, 7.0], [1.0]], "eta": [[0.5, -1.0], [2.0]], "phi": [[0.1, 0.2], [0.3]]}
    x, mask = hepnn.data.pad(fields, 3, sort_by="pt", fields=["eta", "pt"], dtype=np.float64)
    assert x.shape == (2, 3, 2)
    assert x[0, :2].tolist() == [[-1.0, 7.0], [0.5, 3.0]]
    assert mask.tolist() == [[True, True, False], [True, False, False]]


def test_regular_array_input():
    arr = np.arange(24, dtype=np.float64).reshape(2, 4, 3)
    x, mask = hepnn.data.pad(arr, 6, sort_by=0, descending=True)
    assert mask.sum() == 8 and x[0, 0].tolist() == [9.0, 10.0, 11.0]


def test_padded_sets_feed_batchnorm():
    rng = np.random.default_rng(1)
    x, mask = hepnn.data.pad(_events(rng, B=16, F=4), 10, sort_by=0)
    bn = hepnn.nn.BatchNorm1d(4)
    y = bn(hepnn.tensor(np.ascontiguousarray(x.transpose(0, 2, 1))), mask=mask)
    vals = y.numpy().transpose(0, 2, 1)[mask]
    np.testing.assert_allclose(vals.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(vals.std(axis=0), 1, atol=1e-3)


def test_bad_input():
    good = [np.ones((2, 3)), np.ones((1, 3))]
    with pytest.raises(ValueError, match=r"\[pad\] max_len"):
        hepnn.data.pad(good, 0)
    with pytest.raises(ValueError, match=r"\[pad\] max_len"):
        hepnn.data.pad(good, 2.5)
    with pytest.raises(ValueError, match=r"\[pad\].*feature counts"):
        hepnn.data.pad([np.ones((2, 3)), np.ones((1, 4))], 3)
    with pytest.raises(ValueError, match=r"\[pad\].*same rank"):
        hepnn.data.pad([np.ones((2, 3)), np.ones(2)], 3)
    with pytest.raises(ValueError, match=r"\[pad\].*rank"):
        hepnn.data.pad([np.ones((2, 3, 1))], 3)
    with pytest.raises(ValueError, match=r"\[pad\] sort_by"):
        hepnn.data.pad(good, 3, sort_by=3)
    with pytest.raises(ValueError, match=r"\[pad\] sort_by='pt'"):
        hepnn.data.pad(good, 3, sort_by="pt")
    with pytest.raises(ValueError, match=r"\[pad\] sort_by='mass'"):
        hepnn.data.pad({"pt": [[1.0]]}, 3, sort_by="mass")
    with pytest.raises(ValueError, match=r"\[pad\] unknown fields"):
        hepnn.data.pad({"pt": [[1.0]]}, 3, fields=["eta"])
    with pytest.raises(ValueError, match=r"\[pad\] field 'eta' has different event sizes"):
        hepnn.data.pad({"pt": [[1.0, 2.0]], "eta": [[1.0]]}, 3)
    with pytest.raises(ValueError, match=r"\[pad\] fields="):
        hepnn.data.pad(good, 3, fields=["pt"])
    with pytest.raises(TypeError, match=r"\[pad\].*numbers"):
        hepnn.data.pad([np.array(["a", "b"])], 3)
    with pytest.raises(TypeError, match=r"\[pad\]"):
        hepnn.data.pad(42, 3)


# ---- awkward (optional) ----
def test_awkward_jagged_and_records():
    ak = pytest.importorskip("awkward")
    rng = np.random.default_rng(4)
    events = _events(rng, B=7, F=3)
    arr = ak.Array([e.tolist() for e in events])  # var * var * float64, 3 per particle
    x, mask = hepnn.data.pad(ak.to_regular(arr, axis=2), 6, sort_by=1, dtype=np.float64)
    rx, rm = _reference(events, 6, 1)
    np.testing.assert_array_equal(mask, rm)
    np.testing.assert_array_equal(x, rx)
    # records: per-particle fields stacked in the order asked for, sorted by name
    rec = ak.zip({"pt": ak.Array([e[:, 0].tolist() for e in events]),
                  "eta": ak.Array([e[:, 1].tolist() for e in events]),
                  "phi": ak.Array([e[:, 2].tolist() for e in events])})
    x2, mask2 = hepnn.data.pad(rec, 6, sort_by="eta", fields=["pt", "eta", "phi"], dtype=np.float64)
    np.testing.assert_array_equal(x2, rx)
    np.testing.assert_array_equal(mask2, rm)
    x3, _ = hepnn.data.pad(rec, 6, dtype=np.float64)  # the record's own field order
    np.testing.assert_array_equal(x3, _reference(events, 6)[0])
    # one number per particle, and a dict of awkward fields
    xs, ms = hepnn.data.pad(rec.pt, 4, sort_by=0, dtype=np.float64)
    np.testing.assert_array_equal(xs, _reference([e[:, 0] for e in events], 4, 0)[0])
    xd, _ = hepnn.data.pad({"eta": rec.eta, "pt": rec.pt}, 6, dtype=np.float64)
    np.testing.assert_array_equal(xd, _reference([e[:, [1, 0]] for e in events], 6)[0])
    with pytest.raises(TypeError, match=r"\[pad\]"):
        hepnn.data.pad(ak.Array([[[1.0, 2.0], [3.0]]]), 6)  # ragged features per particle
    with pytest.raises(ValueError, match=r"\[pad\].*jagged"):
        hepnn.data.pad(ak.Array([1.0, 2.0]), 6)


def test_docstring_examples():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("hepnn.data.jagged"), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
