"""Classifier two-sample test: how well a small MLP, trained with hepnn, tells generated events
from reference ones. The test-set ROC AUC is 0.5 when it cannot (the samples look alike) and
approaches 1 as the generator's flaws become visible in any correlation of the features.
"""
import numpy as np

from ..data._arrays import check_finite_columns, to_numpy
from .roc import roc_auc_score


def _features(fn, name, x):
    x = to_numpy(fn, name, x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"[{fn}] {name} must be (N, F) features, got shape {x.shape}")
    if len(x) < 10:
        raise ValueError(f"[{fn}] {name} needs at least 10 events, got {len(x)}")
    check_finite_columns(fn, name, x)
    return x.astype(np.float32, copy=False)


def classifier_two_sample_test(reference, generated, hidden=(64, 64), epochs=50, batch_size=256,
                               lr=1e-3, val_fraction=0.2, test_fraction=0.3, patience=5, seed=0):
    """Train an MLP (ReLU, `hidden` widths, Adam) to separate `generated` (label 1) from
    `reference` (label 0) events, both (N, F) feature arrays, and return its ROC AUC on a
    held-out test split.

    The events are split, stratified, into train / validation / test (fractions val_fraction
    and test_fraction of each sample); the features are standardised with the training split's
    mean and spread; the two classes are weighted to equal total weight, so unequal sample
    sizes do not bias the classifier; training stops early when the validation loss has not
    improved for `patience` epochs and keeps the best epoch's weights. Deterministic in `seed`
    (it reseeds hepnn's generator).

    Example:
        >>> import numpy as np, hepnn.metrics as M
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.normal(size=(2000, 3))
        >>> same = M.classifier_two_sample_test(ref, rng.normal(size=(2000, 3)), epochs=5)
        >>> moved = M.classifier_two_sample_test(ref, rng.normal(size=(2000, 3)) + 1.0, epochs=5)
        >>> abs(same - 0.5) < 0.05, moved > 0.8
        (True, True)
    """
    fn = "classifier_two_sample_test"
    from .. import fit, manual_seed, nn, optim, predict
    from ..callbacks import EarlyStopping

    ref = _features(fn, "reference", reference)
    gen = _features(fn, "generated", generated)
    if ref.shape[1] != gen.shape[1]:
        raise ValueError(f"[{fn}] reference has {ref.shape[1]} features but generated has {gen.shape[1]}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"[{fn}] val_fraction and test_fraction must be in (0, 1) with a sum below 1, "
                         f"got {val_fraction} and {test_fraction}")
    widths = tuple(int(h) for h in hidden)
    if not widths or min(widths) < 1:
        raise ValueError(f"[{fn}] hidden must list positive layer widths, got {hidden!r}")

    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for label, x in ((0.0, ref), (1.0, gen)):
        order = rng.permutation(len(x))
        n_te, n_va = int(round(test_fraction * len(x))), int(round(val_fraction * len(x)))
        cuts = {"test": order[:n_te], "val": order[n_te:n_te + n_va], "train": order[n_te + n_va:]}
        for k, idx in cuts.items():
            # Each class sums to weight len(ref) + len(gen) over 2 within every split.
            w = np.full(len(idx), 0.5 * (len(ref) + len(gen)) / len(x), dtype=np.float32)
            parts[k].append((x[idx], np.full(len(idx), label, dtype=np.float32), w))
    split = {k: tuple(np.concatenate(c) for c in zip(*v)) for k, v in parts.items()}
    X_tr = split["train"][0]
    mu, sd = X_tr.mean(0), X_tr.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    scaled = {k: (((X - mu) / sd).astype(np.float32), y, w) for k, (X, y, w) in split.items()}

    manual_seed(seed)
    layers, width = [], ref.shape[1]
    for h in widths:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    model = nn.Sequential(*layers, nn.Linear(width, 1))
    fit(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=lr), train=scaled["train"],
        val=scaled["val"], epochs=int(epochs), batch_size=int(batch_size), seed=seed,
        callbacks=[EarlyStopping(patience=int(patience), restore_best_weights=True)], progress=False)
    X_te, y_te, w_te = scaled["test"]
    return roc_auc_score(y_te, predict(model, X_te)[:, 0], sample_weight=w_te)
