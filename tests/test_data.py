"""hepnn.data: Dataset validation, DataLoader coverage/reproducibility/copies, stratified splits,
KFold, and scalers fitted on training data only (cross-checked against scikit-learn)."""
import numpy as np
import pytest

import hepnn
from hepnn.data import (DataLoader, Dataset, KFold, MinMaxScaler, StandardScaler, load_scaler,
                        split_indices, train_val_test_split)


def _events(n, f=3, seed=0, signal_frac=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f)) * rng.uniform(0.5, 20, size=f) + rng.uniform(-50, 50, size=f)
    y = (rng.random(n) < signal_frac).astype(np.int64)
    w = rng.exponential(size=n) * np.where(rng.random(n) < 0.1, -1.0, 1.0)
    return X, y, w


# ---- Dataset ----

def test_dataset_keeps_arrays_and_indexes_like_tensordataset():
    X, y, w = _events(33)
    ds = Dataset(X, y, w)
    assert len(ds) == 33 and ds.features is X  # no copy for float input
    x5, y5, w5 = ds[5]
    assert isinstance(x5, hepnn.Tensor)
    np.testing.assert_array_equal(x5.numpy(), X[5])
    assert y5.item() == y[5] and w5.item() == w[5]
    xb, yb, wb = ds[np.array([7, 1, 7])]
    np.testing.assert_array_equal(xb.numpy(), X[[7, 1, 7]])
    np.testing.assert_array_equal(ds[2:9][1].numpy(), y[2:9])


def test_dataset_converts_dtypes_and_tensors():
    ds = Dataset(hepnn.tensor([[1, 2], [3, 4], [5, 6]]), np.array([True, False, True]))
    assert ds.features.dtype == np.float32 and ds.labels.dtype == np.float32
    ds = Dataset(np.ones((3, 2)), np.array([0, 2, 1], dtype=np.int32), np.array([1, 2, 3]))
    assert ds.labels.dtype == np.int64 and ds.weights.dtype == np.float64
    assert len(ds.arrays) == 3
    assert len(Dataset(np.ones((4, 2))).arrays) == 1


def test_dataset_rejects_bad_input():
    X, y, w = _events(7)
    with pytest.raises(ValueError, match=r"\[Dataset\] labels have 6 rows but features have 7"):
        Dataset(X, y[:6])
    with pytest.raises(ValueError, match=r"weights must have shape \(7,\)"):
        Dataset(X, y, w[:, None])
    X[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"column 2 \(first at row 4: NaN\)"):
        Dataset(X, y)
    X[4, 2] = 0.0
    X[1, 0] = -np.inf
    with pytest.raises(ValueError, match="column 0"):
        Dataset(X, y)
    with pytest.raises(ValueError, match="NaN"):
        Dataset(np.ones((3, 1)), np.array([0.0, np.nan, 1.0]))
    with pytest.raises(TypeError, match="numbers"):
        Dataset(np.array([["a"], ["b"]]))


def test_subset():
    X, y, w = _events(10)
    sub = Dataset(X, y, w).subset(np.array([9, 0, 3]))
    np.testing.assert_array_equal(sub.features, X[[9, 0, 3]])
    np.testing.assert_array_equal(sub.weights, w[[9, 0, 3]])
    with pytest.raises(IndexError):
        Dataset(X, y).subset(np.array([10]))


# ---- DataLoader ----

@pytest.mark.parametrize("n,bs", [(1, 1), (7, 3), (33, 8), (257, 32), (64, 64)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_covers_every_event_once_per_epoch(n, bs, shuffle):
    ids = np.arange(n, dtype=np.float64)
    loader = DataLoader(Dataset(ids[:, None], ids.astype(np.int64), -ids), batch_size=bs,
                        shuffle=shuffle, seed=3)
    assert len(loader) == -(-n // bs)
    for _ in range(2):
        seen = []
        for xb, yb, wb in loader:
            assert len(xb) <= bs and xb.shape[1:] == (1,)
            np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy())  # rows stay aligned
            np.testing.assert_array_equal(wb.numpy(), -yb.numpy())
            seen.append(yb.numpy())
        seen = np.concatenate(seen)
        assert len(seen) == n and sorted(seen.tolist()) == list(range(n))
        if not shuffle:
            np.testing.assert_array_equal(seen, np.arange(n))


def _order(loader):
    return np.concatenate([b[1].numpy() for b in loader])


def test_loader_seed_reproducible_and_epochs_differ():
    y = np.arange(101)
    ds = Dataset(np.zeros((101, 2)), y)
    a, b = DataLoader(ds, 10, shuffle=True, seed=7), DataLoader(ds, 10, shuffle=True, seed=7)
    e0a, e1a = _order(a), _order(a)
    e0b, e1b = _order(b), _order(b)
    np.testing.assert_array_equal(e0a, e0b)
    np.testing.assert_array_equal(e1a, e1b)
    assert not np.array_equal(e0a, e1a)
    assert not np.array_equal(e0a, _order(DataLoader(ds, 10, shuffle=True, seed=8)))
    a.set_epoch(1)
    np.testing.assert_array_equal(_order(a), e1a)  # resuming at epoch 1 repeats its order


def test_loader_without_seed_follows_manual_seed():
    ds = Dataset(np.zeros((50, 1)), np.arange(50))
    hepnn.manual_seed(11)
    first = _order(DataLoader(ds, 8, shuffle=True))
    hepnn.manual_seed(11)
    np.testing.assert_array_equal(first, _order(DataLoader(ds, 8, shuffle=True)))
    assert not np.array_equal(first, np.arange(50))


def test_loader_drop_last():
    ds = Dataset(np.zeros((23, 1)), np.arange(23))
    loader = DataLoader(ds, 5, shuffle=True, seed=0, drop_last=True)
    sizes = [len(b[0]) for b in loader]
    assert len(loader) == 4 and sizes == [5, 5, 5, 5]
    assert len(np.unique(_order(loader))) == 20
    assert len(DataLoader(ds, 30, drop_last=True)) == 0 and list(DataLoader(ds, 30, drop_last=True)) == []
    assert [len(b[0]) for b in DataLoader(ds, 5)] == [5, 5, 5, 5, 3]


def test_loader_copies_at_most_once():
    X, y, _ = _events(40)
    ds = Dataset(X, y)
    xb, yb = next(iter(DataLoader(ds, 16)))
    assert np.shares_memory(xb.numpy(), X)  # unshuffled batches are views
    xb, yb = next(iter(DataLoader(ds, 16, shuffle=True, seed=1)))
    assert not np.shares_memory(xb.numpy(), X) and xb.numpy().flags.c_contiguous


def test_loader_wraps_arrays_and_rejects_bad_arguments():
    assert [tuple(b[0].shape) for b in DataLoader(np.ones((5, 2)), 2)] == [(2, 2), (2, 2), (1, 2)]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"\[DataLoader\] batch_size"):
            DataLoader(np.ones((5, 2)), bad)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(np.ones((5, 2)), 2, seed=-1)


# ---- splits ----

@pytest.mark.parametrize("n,frac", [(1000, 0.3), (257, 0.5), (33, 0.1), (10001, 0.02)])
def test_stratified_split_keeps_class_fractions(n, frac):
    X, y, w = _events(n, signal_frac=frac, seed=n)
    parts = train_val_test_split(X, y, w, val_size=0.15, test_size=0.25, stratify=y, seed=5)
    Xtr, Xva, Xte, ytr, yva, yte, wtr, wva, wte = parts
    assert len(ytr) + len(yva) + len(yte) == n
    assert len(yte) == round(0.25 * n) and len(yva) == round(0.15 * n)
    n_sig = y.sum()
    for part, size in ((yte, 0.25), (yva, 0.15)):
        assert abs(part.sum() - size * n_sig) <= 1  # each class split exactly up to rounding
    # Rows stay aligned across the arrays, and together the parts are a partition.
    rows = {tuple(r) for r in X.round(12)}
    got = np.concatenate([Xtr, Xva, Xte]).round(12)
    assert {tuple(r) for r in got} == rows and len(got) == n
    idx = {tuple(r): i for i, r in enumerate(X.round(12))}
    for Xp, yp, wp in ((Xtr, ytr, wtr), (Xva, yva, wva), (Xte, yte, wte)):
        i = np.array([idx[tuple(r)] for r in Xp.round(12)])
        np.testing.assert_array_equal(yp, y[i])
        np.testing.assert_array_equal(wp, w[i])


def test_split_multiclass_and_reproducible():
    y = np.repeat([0, 1, 2], [500, 300, 201])
    tr, va, te = split_indices(len(y), val_size=0.2, test_size=0.2, stratify=y, seed=1)
    for c, nc in ((0, 500), (1, 300), (2, 201)):
        for part in (va, te):
            assert abs((y[part] == c).sum() - 0.2 * nc) <= 1
    assert len(np.unique(np.concatenate([tr, va, te]))) == len(y)
    again = split_indices(len(y), val_size=0.2, test_size=0.2, stratify=y, seed=1)
    for p, q in zip((tr, va, te), again):
        np.testing.assert_array_equal(p, q)
    other = split_indices(len(y), val_size=0.2, test_size=0.2, stratify=y, seed=2)
    assert not np.array_equal(te, other[2])
    # Shuffled within the part, not class-sorted.
    assert not (np.diff(y[tr]) >= 0).all()


def test_split_counts_tensors_datasets_and_errors():
    X, y, _ = _events(50)
    tr, va, te = train_val_test_split(Dataset(X, y), val_size=5, test_size=10, stratify=y, seed=0)
    assert (len(tr), len(va), len(te)) == (35, 5, 10) and isinstance(tr, Dataset)
    a, b, c = train_val_test_split(hepnn.tensor(X), val_size=0.0, test_size=0.5, seed=0)
    assert isinstance(a, hepnn.Tensor) and (len(a), len(b), len(c)) == (25, 0, 25)
    with pytest.raises(ValueError, match="different lengths"):
        train_val_test_split(X, y[:-1])
    with pytest.raises(ValueError, match="leave no training events"):
        train_val_test_split(X, val_size=0.5, test_size=0.5)
    with pytest.raises(ValueError, match=r"test_size as a fraction must be in \[0, 1\)"):
        train_val_test_split(X, test_size=1.5)
    with pytest.raises(ValueError, match="stratify must be 1-D"):
        train_val_test_split(X, stratify=y[:10])


# ---- KFold ----

@pytest.mark.parametrize("n,k", [(10, 2), (257, 5), (1000, 7)])
@pytest.mark.parametrize("stratified", [True, False])
def test_kfold_partitions_and_balances(n, k, stratified):
    _, y, _ = _events(n, signal_frac=0.27, seed=k)
    folds = list(KFold(k, shuffle=True, seed=4, stratified=stratified).split(np.zeros(n), y))
    assert len(folds) == k
    val_all = np.concatenate([va for _, va in folds])
    np.testing.assert_array_equal(np.sort(val_all), np.arange(n))  # each event validated once
    for tr, va in folds:
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == n
    sizes = [len(va) for _, va in folds]
    assert max(sizes) - min(sizes) <= 1
    if stratified:
        sig = [int(y[va].sum()) for _, va in folds]
        assert max(sig) - min(sig) <= 1


def test_kfold_reproducible_and_errors():
    y = np.arange(40) % 3
    a = [va for _, va in KFold(4, seed=1).split(y, y)]
    b = [va for _, va in KFold(4, seed=1).split(Dataset(np.zeros((40, 1)), y))]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    unshuffled = [va for _, va in KFold(4, shuffle=False, stratified=False).split(12)]
    np.testing.assert_array_equal(unshuffled[0], [0, 4, 8])
    with pytest.raises(ValueError, match="needs labels"):
        next(KFold(3).split(np.zeros(10)))
    with pytest.raises(ValueError, match="exceeds the number of events"):
        next(KFold(11, stratified=False).split(10))
    with pytest.raises(ValueError, match="n_splits"):
        KFold(1)
    with pytest.warns(UserWarning, match="smallest class"):
        list(KFold(3, seed=0).split(6, np.array([0, 0, 0, 0, 1, 1])))


# ---- scalers ----

def test_standard_scaler_uses_training_statistics_only():
    X, _, _ = _events(401, f=5)
    train, test = X[:300], X[300:] * 3.0 + 7.0  # the test set is deliberately shifted
    sc = StandardScaler().fit(train)
    expected = (test - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(sc.transform(test), expected, rtol=1e-12, atol=1e-12)
    assert abs(sc.transform(test).mean()) > 1.0  # not re-standardised on the test set
    np.testing.assert_allclose(sc.fit_transform(train).mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(test)), test, rtol=1e-12)


def test_scalers_match_sklearn():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X, _, _ = _events(257, f=4, seed=9)
    X[:, 2] = 4.2  # constant column
    tr, te = X[:200], X[200:]
    ours, ref = StandardScaler().fit(tr), preprocessing.StandardScaler().fit(tr)
    np.testing.assert_allclose(ours.transform(te), ref.transform(te), rtol=1e-12, atol=1e-12)
    ours, ref = MinMaxScaler((-1, 1)).fit(tr), preprocessing.MinMaxScaler((-1, 1)).fit(tr)
    np.testing.assert_allclose(ours.transform(te), ref.transform(te), rtol=1e-12, atol=1e-12)


def test_constant_columns_and_dtypes():
    X = np.array([[1.0, 3.0], [2.0, 3.0], [4.0, 3.0]], dtype=np.float32)
    for sc in (StandardScaler(), MinMaxScaler()):
        out = sc.fit_transform(X)
        assert out.dtype == np.float32 and np.isfinite(out).all()
        np.testing.assert_array_equal(out[:, 1], 0.0)
        t = sc.transform(hepnn.tensor(X))
        assert isinstance(t, hepnn.Tensor)
        np.testing.assert_array_equal(t.numpy(), out)
    mm = MinMaxScaler((2.0, 4.0)).fit(X)
    np.testing.assert_allclose(mm.transform(X)[:, 0], [2.0, 2.0 + 2 / 3, 4.0], rtol=1e-6)


def test_scaler_errors():
    for sc in (StandardScaler(), MinMaxScaler()):
        with pytest.raises(RuntimeError, match="not fitted yet"):
            sc.transform(np.ones((2, 3)))
        sc.fit(np.random.default_rng(0).normal(size=(10, 3)))
        with pytest.raises(ValueError, match="X has 4 features but the scaler was fitted on 3"):
            sc.transform(np.ones((2, 4)))
        with pytest.raises(ValueError, match="2-D"):
            sc.transform(np.ones(3))
    bad = np.ones((5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"StandardScaler.fit\] X has 1 non-finite value\(s\) in column 1"):
        StandardScaler().fit(bad)
    with pytest.raises(ValueError, match="feature_range"):
        MinMaxScaler((1, 1))


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_scaler_state_dict_round_trip(cls):
    X, _, _ = _events(50, f=3)
    sc = cls().fit(X[:30]) if cls is StandardScaler else cls((-2, 3)).fit(X[:30])
    state = sc.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state_copy = {k: v.copy() for k, v in state.items()}
    fresh = cls().load_state_dict(state_copy)
    np.testing.assert_array_equal(fresh.transform(X[30:]), sc.transform(X[30:]))
    np.testing.assert_array_equal(load_scaler(state).transform(X[30:]), sc.transform(X[30:]))
    state_copy[next(iter(state_copy))][0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        cls().load_state_dict(state_copy)
    with pytest.raises(ValueError, match="expected keys"):
        cls().load_state_dict({"mean": np.zeros(3)})
    with pytest.raises(ValueError, match="match no scaler"):
        load_scaler({"foo": np.zeros(3)})


@pytest.mark.parametrize("module", ["hepnn.data", "hepnn.data.dataset", "hepnn.data.loader",
                                    "hepnn.data.split", "hepnn.data.scalers"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
