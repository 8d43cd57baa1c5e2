"""Seeded, optionally stratified splits: train_val_test_split for one hold-out split and KFold for
cross-validation. Stratified means each class is split in the requested proportions, exactly up
to rounding (class quotas by the largest-remainder rule).
"""
import warnings

import numpy as np

from ._arrays import to_numpy
from .dataset import Dataset


def _count(fn, name, size, n):
    """A fraction in [0, 1) or an event count -> a count."""
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise TypeError(f"[{fn}] {name} must be a fraction or an event count, got {size!r}")
    if isinstance(size, (float, np.floating)):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"[{fn}] {name} as a fraction must be in [0, 1), got {size}")
        return int(round(size * n))
    if not 0 <= size <= n:
        raise ValueError(f"[{fn}] {name} as a count must be in [0, {n}], got {size}")
    return int(size)


def _quotas(total, class_sizes, rng):
    """Split `total` over classes proportionally to class_sizes; the rounding remainder goes to
    the largest fractional parts (ties broken at random), never exceeding a class's size."""
    sizes = np.asarray(class_sizes, dtype=np.int64)
    n = sizes.sum()
    ideal = total * sizes / n
    q = np.minimum(np.floor(ideal).astype(np.int64), sizes)
    left = total - q.sum()
    if left > 0:
        frac = ideal - q
        order = np.lexsort((rng.random(len(sizes)), -frac))
        for c in order:
            if left == 0:
                break
            if q[c] < sizes[c]:
                q[c] += 1
                left -= 1
    return q


def _labels_1d(fn, stratify, n):
    y = to_numpy(fn, "stratify", stratify)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"[{fn}] stratify must be 1-D with one label per event ({n}), "
                         f"got shape {y.shape}")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"[{fn}] stratify labels contain NaN")
    return y


def split_indices(n, val_size=0.2, test_size=0.2, stratify=None, seed=None):
    """Index arrays (train, val, test) for `n` events; the arguments are train_val_test_split's.

    Example:
        >>> import hepnn.data
        >>> tr, va, te = hepnn.data.split_indices(10, val_size=0.2, test_size=0.3, seed=0)
        >>> len(tr), len(va), len(te)
        (5, 2, 3)
    """
    fn = "train_val_test_split"
    n_test = _count(fn, "test_size", test_size, n)
    n_val = _count(fn, "val_size", val_size, n)
    if n_test + n_val >= n:
        raise ValueError(f"[{fn}] val_size + test_size leave no training events "
                         f"({n_val} + {n_test} of {n})")
    rng = np.random.default_rng(seed)
    if stratify is None:
        perm = rng.permutation(n)
        return perm[n_val + n_test:], perm[n_test:n_test + n_val], perm[:n_test]
    y = _labels_1d(fn, stratify, n)
    classes, inverse = np.unique(y, return_inverse=True)
    members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    sizes = [len(m) for m in members]
    q_test = _quotas(n_test, sizes, rng)
    q_val = _quotas(n_val, sizes, rng)
    # Over-allocation (val + test > class size) can only come from rounding on tiny classes.
    q_val = np.minimum(q_val, np.asarray(sizes) - q_test)
    parts = ([], [], [])
    for m, t, v in zip(members, q_test, q_val):
        m = rng.permutation(m)
        parts[2].append(m[:t])
        parts[1].append(m[t:t + v])
        parts[0].append(m[t + v:])
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def train_val_test_split(*arrays, val_size=0.2, test_size=0.2, stratify=None, seed=None):
    """Split arrays (or Datasets) of equal length into train, validation and test parts.

    Sizes are fractions in [0, 1) (rounded to the nearest event count) or event counts.
    ``stratify=labels`` keeps each class's fraction equal in the three parts up to rounding.
    Returns ``[a_train, a_val, a_test, b_train, b_val, b_test, ...]``; NumPy arrays give NumPy
    arrays, Tensors give Tensors, Datasets give Datasets. Same seed, same split.

    Example:
        >>> import numpy as np, hepnn.data
        >>> X, y = np.arange(20.0).reshape(10, 2), np.array([0] * 6 + [1] * 4)
        >>> Xtr, Xva, Xte, ytr, yva, yte = hepnn.data.train_val_test_split(
        ...     X, y, val_size=0.2, test_size=0.2, stratify=y, seed=0)
        >>> len(ytr), int(ytr.sum()), len(yte), int(yte.sum())
        (6, 2, 2, 1)
    """
    fn = "train_val_test_split"
    if not arrays:
        raise ValueError(f"[{fn}] give at least one array to split")
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"[{fn}] arrays have different lengths: {[len(a) for a in arrays]}")
    n = lengths.pop()
    if n < 2:
        raise ValueError(f"[{fn}] need at least 2 events to split, got {n}")
    if isinstance(stratify, Dataset):
        stratify = stratify.labels
    parts = split_indices(n, val_size, test_size, stratify, seed)
    out = []
    for a in arrays:
        out.extend(_take(a, p) for p in parts)
    return out


def _take(a, idx):
    from ..tensor import Tensor

    if isinstance(a, Dataset):
        return a.subset(idx)
    if isinstance(a, Tensor):
        return Tensor(a.data[idx])
    return np.asarray(a)[idx]


class KFold:
    """K-fold cross-validation indices, stratified by label by default.

    ``split(X, y=None)`` yields ``(train_idx, val_idx)`` n_splits times; each event is in exactly
    one validation fold; fold sizes differ by at most one, and (stratified) so do the per-class
    counts. ``X`` may be an array, a Tensor, a Dataset (its labels are used) or an event count.

    Example:
        >>> import numpy as np, hepnn.data
        >>> y = np.array([0, 0, 0, 0, 1, 1])
        >>> [int(y[va].sum()) for _, va in hepnn.data.KFold(2, seed=0).split(y, y)]
        [1, 1]
    """

    def __init__(self, n_splits=5, shuffle=True, seed=None, stratified=True):
        if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
            raise ValueError(f"[KFold] n_splits must be an integer >= 2, got {n_splits!r}")
        self.n_splits = int(n_splits)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.stratified = bool(stratified)

    def get_n_splits(self):
        """The number of folds.

        Example:
            >>> import hepnn.data
            >>> hepnn.data.KFold(4).get_n_splits()
            4
        """
        return self.n_splits

    def split(self, X, y=None):
        """Yield (train_idx, val_idx) int64 arrays for each fold (see the class docstring).

        Example:
            >>> import hepnn.data
            >>> [len(va) for _, va in hepnn.data.KFold(3, stratified=False, seed=0).split(10)]
            [4, 3, 3]
        """
        fn = "KFold"
        if isinstance(X, Dataset):
            y = X.labels if y is None else y
            n = len(X)
        elif isinstance(X, (int, np.integer)) and not isinstance(X, bool):
            n = int(X)
        else:
            n = len(X)
        if self.n_splits > n:
            raise ValueError(f"[{fn}] n_splits={self.n_splits} exceeds the number of events {n}")
        rng = np.random.default_rng(self.seed)
        if self.stratified:
            if y is None:
                raise ValueError(f"[{fn}] stratified=True needs labels: call split(X, y) or "
                                 "pass stratified=False")
            labels = _labels_1d(fn, y, n)
            classes, inverse = np.unique(labels, return_inverse=True)
            counts = np.bincount(inverse)
            if counts.min() < self.n_splits:
                warnings.warn(f"[KFold] the smallest class has {counts.min()} events, fewer than "
                              f"n_splits={self.n_splits}: some folds will lack it", stacklevel=2)
            groups = []
            for c in range(len(classes)):
                m = np.flatnonzero(inverse == c)
                groups.append(rng.permutation(m) if self.shuffle else m)
            # Dealing classes one after another round-robin keeps every class and every fold
            # balanced to within one event.
            order = np.concatenate(groups)
        else:
            order = rng.permutation(n) if self.shuffle else np.arange(n)
        fold = np.empty(n, dtype=np.int64)
        fold[order] = np.arange(n) % self.n_splits
        for k in range(self.n_splits):
            yield np.flatnonzero(fold != k), np.flatnonzero(fold == k)
