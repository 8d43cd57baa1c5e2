"""Dataset: features, labels and optional per-event weights held as NumPy arrays of equal length,
indexed like torch's TensorDataset. Validation happens once here so the training loop need not.
"""
import numpy as np

from ._arrays import check_finite_columns, to_numpy


class Dataset:
    """Events as rows: ``features`` (N, ...) plus optional ``labels`` (N, ...) and ``weights`` (N,).

    Inputs may be NumPy arrays, hepnn Tensors or array-likes; they are kept as NumPy arrays on
    the host (no copy when already suitable). Integer or boolean features become float32;
    boolean labels become float32 (targets for BCE), other integer labels int64 (class indices
    for cross-entropy); weights take the features' float dtype. Negative weights are allowed
    (Monte-Carlo events can carry them); NaN or inf in features, labels or weights is refused
    with the column named.

    ``ds[i]`` gives the tuple ``(x, y[, w])`` of hepnn Tensors for row(s) ``i`` (an int, a
    slice, or an index array); without labels the tuple is ``(x[, w])``.

    Example:
        >>> import numpy as np, hepnn.data
        >>> ds = hepnn.data.Dataset(np.arange(6.0).reshape(3, 2), np.array([0.0, 1.0, 1.0]))
        >>> len(ds), ds[1][0].tolist(), ds[1][1].item()
        (3, [2.0, 3.0], 1.0)
    """

    def __init__(self, features, labels=None, weights=None):
        fn = "Dataset"
        x = to_numpy(fn, "features", features)
        if x.ndim == 0:
            raise ValueError(f"[{fn}] features must have at least one dimension (events first), "
                             "got a scalar")
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        check_finite_columns(fn, "features", x)
        n = len(x)
        y = None
        if labels is not None:
            y = to_numpy(fn, "labels", labels)
            if y.ndim == 0 or len(y) != n:
                raise ValueError(f"[{fn}] labels have {self._len_str(y)} rows but features have {n}")
            if y.dtype.kind == "b":
                y = y.astype(np.float32)
            elif y.dtype.kind in "iu":
                y = y.astype(np.int64, copy=False)
            check_finite_columns(fn, "labels", y)
        w = None
        if weights is not None:
            w = to_numpy(fn, "weights", weights)
            if w.ndim != 1 or len(w) != n:
                raise ValueError(f"[{fn}] weights must have shape ({n},) (one per event), "
                                 f"got {tuple(w.shape)}")
            w = w.astype(x.dtype, copy=False)
            check_finite_columns(fn, "weights", w)
        self.features, self.labels, self.weights = x, y, w

    @staticmethod
    def _len_str(a):
        return "no" if a.ndim == 0 else str(len(a))

    @property
    def arrays(self):
        """The arrays a batch is made of, in order: (features, labels, weights) without the Nones.

        Example:
            >>> import numpy as np, hepnn.data
            >>> len(hepnn.data.Dataset(np.ones((4, 2)), weights=np.ones(4)).arrays)
            2
        """
        return tuple(a for a in (self.features, self.labels, self.weights) if a is not None)

    def __len__(self):
        return len(self.features)

    def __getitem__(self, index):
        from ..tensor import Tensor

        if isinstance(index, tuple):
            raise TypeError("[Dataset] index rows with an int, a slice or a 1-D index array")
        return tuple(Tensor(a[index]) for a in self.arrays)

    def subset(self, indices):
        """A new Dataset holding the rows `indices` (e.g. from train_val_test_split or KFold).

        Example:
            >>> import numpy as np, hepnn.data
            >>> ds = hepnn.data.Dataset(np.arange(5.0), np.arange(5) % 2)
            >>> ds.subset(np.array([4, 0])).features.tolist()
            [4.0, 0.0]
        """
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iub" or idx.ndim != 1:
            raise TypeError(f"[Dataset.subset] indices must be a 1-D integer or boolean array, "
                            f"got dtype {idx.dtype} with shape {idx.shape}")
        if idx.dtype.kind != "b" and idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"[Dataset.subset] index out of range for {len(self)} events")
        out = Dataset.__new__(Dataset)
        out.features = self.features[idx]
        out.labels = None if self.labels is None else self.labels[idx]
        out.weights = None if self.weights is None else self.weights[idx]
        return out

    def __repr__(self):
        parts = [f"features={tuple(self.features.shape)} {self.features.dtype}"]
        if self.labels is not None:
            parts.append(f"labels={tuple(self.labels.shape)} {self.labels.dtype}")
        if self.weights is not None:
            parts.append(f"weights={tuple(self.weights.shape)}")
        return f"Dataset({len(self)} events: {', '.join(parts)})"
