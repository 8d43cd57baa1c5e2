"""Anomaly detection with a normalizing flow beside the autoencoder of anomaly_autoencoder.py: on
the same events and split, both are trained on background (continuum WW) only; the flow scores an
event by its negative log-likelihood, the autoencoder by its reconstruction error. Prints the ROC
AUC and the background rejection 1/eps_B at eps_S = 0.3 of each for the H -> WW signal.

Flow inputs: log of the positive-definite features (pT, masses, MET, dR), eta and dphi as they
are, n_jets dequantised (uniform noise in [0, 1)), then standardised on the training background;
the autoencoder keeps its own preprocessing (standardised raw features).

    python examples/anomaly_flow.py [--quick]
"""
import argparse
import os

import numpy as np

import hepnn
from hepnn import flows, metrics, nn
from hepnn.data import StandardScaler, train_val_test_split

from anomaly_autoencoder import autoencoder, reconstruction_error
from higgs_ww import load_sample

HERE = os.path.dirname(os.path.abspath(__file__))
LOG_FEATURES = ("lep1_pt", "lep2_pt", "m_ll", "pt_ll", "dr_ll", "met", "mt")


def flow_features(X, names, rng):
    cols = []
    for i, n in enumerate(names):
        v = X[:, i].astype(np.float64)
        if n in LOG_FEATURES:
            v = np.log(v)
        elif n == "n_jets":
            v = v + rng.uniform(0.0, 1.0, v.shape)
        cols.append(v)
    return np.stack(cols, 1)


def flow_score(flow, X):
    """Negative log-likelihood per event (higher = more anomalous)."""
    with hepnn.no_grad():
        return -flow.log_prob(hepnn.tensor(X)).numpy().astype(np.float64)


def summary(y, score):
    return {"auc": float(metrics.roc_auc_score(y, score)),
            "rejection": float(metrics.background_rejection(y, score, 0.3))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", default=os.path.join(HERE, "data", "hww_sample.npz"))
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    X, y, _, names = load_sample(args.sample)
    keep = [i for i, n in enumerate(names) if n != "n_leptons"]  # as in anomaly_autoencoder.py
    X, names = X[:, keep], [names[i] for i in keep]
    if args.quick:
        sub = np.random.default_rng(args.seed).permutation(len(y))[:6000]
        X, y = X[sub], y[sub]
    F = flow_features(X, names, rng)
    idx = np.arange(len(y))
    i_tr, i_va, i_te, y_tr, y_va, y_te = train_val_test_split(idx, y, val_size=0.2, test_size=0.3,
                                                              stratify=y, seed=args.seed)
    bkg_tr, bkg_va = i_tr[y_tr == 0], i_va[y_va == 0]

    # The autoencoder, exactly as in anomaly_autoencoder.py.
    scaler = StandardScaler().fit(X[bkg_tr])
    A = scaler.transform(X).astype(np.float32)
    ae = autoencoder(X.shape[1])
    hepnn.fit(ae, nn.MSELoss(), hepnn.optim.Adam(ae.parameters(), lr=3e-3),
              train=(A[bkg_tr], A[bkg_tr]), val=(A[bkg_va], A[bkg_va]),
              epochs=3 if args.quick else 40, batch_size=256, seed=args.seed,
              callbacks=[hepnn.EarlyStopping(patience=4, restore_best_weights=True)])
    ae_result = summary(y_te, reconstruction_error(ae, A[i_te]))

    Fz = F.astype(np.float32)
    body = flows.build_flow(F.shape[1], layers=4 if args.quick else 6, bins=8,
                            hidden=32 if args.quick else 64, bound=4.0, seed=args.seed)
    flow = flows.Flow([flows.Standardize.fit(Fz[bkg_tr])] + list(body.transforms))
    hist = flows.fit_flow(flow, Fz[bkg_tr], val=(Fz[bkg_va],), epochs=5 if args.quick else 60,
                          batch_size=256, lr=2e-3, seed=args.seed,
                          callbacks=[hepnn.EarlyStopping(patience=6, restore_best_weights=True)])
    flow_result = summary(y_te, flow_score(flow, Fz[i_te]))

    print(f"trained on {len(bkg_tr)} background events; flow val NLL {min(hist.history['val_loss']):.3f} "
          f"after {len(hist.history['loss'])} epochs")
    for name, r in (("autoencoder (reconstruction error)", ae_result),
                    ("flow (negative log-likelihood)", flow_result)):
        print(f"{name:36s} AUC {r['auc']:.3f}   1/eps_B at eps_S = 0.3: {r['rejection']:.2f}")
    return {"autoencoder": ae_result, "flow": flow_result}


if __name__ == "__main__":
    main()
