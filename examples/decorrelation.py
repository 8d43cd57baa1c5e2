"""Decorrelating a classifier from a variable it must not sculpt, two ways the lectures show:
the DisCo term (loss = bce + lambda * dCorr^2(score, m) on background) and an adversary that tries
to predict the variable from the score (alternating updates, classifier loss = bce - lambda * adv).

The H -> WW sample's transverse mass mT is the variable: it is left out of the inputs, and after
training we print the AUC and the distance correlation between the score and mT on background
test events (0 = the score says nothing about mT, so a cut on it does not sculpt the mT spectrum).

    python examples/decorrelation.py [--quick]
"""
import argparse
import os

import numpy as np

import hepnn
import hepnn.nn.functional as F
from hepnn import metrics, nn
from hepnn.data import StandardScaler, train_val_test_split

from higgs_ww import load_sample

HERE = os.path.dirname(os.path.abspath(__file__))
N_BINS = 8  # the adversary predicts which mT quantile a background event is in


def classifier(n_in):
    return nn.Sequential(nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def train(kind, lam, X, y, m, m_bin, epochs, seed, batch=512):
    """kind: "plain", "disco" or "adversary"; returns the trained classifier."""
    hepnn.manual_seed(seed)
    clf = classifier(X.shape[1])
    opt = hepnn.optim.Adam(clf.parameters(), lr=2e-3)
    bce, ce = nn.BCEWithLogitsLoss(), nn.CrossEntropyLoss()
    if kind == "adversary":
        adv = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, N_BINS))
        opt_adv = hepnn.optim.Adam(adv.parameters(), lr=5e-3)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(y) - batch + 1, batch):
            idx = order[i:i + batch]
            bkg = np.flatnonzero(y[idx] == 0)
            logits = clf(hepnn.tensor(X[idx]))
            loss = bce(logits, hepnn.tensor(y[idx, None]))
            if kind == "disco":
                score = logits.sigmoid()[bkg].reshape(-1)
                loss = loss + lam * F.disco(score, m[idx][bkg])
            elif kind == "adversary":
                score = logits.sigmoid()[bkg]
                labels = hepnn.tensor(m_bin[idx][bkg])
                adv_loss = ce(adv(score.detach()), labels)  # the adversary learns first ...
                opt_adv.zero_grad()
                adv_loss.backward()
                opt_adv.step()
                loss = loss - lam * ce(adv(score), labels)  # ... then the classifier fights it
            opt.zero_grad()
            loss.backward()
            opt.step()
    return clf


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", default=os.path.join(HERE, "data", "hww_sample.npz"))
    args = ap.parse_args(argv)

    X, y, _, names = load_sample(args.sample)
    mt = X[:, names.index("mt")].astype(np.float64)
    X = X[:, [i for i, n in enumerate(names) if n not in ("mt", "n_leptons")]]
    if args.quick:
        sub = np.random.default_rng(args.seed).permutation(len(y))[:6000]
        X, y, mt = X[sub], y[sub], mt[sub]
    X_tr, _, X_te, y_tr, _, y_te, m_tr, _, m_te = train_val_test_split(
        X, y, mt, val_size=0.0, test_size=0.3, stratify=y, seed=args.seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr).astype(np.float32), scaler.transform(X_te).astype(np.float32)
    edges = np.quantile(m_tr[y_tr == 0], np.linspace(0, 1, N_BINS + 1)[1:-1])
    m_bin = np.searchsorted(edges, m_tr).astype(np.int64)

    epochs = 2 if args.quick else 12
    bkg_te = np.flatnonzero(y_te == 0)[:3000]
    print("| training | AUC | dCorr^2(score, mT) on background |\n|---|---|---|")
    results = {}
    for label, kind, lam in (("plain BCE", "plain", 0.0), ("BCE + 10 DisCo", "disco", 10.0),
                             ("BCE - 2 adversary", "adversary", 2.0)):
        clf = train(kind, lam, X_tr, y_tr, m_tr, m_bin, epochs, args.seed)
        score = hepnn.predict(clf, X_te).ravel()
        auc = metrics.roc_auc_score(y_te, score)
        with hepnn.no_grad():
            dcorr = F.disco(hepnn.tensor(score[bkg_te]).sigmoid(), m_te[bkg_te]).item()
        results[kind] = (auc, dcorr)
        print(f"| {label} | {auc:.4f} | {dcorr:.4f} |")
    return results


if __name__ == "__main__":
    main()
