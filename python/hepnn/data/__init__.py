"""hepnn.data: events as arrays (Dataset), mini-batches (DataLoader), seeded stratified splits
(train_val_test_split, KFold), feature scalers fitted on training data only, and pad() for
jagged particle sets.

Example:
    >>> import numpy as np, hepnn.data
    >>> X, y = np.random.default_rng(0).normal(size=(100, 3)), np.arange(100) % 2
    >>> Xtr, Xva, Xte, ytr, yva, yte = hepnn.data.train_val_test_split(X, y, stratify=y, seed=1)
    >>> scaler = hepnn.data.StandardScaler().fit(Xtr)
    >>> loader = hepnn.data.DataLoader(hepnn.data.Dataset(scaler.transform(Xtr), ytr),
    ...                                batch_size=16, shuffle=True, seed=0)
    >>> [tuple(t.shape) for t in next(iter(loader))]
    [(16, 3), (16,)]
"""
from .dataset import Dataset
from .jagged import pad
from .loader import DataLoader
from .scalers import MinMaxScaler, StandardScaler, load_scaler
from .split import KFold, split_indices, train_val_test_split

__all__ = ["Dataset", "DataLoader", "train_val_test_split", "split_indices", "KFold",
           "StandardScaler", "MinMaxScaler", "load_scaler", "pad"]
