"""Feature scalers fitted on training data only and saved with the model: StandardScaler
((x - mean) / std) and MinMaxScaler (to a range). State is a dict of NumPy arrays, so a
safetensors checkpoint can hold it; load_scaler rebuilds the right class from such a dict.
"""
import numpy as np

from ._arrays import check_finite_columns, to_numpy


class _Scaler:
    _keys = ()

    def __init__(self):
        self._state = None  # dict of float64 arrays once fitted

    @property
    def fitted(self):
        """True once fit (or load_state_dict) has run."""
        return self._state is not None

    @property
    def n_features(self):
        """Number of feature columns seen in fit, or None before fitting."""
        return None if self._state is None else len(self._state[self._keys[0]])

    def _input(self, fn, X, fitting=False):
        from ..tensor import Tensor

        is_tensor = isinstance(X, Tensor)
        arr = to_numpy(fn, "X", X)
        if arr.ndim != 2:
            raise ValueError(f"[{fn}] X must be 2-D (events, features), got shape {arr.shape}")
        if not fitting:
            if self._state is None:
                raise RuntimeError(f"[{fn}] this {type(self).__name__} is not fitted yet: call "
                                   "fit(X_train) (or load_state_dict) first")
            if arr.shape[1] != self.n_features:
                raise ValueError(f"[{fn}] X has {arr.shape[1]} features but the scaler was "
                                 f"fitted on {self.n_features}")
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float32)
        return arr, is_tensor

    @staticmethod
    def _output(out, is_tensor):
        if is_tensor:
            from ..tensor import Tensor

            return Tensor(out)
        return out

    def fit(self, X):
        """Learn the per-column statistics from training data `X` (events, features); returns self.

        Example:
            >>> import numpy as np, hepnn.data
            >>> hepnn.data.StandardScaler().fit(np.array([[1.0], [3.0]])).mean.tolist()
            [2.0]
        """
        fn = f"{type(self).__name__}.fit"
        arr, _ = self._input(fn, X, fitting=True)
        if len(arr) == 0:
            raise ValueError(f"[{fn}] X has no events")
        check_finite_columns(fn, "X", arr)
        self._state = self._fit(arr.astype(np.float64, copy=False))
        return self

    def transform(self, X):
        """Scale `X` with the fitted statistics (same type and float dtype as `X`; a CUDA Tensor
        comes back as a CPU Tensor).

        Example:
            >>> import numpy as np, hepnn.data
            >>> sc = hepnn.data.MinMaxScaler().fit(np.array([[0.0], [2.0]]))
            >>> sc.transform(np.array([[1.0], [4.0]])).ravel().tolist()
            [0.5, 2.0]
        """
        fn = f"{type(self).__name__}.transform"
        arr, is_tensor = self._input(fn, X)
        shift, scale = (v.astype(arr.dtype) for v in self._affine())
        return self._output((arr - shift) / scale, is_tensor)

    def inverse_transform(self, X):
        """Undo transform: map scaled values back to the original units.

        Example:
            >>> import numpy as np, hepnn.data
            >>> sc = hepnn.data.StandardScaler().fit(np.array([[1.0], [3.0]]))
            >>> sc.inverse_transform(np.array([[0.0], [1.0]])).ravel().tolist()
            [2.0, 3.0]
        """
        fn = f"{type(self).__name__}.inverse_transform"
        arr, is_tensor = self._input(fn, X)
        shift, scale = (v.astype(arr.dtype) for v in self._affine())
        return self._output(arr * scale + shift, is_tensor)

    def fit_transform(self, X):
        """fit(X) then transform(X).

        Example:
            >>> import numpy as np, hepnn.data
            >>> hepnn.data.StandardScaler().fit_transform(np.array([[1.0], [3.0]])).ravel().tolist()
            [-1.0, 1.0]
        """
        return self.fit(X).transform(X)

    def state_dict(self):
        """The fitted state as a dict of float64 NumPy arrays (copies), e.g. for a checkpoint.

        Example:
            >>> import numpy as np, hepnn.data
            >>> sorted(hepnn.data.StandardScaler().fit(np.ones((2, 3))).state_dict())
            ['mean', 'scale']
        """
        if self._state is None:
            raise RuntimeError(f"[{type(self).__name__}.state_dict] the scaler is not fitted yet")
        return {k: v.copy() for k, v in self._state.items()}

    def load_state_dict(self, state):
        """Restore a state from state_dict(); checks keys, shapes and values. Returns self.

        Example:
            >>> import numpy as np, hepnn.data
            >>> state = {"mean": np.array([1.0]), "scale": np.array([2.0])}
            >>> hepnn.data.StandardScaler().load_state_dict(state).transform(np.array([[5.0]])).item()
            2.0
        """
        fn = f"{type(self).__name__}.load_state_dict"
        if set(state) != set(self._keys):
            raise ValueError(f"[{fn}] expected keys {sorted(self._keys)}, got {sorted(state)}")
        loaded = {}
        for k in self._keys:
            v = np.array(to_numpy(fn, k, state[k]), dtype=np.float64)
            if not np.isfinite(v).all():
                raise ValueError(f"[{fn}] {k} holds NaN or inf")
            loaded[k] = v
        self._validate_state(fn, loaded)
        self._state = loaded
        return self

    def __repr__(self):
        fitted = f"{self.n_features} features" if self.fitted else "not fitted"
        return f"{type(self).__name__}({fitted})"


class StandardScaler(_Scaler):
    """Standardise each column to zero mean and unit variance (population std, as scikit-learn).

    Constant columns get scale 1 (they become 0 instead of NaN). Fit on the training set only;
    apply the same transform to validation, test and inference data.

    Example:
        >>> import numpy as np, hepnn.data
        >>> sc = hepnn.data.StandardScaler().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> sc.transform(np.array([[2.0, 5.0], [5.0, 6.0]])).tolist()
        [[0.0, 0.0], [3.0, 1.0]]
    """

    _keys = ("mean", "scale")

    def _fit(self, arr):
        mean = arr.mean(axis=0)
        std = arr.std(axis=0)
        # NOTE: relative threshold: a column constant up to rounding must not blow up to 1e16.
        const = std <= 1e-12 * np.maximum(np.abs(mean), 1.0)
        return {"mean": mean, "scale": np.where(const, 1.0, std)}

    def _affine(self):
        return self._state["mean"], self._state["scale"]

    def _validate_state(self, fn, s):
        if s["mean"].ndim != 1 or s["scale"].shape != s["mean"].shape:
            raise ValueError(f"[{fn}] mean and scale must be 1-D of one length, got "
                             f"{s['mean'].shape} and {s['scale'].shape}")
        if (s["scale"] <= 0).any():
            raise ValueError(f"[{fn}] scale must be positive")

    @property
    def mean(self):
        """Per-column mean from fit."""
        return None if self._state is None else self._state["mean"]

    @property
    def scale(self):
        """Per-column standard deviation from fit (1 for constant columns)."""
        return None if self._state is None else self._state["scale"]


class MinMaxScaler(_Scaler):
    """Map each column linearly so that the training minimum and maximum go to ``feature_range``.

    Constant columns are shifted to the lower end of the range. Values outside the training
    range map outside ``feature_range`` (no clipping).

    Example:
        >>> import numpy as np, hepnn.data
        >>> sc = hepnn.data.MinMaxScaler().fit(np.array([[0.0, 10.0], [4.0, 20.0]]))
        >>> sc.transform(np.array([[1.0, 15.0]])).tolist()
        [[0.25, 0.5]]
    """

    _keys = ("data_min", "data_max", "feature_range")

    def __init__(self, feature_range=(0.0, 1.0)):
        super().__init__()
        lo, hi = (float(v) for v in feature_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"[MinMaxScaler] feature_range must be finite with min < max, "
                             f"got {feature_range}")
        self.feature_range = (lo, hi)

    @property
    def n_features(self):
        return None if self._state is None else len(self._state["data_min"])

    def _fit(self, arr):
        return {"data_min": arr.min(axis=0), "data_max": arr.max(axis=0),
                "feature_range": np.array(self.feature_range, dtype=np.float64)}

    def _affine(self):
        lo, hi = self._state["feature_range"]
        dmin, dmax = self._state["data_min"], self._state["data_max"]
        span = dmax - dmin
        span = np.where(span <= 1e-12 * np.maximum(np.abs(dmax), 1.0), 1.0, span)
        scale = span / (hi - lo)  # x_scaled = (x - shift) / scale
        return dmin - lo * scale, scale

    def _validate_state(self, fn, s):
        if s["data_min"].ndim != 1 or s["data_max"].shape != s["data_min"].shape:
            raise ValueError(f"[{fn}] data_min and data_max must be 1-D of one length")
        if (s["data_max"] < s["data_min"]).any():
            raise ValueError(f"[{fn}] data_max is below data_min")
        if s["feature_range"].shape != (2,) or not s["feature_range"][0] < s["feature_range"][1]:
            raise ValueError(f"[{fn}] feature_range must be 2 values with min < max")
        self.feature_range = tuple(float(v) for v in s["feature_range"])


def load_scaler(state):
    """A fitted StandardScaler or MinMaxScaler from a state_dict(), chosen by its keys.

    Example:
        >>> import numpy as np, hepnn.data
        >>> sc = hepnn.data.StandardScaler().fit(np.array([[1.0], [3.0]]))
        >>> type(hepnn.data.load_scaler(sc.state_dict())).__name__
        'StandardScaler'
    """
    for cls in (StandardScaler, MinMaxScaler):
        if set(state) == set(cls._keys):
            return cls().load_state_dict(state)
    raise ValueError(f"[load_scaler] keys {sorted(state)} match no scaler: StandardScaler has "
                     f"{sorted(StandardScaler._keys)}, MinMaxScaler {sorted(MinMaxScaler._keys)}")
