"""Callbacks for hepnn.fit: hooks called at the start/end of training, of each epoch and of
each batch. EarlyStopping (patience, min_delta, restore-best) and ModelCheckpoint live here.
Epochs are counted from 0, like the History's ``epoch`` list.
"""
from __future__ import annotations

import math
import os

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint"]


class Callback:
    """Base class: override the hooks you need. ``self.trainer`` is the running Trainer (its
    ``model``, ``optimizer``, ``history`` and ``stop_training`` flag); ``logs`` is the dict
    recorded in the History for that epoch (``loss``, ``val_loss``, ``lr``, ...).

    Example:
        >>> import hepnn
        >>> from hepnn.callbacks import Callback
        >>> class PrintLR(Callback):
        ...     def on_epoch_end(self, epoch, logs):
        ...         self.last = logs["lr"]
    """

    trainer = None

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    @property
    def model(self):
        return None if self.trainer is None else self.trainer.model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


def _improved(mode, value, best, min_delta):
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


def _check_monitor(owner, monitor, mode, logs):
    if monitor not in logs:
        hint = " (pass val= to fit, or monitor='loss')" if monitor.startswith("val_") else ""
        raise KeyError(f"[{owner}] monitored value {monitor!r} is not in the epoch logs "
                       f"{sorted(logs)}{hint}")
    return float(logs[monitor])


def _check_mode(owner, mode):
    if mode not in ("min", "max"):
        raise ValueError(f"[{owner}] mode must be 'min' or 'max', got {mode!r}")


def snapshot(model) -> dict:
    """A copy of the model's parameters and buffers (on their device), for load_state_dict."""
    from .tensor import Tensor

    out = {}
    for name, value in [*model.named_parameters(), *model.named_buffers()]:
        data = value.data if isinstance(value, Tensor) else value
        out[name] = data.copy() if hasattr(data, "copy") else data
    return out


class EarlyStopping(Callback):
    """Stop training when the monitored value (default the validation loss) has not improved by
    more than ``min_delta`` for ``patience`` epochs in a row.

    With ``restore_best_weights=True`` the model gets back the weights of its best epoch when
    training ends (stopped early or not). After training, ``best_epoch``, ``best`` and
    ``stopped_epoch`` (None when it ran to the end) say what happened.

    Example:
        >>> import numpy as np, hepnn
        >>> from hepnn.callbacks import EarlyStopping
        >>> from hepnn.train import fit
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(400, 2)).astype("float32"); y = (X[:, 0] > 0).astype("float32")
        >>> model = hepnn.nn.Linear(2, 1)
        >>> stop = EarlyStopping(patience=3, restore_best_weights=True)
        >>> hist = fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.Adam(model.parameters(), lr=0.05),
        ...            train=(X[:300], y[:300]), val=(X[300:], y[300:]), epochs=200, batch_size=64,
        ...            seed=1, callbacks=[stop], progress=False)
        >>> stop.best == min(hist.history["val_loss"])
        True
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "min", restore_best_weights: bool = False):
        name = "EarlyStopping"
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"[{name}] patience must be a non-negative integer, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"[{name}] min_delta must be a finite number >= 0, got {min_delta!r}")
        _check_mode(name, mode)
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, float(min_delta), mode
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        value = _check_monitor("EarlyStopping", self.monitor, self.mode, logs or {})
        if _improved(self.mode, value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = snapshot(self.trainer.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.trainer.model.load_state_dict(self.best_weights)


class ModelCheckpoint(Callback):
    """Save a checkpoint (hepnn.checkpoint.save: weights, optimizer state and the epoch's logs
    as metadata) after each epoch, or only when the monitored value improves
    (``save_best_only=True``, the default). ``path`` may contain ``{epoch}`` (counted from 0)
    and any log name, e.g. ``"ckpt-{epoch:03d}-{val_loss:.4f}.safetensors"``.

    Example:
        >>> import os, tempfile, numpy as np, hepnn
        >>> from hepnn.callbacks import ModelCheckpoint
        >>> from hepnn.train import fit
        >>> X = np.random.default_rng(0).normal(size=(64, 2)).astype("float32"); y = X[:, :1] * 2
        >>> model = hepnn.nn.Linear(2, 1); path = os.path.join(tempfile.mkdtemp(), "best.safetensors")
        >>> _ = fit(model, hepnn.nn.MSELoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
        ...         train=(X, y), val=(X, y), epochs=3, callbacks=[ModelCheckpoint(path)], progress=False)
        >>> os.path.exists(path)
        True
    """

    def __init__(self, path, monitor: str = "val_loss", mode: str = "min",
                 save_best_only: bool = True, save_optimizer: bool = True, scaler=None):
        _check_mode("ModelCheckpoint", mode)
        self.path, self.monitor, self.mode = os.fspath(path), monitor, mode
        self.save_best_only, self.save_optimizer, self.scaler = bool(save_best_only), bool(save_optimizer), scaler
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        from .checkpoint import save

        logs = dict(logs or {})
        if self.save_best_only:
            value = _check_monitor("ModelCheckpoint", self.monitor, self.mode, logs)
            if not _improved(self.mode, value, self.best, 0.0):
                return
            self.best, self.best_epoch = value, epoch
        path = self.path.format(epoch=epoch, **logs)
        save(path, self.trainer.model, optimizer=self.trainer.optimizer if self.save_optimizer else None,
             scaler=self.scaler, metadata={"epoch": epoch, **logs})
