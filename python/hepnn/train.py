"""The training loop: hepnn.fit(model, loss_fn, optimizer, train=(X, y[, w]), val=...) runs
mini-batch epochs with event weights, an event-weighted validation loss, callbacks (early
stopping, checkpoints), learning-rate schedules and a progress bar, and returns a History.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from . import random as _random
from .autograd import no_grad
from .tensor import Tensor
from ._train_data import as_source

__all__ = ["fit", "evaluate", "Trainer", "History"]


class History:
    """What fit() recorded: ``history`` maps each log name (``loss``, ``val_loss``, ``lr``,
    ``time``, ``samples_per_s``, ``val_<metric>``) to one value per epoch; ``epoch`` lists the
    epochs run (counted from 0); ``params`` holds fit's settings. ``history["loss"]`` also works.

    Example:
        >>> from hepnn.train import History
        >>> h = History(); h.record(0, {"loss": 0.7}); h.record(1, {"loss": 0.5})
        >>> h["loss"], h.epoch
        ([0.7, 0.5], [0, 1])
    """

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.params: dict = {}

    def record(self, epoch: int, logs: dict) -> None:
        self.epoch.append(int(epoch))
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items()}
        return f"History({len(self.epoch)} epochs, last={last})"


def _place(model):
    for p in model.parameters():
        return p.device, p.dtype
    raise ValueError("[fit] the model has no parameters to train")


def _match_target(pred, y):
    """A (B,) target for a (B, 1) output is reshaped to (B, 1) (the usual binary classifier)."""
    pd, yd = pred.data, y.data
    if pd.ndim == yd.ndim + 1 and pd.shape[-1] == 1 and pd.shape[:-1] == yd.shape:
        return Tensor(yd.reshape(pd.shape))
    return y


def _check_loss_fn(loss_fn):
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction != "mean":
        raise ValueError(f"[fit] loss_fn.reduction must be 'mean' (fit weights each batch's loss by "
                         f"its number of events or sum of event weights), got {reduction!r}")


def _loss_value(loss_fn, pred, y, w):
    loss = loss_fn(pred, y) if w is None else loss_fn(pred, y, event_weight=w)
    if not isinstance(loss, Tensor):
        raise TypeError(f"[fit] loss_fn must return a hepnn Tensor, got {type(loss).__name__}")
    return loss, float(loss.item())


def _diverged(what, value, epoch, epochs, batch, n_batches, wsum, weighted):
    where = f"epoch {epoch + 1}/{epochs}, batch {batch + 1}" + (f"/{n_batches}" if n_batches else "")
    extra = f" (sum of event weights in this batch: {wsum:g})" if weighted else ""
    return RuntimeError(f"[fit] {what} is {value} at {where}{extra}: training diverged. Lower the "
                        "learning rate, check the inputs and weights for NaN/inf, or standardise the features.")


def evaluate(model, loss_fn, data, batch_size: int = 4096) -> float:
    """The event-weighted mean loss over a whole data set, sum(w * l) / sum(w), computed in
    eval mode under no_grad in batches (not a mean of batch means). `data` is ``(X, y[, w])``
    or an iterable of such batches.

    Example:
        >>> import numpy as np, hepnn
        >>> from hepnn.train import evaluate
        >>> model = hepnn.nn.Linear(2, 1)
        >>> X = np.ones((5, 2), "float32"); y = np.zeros((5, 1), "float32")
        >>> round(evaluate(model, hepnn.nn.MSELoss(), (X, y), batch_size=2), 6) == round(
        ...     float(((model(hepnn.tensor(X)).numpy()) ** 2).mean()), 6)
        True
    """
    return Trainer(model, loss_fn, None, progress=False).evaluate(data, batch_size=batch_size)


class Trainer:
    """The state of a training run: fit() is ``Trainer(model, loss_fn, optimizer, ...).fit(...)``.
    Callbacks see it as ``self.trainer`` and may set ``stop_training = True``.

    Example:
        >>> import numpy as np, hepnn
        >>> from hepnn.train import Trainer
        >>> X = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
        >>> y = (X.sum(axis=1) > 0).astype("float32")
        >>> model = hepnn.nn.Sequential(hepnn.nn.Linear(4, 16), hepnn.nn.ReLU(), hepnn.nn.Linear(16, 1))
        >>> trainer = Trainer(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.Adam(model.parameters(), lr=1e-2),
        ...                   progress=False)
        >>> hist = trainer.fit((X, y), epochs=5, batch_size=64, seed=0)
        >>> hist["loss"][-1] < hist["loss"][0]
        True
    """

    def __init__(self, model, loss_fn, optimizer, callbacks=(), scheduler=None, progress="auto",
                 metrics=None):
        if progress not in ("auto", True, False):
            raise ValueError(f"[fit] progress must be 'auto', True or False, got {progress!r}")
        if metrics is not None and not (isinstance(metrics, dict) and all(callable(f) for f in metrics.values())):
            raise TypeError("[fit] metrics must be a dict {name: fn(y_true, y_pred[, sample_weight=w])}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.callbacks = list(callbacks or ())
        self.schedulers = [] if scheduler is None else list(scheduler) if isinstance(scheduler, (list, tuple)) else [scheduler]
        self.progress, self.metrics = progress, dict(metrics or {})
        self.history = History()
        self.stop_training = False
        self.epoch = None

    # ---- evaluation -------------------------------------------------------------------------
    def evaluate(self, data, batch_size: int = 4096, return_outputs: bool = False):
        """Event-weighted mean loss over `data` (eval mode, no_grad, batched); with
        return_outputs also (y_true, y_pred, weights) as host arrays."""
        _check_loss_fn(self.loss_fn)
        device, dtype = _place(self.model)
        source = as_source("evaluate", "data", data, device, dtype)
        return self._evaluate(source, batch_size, return_outputs, epoch=None, epochs=None)

    def _evaluate(self, source, batch_size, return_outputs, epoch, epochs):
        modes = [(m, m.training) for m in self.model.modules()]
        total, wtotal, outs = 0.0, 0.0, ([], [], [])
        try:
            self.model.eval()
            with no_grad():
                for b, (x, y, w, wsum) in enumerate(source.batches(batch_size, None)):
                    pred = self.model(x)
                    target = _match_target(pred, y)
                    _, value = _loss_value(self.loss_fn, pred, target, w)
                    if not math.isfinite(value):
                        if epoch is None:
                            raise RuntimeError(f"[evaluate] the loss is {value} in batch {b + 1}")
                        raise _diverged("the validation loss", value, epoch, epochs, b, None, wsum, w is not None)
                    total += value * wsum
                    wtotal += wsum
                    if return_outputs:
                        outs[0].append(y._host())
                        outs[1].append(pred._host())
                        outs[2].append(None if w is None else w._host())
        finally:
            for m, mode in modes:
                m.training = mode
        loss = total / wtotal if wtotal != 0 else float("nan")
        if not return_outputs:
            return loss
        w_all = None if not outs[2] or outs[2][0] is None else np.concatenate(outs[2])
        return loss, np.concatenate(outs[0]), np.concatenate(outs[1]), w_all

    def _metric_logs(self, y_true, y_pred, w):
        if y_pred.ndim == 2 and y_pred.shape[1] == 1:
            y_pred = y_pred[:, 0]
        if y_true.ndim == 2 and y_true.shape[1] == 1:
            y_true = y_true[:, 0]
        out = {}
        for name, fn in self.metrics.items():
            value = fn(y_true, y_pred) if w is None else fn(y_true, y_pred, sample_weight=w)
            out[f"val_{name}"] = float(value)
        return out

    # ---- training ---------------------------------------------------------------------------
    def fit(self, train, val=None, epochs: int = 1, batch_size=None, shuffle: bool = True,
            seed=None, initial_epoch: int = 0, val_batch_size: int = 4096) -> History:
        """Train; see hepnn.train.fit for the arguments."""
        fn = "fit"
        for what, v, lo in (("epochs", epochs, 1), ("initial_epoch", initial_epoch, 0),
                            ("val_batch_size", val_batch_size, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"[{fn}] {what} must be an integer >= {lo}, got {v!r}")
        if initial_epoch >= epochs:
            raise ValueError(f"[{fn}] initial_epoch ({initial_epoch}) must be below epochs ({epochs})")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"[{fn}] seed must be a non-negative integer or None, got {seed!r}")
        if self.optimizer is None or not hasattr(self.optimizer, "param_groups"):
            raise TypeError(f"[{fn}] optimizer must be a hepnn optimizer, got {type(self.optimizer).__name__}")
        _check_loss_fn(self.loss_fn)
        device, dtype = _place(self.model)
        tr = as_source(fn, "train", train, device, dtype)
        va = None if val is None else as_source(fn, "val", val, device, dtype)
        if self.metrics and va is None:
            raise ValueError(f"[{fn}] metrics are computed on the validation set: pass val=")
        if tr.is_arrays:
            if batch_size is None:
                batch_size = 256
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
                raise ValueError(f"[{fn}] batch_size must be a positive integer, got {batch_size!r}")
        elif batch_size is not None:
            raise ValueError(f"[{fn}] batch_size applies to arrays; train is an iterable of batches "
                             "that already decides the batch size")
        self.history.params = dict(epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                   n_train=tr.n_events, n_val=None if va is None else va.n_events)
        self.stop_training = False
        bars = _Progress(self.progress)
        for cb in self.callbacks:
            cb.set_trainer(self)
        for cb in self.callbacks:
            cb.on_train_begin()
        for epoch in range(int(initial_epoch), int(epochs)):
            self.epoch = epoch
            for cb in self.callbacks:
                cb.on_epoch_begin(epoch)
            lr = self.optimizer.param_groups[0]["lr"]
            loss, n_seen, seconds = self._train_epoch(tr, batch_size, shuffle, seed, epoch, epochs, bars)
            logs = {"loss": loss}
            if va is not None:
                if self.metrics:
                    vloss, yv, pv, wv = self._evaluate(va, val_batch_size, True, epoch, epochs)
                    logs["val_loss"] = vloss
                    logs.update(self._metric_logs(yv, pv, wv))
                else:
                    logs["val_loss"] = self._evaluate(va, val_batch_size, False, epoch, epochs)
            logs.update(lr=float(lr), time=seconds, samples_per_s=n_seen / seconds if seconds > 0 else float("inf"))
            bars.end_epoch(epoch, epochs, logs)
            self.history.record(epoch, logs)
            self._step_schedulers(logs)
            for cb in self.callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in self.callbacks:
            cb.on_train_end()
        return self.history

    def _step_schedulers(self, logs):
        for s in self.schedulers:
            if type(s).__name__ == "ReduceLROnPlateau":
                s.step(logs.get("val_loss", logs["loss"]))
            else:
                s.step()

    def _train_epoch(self, source, batch_size, shuffle, seed, epoch, epochs, bars):
        order = None
        if source.is_arrays and shuffle:
            rng = np.random.default_rng([int(seed), epoch]) if seed is not None else _random.generator()
            order = rng.permutation(source.n_events)
        source.set_epoch(epoch)
        model, opt, loss_fn = self.model, self.optimizer, self.loss_fn
        n_batches = source.n_batches(batch_size)
        bar = bars.start_epoch(epoch, epochs, source.n_events)
        total, wtotal, n_seen = 0.0, 0.0, 0
        model.train()
        start = time.perf_counter()
        try:
            for b, (x, y, w, wsum) in enumerate(source.batches(batch_size, order)):
                pred = model(x)
                loss, value = _loss_value(loss_fn, pred, _match_target(pred, y), w)
                if not math.isfinite(value):
                    raise _diverged("the loss", value, epoch, epochs, b, n_batches, wsum, w is not None)
                opt.zero_grad()
                loss.backward()
                opt.step()
                size = int(x.shape[0])
                total += value * wsum
                wtotal += wsum
                n_seen += size
                for cb in self.callbacks:
                    cb.on_batch_end(b, {"loss": value, "size": size})
                if bar is not None:
                    bars.update(bar, size, total / wtotal if wtotal else value)
        finally:
            if bar is not None and sys.exc_info()[0] is not None:
                bar.close()
        seconds = time.perf_counter() - start
        if n_seen == 0:
            raise ValueError(f"[fit] the training data gave no batches in epoch {epoch + 1}")
        return (total / wtotal if wtotal != 0 else float("nan")), n_seen, seconds


def fit(model, loss_fn, optimizer, train, val=None, epochs: int = 1, batch_size=None,
        shuffle: bool = True, seed=None, callbacks=(), scheduler=None, progress="auto",
        metrics=None, initial_epoch: int = 0, val_batch_size: int = 4096) -> History:
    """Train `model` to minimise `loss_fn` with `optimizer`; returns the History.

    train / val: ``(X, y)`` or ``(X, y, w)`` arrays (NumPy, CuPy or Tensors; w = per-event
    weights), a hepnn.data.Dataset, or a re-iterable of such batches (a DataLoader, a list).
    Weights flow into ``loss_fn(pred, y, event_weight=w)``. A (N,) target for a (N, 1) output is
    reshaped to (N, 1). Arrays are converted once to the model's dtype and device (integer
    labels stay int64 for cross-entropy) and batched here: ``batch_size`` events (256 when not
    given), shuffled each epoch (``seed``: epoch k's order depends only on (seed, k), so a run
    resumed with ``initial_epoch=k`` sees the same batches; no seed: hepnn's global generator).
    An iterable of batches decides its own batches (batch_size, shuffle and seed do not apply;
    its ``set_epoch(k)`` is called before epoch k when it has one).

    Each epoch logs ``loss`` (event-weighted mean of the batch losses over the epoch),
    ``val_loss`` (sum(w*l)/sum(w) over the whole validation set, eval mode, no_grad), ``lr``
    (group 0's lr during the epoch), ``time`` (seconds of training) and ``samples_per_s``;
    ``metrics={"auc": fn}`` adds ``val_auc`` = fn(y_val, outputs[, sample_weight=w_val]) (a
    (N, 1) output is passed as (N,)). Schedulers (one or a list) step once per epoch;
    ReduceLROnPlateau steps with val_loss (the training loss without val). Callbacks are
    hepnn.callbacks objects (EarlyStopping, ModelCheckpoint, ...). A NaN or infinite loss
    raises RuntimeError naming the epoch and batch before the optimizer takes that step.

    progress: "auto" shows a tqdm bar per epoch (loss, events/s) on stderr when stderr is a
    terminal or in a Jupyter kernel, and prints nothing otherwise; True always shows it (one
    plain line per epoch if tqdm is not installed); False prints nothing.

    Example:
        >>> import numpy as np, hepnn
        >>> from hepnn.train import fit
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(1000, 4)).astype("float32")
        >>> y = (X[:, 0] + X[:, 1] > 0).astype("float32")
        >>> model = hepnn.nn.Sequential(hepnn.nn.Linear(4, 16), hepnn.nn.ReLU(), hepnn.nn.Linear(16, 1))
        >>> hist = fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.Adam(model.parameters(), lr=1e-2),
        ...            train=(X[:800], y[:800]), val=(X[800:], y[800:]), epochs=10, batch_size=64,
        ...            seed=0, progress=False)
        >>> sorted(hist.history), hist.history["val_loss"][-1] < 0.3
        (['loss', 'lr', 'samples_per_s', 'time', 'val_loss'], True)
    """
    trainer = Trainer(model, loss_fn, optimizer, callbacks=callbacks, scheduler=scheduler,
                      progress=progress, metrics=metrics)
    return trainer.fit(train, val=val, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                       seed=seed, initial_epoch=initial_epoch, val_batch_size=val_batch_size)


def _interactive(stream) -> bool:
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):
        return False
    return "ipykernel" in sys.modules


class _Progress:
    """One tqdm bar per epoch (or one plain line per epoch without tqdm); silent when disabled."""

    def __init__(self, mode):
        self.stream = sys.stderr
        self.enabled = mode is True or (mode == "auto" and _interactive(self.stream))
        self.tqdm = None
        if self.enabled:
            try:
                from tqdm.auto import tqdm

                self.tqdm = tqdm
            except ImportError:
                self.tqdm = None
        self._last = 0.0
        self._current = None

    def start_epoch(self, epoch, epochs, n_events):
        self._current = None
        if self.enabled and self.tqdm is not None:
            self._current = self.tqdm(total=n_events, desc=f"epoch {epoch + 1}/{epochs}", unit="ev",
                                      unit_scale=True, leave=True, file=self.stream, dynamic_ncols=True)
        return self._current

    def update(self, bar, size, loss):
        bar.update(size)
        now = time.perf_counter()
        if now - self._last > 0.2:  # formatting the postfix every batch would cost more than a small batch
            self._last = now
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def end_epoch(self, epoch, epochs, logs):
        if not self.enabled:
            return
        shown = {k: f"{v:.4g}" for k, v in logs.items() if k in ("loss",) or k.startswith("val_")}
        text = "  ".join(f"{k} {v}" for k, v in shown.items())
        if self.tqdm is None:
            print(f"epoch {epoch + 1}/{epochs}  {text}  {logs['samples_per_s']:.0f} ev/s  "
                  f"{logs['time']:.1f} s", file=self.stream)
        elif self._current is not None:
            self._current.set_postfix(shown, refresh=True)
            self._current.close()
            self._current = None
