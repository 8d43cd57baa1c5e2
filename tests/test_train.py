"""fit / Trainer / callbacks: learning on a separable toy problem, early stopping on a scripted
validation-loss sequence, event weights, the whole-set weighted validation loss, schedules,
quiet mode and NaN divergence."""
import doctest

import numpy as np
import pytest

import hepnn
import hepnn.nn.functional as F
from hepnn.callbacks import Callback, EarlyStopping, snapshot
from hepnn.optim.lr_scheduler import ReduceLROnPlateau, StepLR
from hepnn.train import Trainer, evaluate, fit


def _blobs(n=600, seed=0):
    """Two Gaussian blobs 5 sigma apart in 5 features: Bayes error 0.6%."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float32)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[:, 0] += 4.0 * y
    X[:, 1] -= 3.0 * y
    return X, y


def _mlp(seed=0, dropout=0.0):
    hepnn.manual_seed(seed)
    layers = [hepnn.nn.Linear(5, 16), hepnn.nn.ReLU()]
    if dropout:
        layers.append(hepnn.nn.Dropout(dropout))
    return hepnn.nn.Sequential(*layers, hepnn.nn.Linear(16, 1))


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


# ---- learning -------------------------------------------------------------------------------
def test_fit_reduces_loss_on_separable_problem():
    X, y = _blobs()
    model = _mlp()
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-2)
    before = evaluate(model, hepnn.nn.BCEWithLogitsLoss(), (X[400:], y[400:]))
    hist = fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=(X[:400], y[:400]),
               val=(X[400:], y[400:]), epochs=15, batch_size=32, seed=3, progress=False)
    assert hist.epoch == list(range(15))
    assert set(hist.history) == {"loss", "val_loss", "lr", "time", "samples_per_s"}
    assert all(len(v) == 15 for v in hist.history.values())
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["val_loss"][-1] < 0.1 < before
    assert all(t > 0 for t in hist["time"]) and all(r > 0 for r in hist["samples_per_s"])
    pred = model(hepnn.tensor(X[400:])).numpy()[:, 0]
    assert np.mean((pred > 0) == (y[400:] > 0.5)) > 0.95
    assert model.training  # fit leaves the model in training mode, as it found it


def test_same_seed_same_run_and_other_seed_differs():
    X, y = _blobs(200)
    runs = []
    for seed in (5, 5, 6):
        model = _mlp()
        fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
            train=(X, y), epochs=2, batch_size=16, seed=seed, progress=False)
        runs.append(model.state_dict()["0.weight"])
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_cross_entropy_with_integer_labels():
    X, y = _blobs(300)
    labels = y.astype(np.int64)
    hepnn.manual_seed(1)
    model = hepnn.nn.Sequential(hepnn.nn.Linear(5, 8), hepnn.nn.Tanh(), hepnn.nn.Linear(8, 2))
    hist = fit(model, hepnn.nn.CrossEntropyLoss(), hepnn.optim.Adam(model.parameters(), lr=2e-2),
               train=(X, labels), val=(X, labels), epochs=8, batch_size=32, seed=0, progress=False)
    assert hist["val_loss"][-1] < 0.15


def test_iterable_of_batches_and_its_checks():
    X, y = _blobs(128)
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]
    model = _mlp()
    hist = fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.Adam(model.parameters(), lr=1e-2),
               train=batches, val=batches, epochs=4, progress=False)
    assert hist["loss"][-1] < hist["loss"][0]
    # Arrays in one batch give exactly the same result as the same batches from an iterable.
    m2 = _mlp()
    fit(m2, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.Adam(m2.parameters(), lr=1e-2),
        train=(X, y), epochs=4, batch_size=32, shuffle=False, progress=False)
    assert np.array_equal(model.state_dict()["0.weight"], m2.state_dict()["0.weight"])
    opt = hepnn.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="used up after one epoch"):
        fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=iter(batches), epochs=2, progress=False)
    with pytest.raises(ValueError, match="batch_size applies to arrays"):
        fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=batches, batch_size=8, progress=False)


class _FakeLoader:
    """A DataLoader look-alike: records set_epoch calls (fit uses them to resume seeded runs)."""

    def __init__(self, X, y):
        self.X, self.y, self.epochs = X, y, []

    def set_epoch(self, e):
        self.epochs.append(e)

    def __iter__(self):
        for i in range(0, len(self.X), 50):
            yield hepnn.tensor(self.X[i:i + 50]), hepnn.tensor(self.y[i:i + 50])


def test_loader_set_epoch_called_with_each_epoch():
    X, y = _blobs(100)
    loader = _FakeLoader(X, y)
    model = _mlp()
    fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
        train=loader, epochs=5, initial_epoch=2, progress=False)
    assert loader.epochs == [2, 3, 4]


# ---- event weights ----------------------------------------------------------------------------
def _full_batch_fit(X, y, w=None, epochs=5):
    model = _mlp(seed=7)
    data = (X, y) if w is None else (X, y, w)
    fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.5),
        train=data, epochs=epochs, batch_size=len(X), shuffle=False, progress=False)
    return model.state_dict()


def test_zero_weight_event_is_the_same_as_removing_it():
    X, y = _blobs(64)
    w = np.random.default_rng(2).uniform(0.5, 2.0, 64).astype(np.float32)
    # An outlier that would pull the fit hard if it counted.
    Xo = np.concatenate([X, [[40.0, -40.0, 9.0, 9.0, 9.0]]]).astype(np.float32)
    yo = np.concatenate([y, [0.0]]).astype(np.float32)
    wo = np.concatenate([w, [0.0]]).astype(np.float32)
    without = _full_batch_fit(X, y, w)
    zero = _full_batch_fit(Xo, yo, wo)
    counted = _full_batch_fit(Xo, yo, np.concatenate([w, [1.0]]).astype(np.float32))
    for k in without:
        np.testing.assert_allclose(zero[k], without[k], rtol=1e-5, atol=1e-6)
    assert max(np.abs(counted[k] - without[k]).max() for k in without) > 1e-2


def test_weights_scale_free_and_weight_two_equals_duplicate():
    X, y = _blobs(40)
    w = np.ones(40, np.float32)
    w[3] = 2.0
    doubled = _full_batch_fit(X, y, w)
    duplicated = _full_batch_fit(np.concatenate([X, X[3:4]]), np.concatenate([y, y[3:4]]))
    scaled = _full_batch_fit(X, y, 7.5 * w)
    unweighted = _full_batch_fit(X, y)
    for k in doubled:
        np.testing.assert_allclose(doubled[k], duplicated[k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(doubled[k], scaled[k], rtol=1e-5, atol=1e-6)
    assert max(np.abs(doubled[k] - unweighted[k]).max() for k in doubled) > 1e-4


def test_validation_loss_is_weighted_mean_over_whole_set():
    X, y = _blobs(1000, seed=4)
    w = np.random.default_rng(4).exponential(1.0, 1000)
    model = _mlp().double()
    loss_fn = hepnn.nn.BCEWithLogitsLoss()
    hist = fit(model, loss_fn, hepnn.optim.SGD(model.parameters(), lr=0.0), train=(X, y),
               val=(X, y, w), epochs=1, batch_size=100, val_batch_size=64, progress=False)
    logits = model(hepnn.tensor(X.astype(np.float64))).numpy()[:, 0]
    per_event = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    expected = np.sum(w * per_event) / np.sum(w)
    assert hist["val_loss"][0] == pytest.approx(expected, rel=1e-12)
    # ... which is not the mean of the 64-event batch means (the test can tell them apart).
    batch_means = [np.sum(w[i:i + 64] * per_event[i:i + 64]) / np.sum(w[i:i + 64]) for i in range(0, 1000, 64)]
    assert abs(np.mean(batch_means) - expected) > 1e-5
    # The training loss of an lr=0 epoch is the same weighted mean of the training set.
    unweighted = np.mean(per_event)
    assert hist["loss"][0] == pytest.approx(unweighted, rel=1e-12)
    assert evaluate(model, loss_fn, (X, y, w), batch_size=77) == pytest.approx(expected, rel=1e-12)


def test_event_weight_reaches_a_custom_loss():
    seen = []

    def loss_fn(pred, target, event_weight=None):
        seen.append(None if event_weight is None else event_weight.numpy().copy())
        return F.mse_loss(pred, target, event_weight=event_weight)

    X, y = _blobs(10)
    w = np.arange(1, 11, dtype=np.float32)
    model = _mlp()
    fit(model, loss_fn, hepnn.optim.SGD(model.parameters(), lr=0.01), train=(X, y, w),
        epochs=1, batch_size=10, shuffle=False, progress=False)
    assert np.array_equal(seen[0], w)


# ---- early stopping ---------------------------------------------------------------------------
class _ScriptedValLoss:
    """A real BCE loss in training; in validation (no_grad) the next value of a script."""

    reduction = "mean"

    def __init__(self, script):
        self.script, self.calls = list(script), 0
        self.bce = hepnn.nn.BCEWithLogitsLoss()

    def __call__(self, pred, target, event_weight=None):
        if hepnn.is_grad_enabled():
            return self.bce(pred, target)
        value = self.script[self.calls]
        self.calls += 1
        return hepnn.tensor(value, dtype="float64")


class _Recorder(Callback):
    def __init__(self):
        self.states = []

    def on_epoch_end(self, epoch, logs=None):
        self.states.append(snapshot(self.trainer.model))


SCRIPT = [1.0, 0.8, 0.7, 0.75, 0.6995, 0.72, 0.71, 0.9, 0.5, 0.4, 0.3, 0.2]


@pytest.mark.parametrize("min_delta, best, stop", [
    (0.0, 4, 7),     # 0.6995 < 0.7 counts: best epoch 4, three bad epochs 5, 6, 7
    (1e-3, 2, 5),    # 0.6995 is not 1e-3 better than 0.7: best stays 2, stop after 3, 4, 5
])
def test_early_stopping_stops_at_the_right_epoch_and_restores_best(min_delta, best, stop):
    X, y = _blobs(96)
    model = _mlp()
    rec = _Recorder()
    stopper = EarlyStopping(patience=3, min_delta=min_delta, restore_best_weights=True)
    hist = fit(model, _ScriptedValLoss(SCRIPT), hepnn.optim.SGD(model.parameters(), lr=0.2),
               train=(X, y), val=(X, y), epochs=len(SCRIPT), batch_size=32, seed=0,
               callbacks=[rec, stopper], progress=False)
    assert hist.epoch == list(range(stop + 1))
    assert hist["val_loss"] == pytest.approx(SCRIPT[:stop + 1], rel=1e-14)
    assert stopper.stopped_epoch == stop and stopper.best_epoch == best
    assert stopper.best == pytest.approx(SCRIPT[best], rel=1e-14)
    final = model.state_dict()
    for k in final:
        assert np.array_equal(final[k], rec.states[best][k])
    # The weights did move after the best epoch, so the restore was real.
    assert not np.array_equal(rec.states[best]["0.weight"], rec.states[stop]["0.weight"])


def test_early_stopping_without_restore_keeps_last_weights_and_mode_max():
    X, y = _blobs(64)
    model = _mlp()
    rec = _Recorder()
    stopper = EarlyStopping(monitor="val_loss", mode="max", patience=2)
    hist = fit(model, _ScriptedValLoss([0.1, 0.3, 0.2, 0.25, 0.9]), hepnn.optim.SGD(model.parameters(), lr=0.2),
               train=(X, y), val=(X, y), epochs=5, batch_size=32, callbacks=[rec, stopper], progress=False)
    assert len(hist.epoch) == 4 and stopper.best_epoch == 1
    assert np.array_equal(model.state_dict()["0.weight"], rec.states[-1]["0.weight"])


def test_early_stopping_needs_its_monitored_value():
    X, y = _blobs(32)
    model = _mlp()
    with pytest.raises(KeyError, match="val_loss.*pass val="):
        fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
            train=(X, y), epochs=2, callbacks=[EarlyStopping()], progress=False)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


# ---- schedules --------------------------------------------------------------------------------
def test_plateau_scheduler_steps_with_val_loss():
    X, y = _blobs(64)
    model = _mlp()
    opt = hepnn.optim.SGD(model.parameters(), lr=0.1)
    sched = ReduceLROnPlateau(opt, patience=1, factor=0.5)
    # Validation loss flat from epoch 1: bad epochs 1, 2 -> reduced after epoch 2, and so on.
    hist = fit(model, _ScriptedValLoss([1.0] * 6), opt, train=(X, y), val=(X, y), epochs=6,
               batch_size=32, scheduler=sched, progress=False)
    assert hist["lr"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025])


def test_step_scheduler_and_lr_history():
    X, y = _blobs(64)
    model = _mlp()
    opt = hepnn.optim.Adam(model.parameters(), lr=0.01)
    hist = fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=(X, y), epochs=5, batch_size=32,
               scheduler=StepLR(opt, step_size=2, gamma=0.1), progress=False)
    assert hist["lr"] == pytest.approx([0.01, 0.01, 0.001, 0.001, 1e-4])


def test_metrics_on_validation_set():
    X, y = _blobs(200)
    w = np.full(200, 2.0)
    calls = []

    def accuracy(y_true, score, sample_weight=None):
        calls.append((y_true.shape, score.shape, sample_weight is not None))
        return np.average((score > 0) == (y_true > 0.5), weights=sample_weight)

    model = _mlp()
    hist = fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.Adam(model.parameters(), lr=1e-2),
               train=(X, y), val=(X, y, w), epochs=4, batch_size=32, metrics={"acc": accuracy},
               progress=False)
    assert calls[0] == ((200,), (200,), True)
    assert hist["val_acc"][-1] > 0.9


# ---- output -----------------------------------------------------------------------------------
@pytest.mark.parametrize("progress", [False, "auto"])
def test_quiet_mode_prints_nothing(progress, capsys):
    X, y = _blobs(64)
    model = _mlp()
    fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
        train=(X, y), val=(X, y), epochs=2, batch_size=16, callbacks=[EarlyStopping(patience=5)],
        progress=progress)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_true_shows_epochs_loss_and_throughput(capsys):
    pytest.importorskip("tqdm")
    X, y = _blobs(64)
    model = _mlp()
    fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
        train=(X, y), val=(X, y), epochs=2, batch_size=16, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "epoch 1/2" in err and "epoch 2/2" in err and "val_loss=" in err and "ev/s" in err


# ---- divergence and bad input -----------------------------------------------------------------
class _PoisonAt(hepnn.nn.Module):
    """Passes its input through, except in one (epoch, batch) where it returns NaN."""

    def __init__(self, epoch, batch, per_epoch):
        super().__init__()
        self.target, self.calls = epoch * per_epoch + batch, 0

    def forward(self, x):
        if hepnn.is_grad_enabled():
            self.calls += 1
            if self.calls - 1 == self.target:
                return x * float("nan")
        return x


def test_nan_loss_raises_naming_epoch_and_batch_before_the_step():
    X, y = _blobs(64)
    model = _mlp()
    model.add_module("poison", _PoisonAt(epoch=1, batch=2, per_epoch=4))
    rec = _Recorder()
    with pytest.raises(RuntimeError, match=r"loss is nan at epoch 2/5, batch 3/4.*diverged"):
        fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
            train=(X, y), epochs=5, batch_size=16, progress=False, callbacks=[rec])
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_real_divergence_raises():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 5)).astype(np.float32) * 100
    y = (X @ rng.normal(size=(5, 1))).astype(np.float32) * 1e3
    model = _mlp()
    with pytest.raises(RuntimeError, match=r"at epoch \d+/50, batch \d+/8.*diverged"):
        fit(model, hepnn.nn.MSELoss(), hepnn.optim.SGD(model.parameters(), lr=10.0),
            train=(X, y), epochs=50, batch_size=32, progress=False)


def test_nan_validation_loss_raises():
    X, y = _blobs(32)
    model = _mlp()
    with pytest.raises(RuntimeError, match=r"validation loss is nan at epoch 2/3"):
        fit(model, _ScriptedValLoss([0.5, float("nan"), 0.4]), hepnn.optim.SGD(model.parameters(), lr=0.1),
            train=(X, y), val=(X, y), epochs=3, progress=False)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(train=("X_nan", "y")), ValueError, r"train features contain NaN .*row 5"),
    (dict(train=("X", "y_short")), ValueError, "labels have 10 rows but the features have 20"),
    (dict(train=("X", "y", "w2d")), ValueError, r"weights must have shape \(20,\)"),
    (dict(train=("X", "y"), epochs=0), ValueError, "epochs"),
    (dict(train=("X", "y"), batch_size=0), ValueError, "batch_size"),
    (dict(train=("X", "y"), progress="yes"), ValueError, "progress"),
    (dict(train=("X", "y"), seed=-1), ValueError, "seed"),
    (dict(train=42), TypeError, "iterable of batches"),
])
def test_bad_arguments(kwargs, error, message):
    X = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    bank = {"X": X, "y": (X[:, 0] > 0).astype(np.float32), "y_short": np.zeros(10, np.float32),
            "X_nan": X.copy(), "w2d": np.ones((20, 2), np.float32)}
    bank["X_nan"][5, 2] = np.nan
    if isinstance(kwargs.get("train"), tuple):
        kwargs = {**kwargs, "train": tuple(bank[k] for k in kwargs["train"])}
    model = _mlp()
    kwargs.setdefault("progress", False)
    with pytest.raises(error, match=message):
        fit(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_sum_reduction_refused():
    X, y = _blobs(16)
    model = _mlp()
    with pytest.raises(ValueError, match="reduction must be 'mean'"):
        fit(model, hepnn.nn.BCEWithLogitsLoss(reduction="sum"), hepnn.optim.SGD(model.parameters(), lr=0.1),
            train=(X, y), progress=False)


def test_trainer_stop_from_a_callback():
    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.trainer.stop_training = True

    X, y = _blobs(32)
    model = _mlp()
    hist = Trainer(model, hepnn.nn.BCEWithLogitsLoss(), hepnn.optim.SGD(model.parameters(), lr=0.1),
                   callbacks=[StopAfterTwo()], progress=False).fit((X, y), epochs=10)
    assert hist.epoch == [0, 1]


@pytest.mark.parametrize("module", ["hepnn.train", "hepnn.callbacks"])
def test_docstring_examples(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
