"""Anomaly detection with an autoencoder, the lectures' second tutorial: train on background
(continuum WW) only, score every event by its reconstruction error, and see how well that
unsupervised score finds the H -> WW signal it never saw (ROC AUC, rejection at eps_S = 0.5).

    python examples/anomaly_autoencoder.py [--quick]
"""
import argparse
import os

import numpy as np

import hepnn
from hepnn import metrics, nn
from hepnn.data import StandardScaler, train_val_test_split

from higgs_ww import load_sample

HERE = os.path.dirname(os.path.abspath(__file__))


def autoencoder(n_features, bottleneck=3):
    return nn.Sequential(nn.Linear(n_features, 32), nn.ELU(), nn.Linear(32, 16), nn.ELU(),
                         nn.Linear(16, bottleneck),
                         nn.Linear(bottleneck, 16), nn.ELU(), nn.Linear(16, 32), nn.ELU(),
                         nn.Linear(32, n_features))


def reconstruction_error(model, X):
    out = hepnn.predict(model, X)
    return np.mean((out - X) ** 2, axis=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", default=os.path.join(HERE, "data", "hww_sample.npz"))
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)

    X, y, _, names = load_sample(args.sample)
    keep = [i for i, n in enumerate(names) if n != "n_leptons"]  # constant after preselection
    X = X[:, keep]
    if args.quick:
        sub = np.random.default_rng(args.seed).permutation(len(y))[:6000]
        X, y = X[sub], y[sub]
    X_tr, X_va, X_te, y_tr, y_va, y_te = train_val_test_split(X, y, val_size=0.2, test_size=0.3,
                                                              stratify=y, seed=args.seed)
    background = y_tr == 0
    scaler = StandardScaler().fit(X_tr[background])
    X_tr, X_va, X_te = (scaler.transform(a).astype(np.float32) for a in (X_tr, X_va, X_te))
    bkg_tr, bkg_va = X_tr[background], X_va[y_va == 0]

    model = autoencoder(X.shape[1])
    opt = hepnn.optim.Adam(model.parameters(), lr=3e-3)
    hist = hepnn.fit(model, nn.MSELoss(), opt, train=(bkg_tr, bkg_tr), val=(bkg_va, bkg_va),
                     epochs=3 if args.quick else 40, batch_size=256, seed=args.seed,
                     callbacks=[hepnn.EarlyStopping(patience=4, restore_best_weights=True)])
    score = reconstruction_error(model, X_te)
    auc = metrics.roc_auc_score(y_te, score)
    rej = float(metrics.background_rejection(y_te, score, 0.5))
    print(f"trained {len(hist.history['loss'])} epochs on {len(bkg_tr)} background events; "
          f"final val loss {hist.history['val_loss'][-1]:.4f}")
    print(f"signal as anomaly: AUC {auc:.3f}, background rejection at eps_S = 0.5: {rej:.2f}")
    return auc


if __name__ == "__main__":
    main()
