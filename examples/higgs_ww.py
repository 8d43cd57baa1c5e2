"""The main job: H -> WW -> l nu l nu signal against continuum WW, the HEP ML lectures' tutorial.

Loads the committed Pythia sample (examples/data/hww_sample.npz), splits it (stratified),
standardises on the training part only, trains an MLP with early stopping, and compares it
with a boosted decision tree (scikit-learn's HistGradientBoostingClassifier): AUC, background
rejection 1/eps_B at eps_S = 0.3, 0.5, 0.7, the Asimov significance of the best score cut at
139 fb^-1. Writes the ROC, loss and score plots and a checkpoint into --out.

    pip install ".[examples]" && python examples/higgs_ww.py [--quick] [--out hww_output]
"""
import argparse
import os
import time

import numpy as np

import hepnn
import hepnn.plot
from hepnn import metrics, nn
from hepnn.data import StandardScaler, train_val_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
LUMI_FB = 139.0
EFFICIENCIES = (0.3, 0.5, 0.7)


def load_sample(path=os.path.join(HERE, "data", "hww_sample.npz")):
    with np.load(path, allow_pickle=False) as f:
        return f["X"], f["label"].astype(np.float32), f["weight"], [str(n) for n in f["feature_names"]]


def class_balanced(y, w):
    """Training weights: each class sums to the same total, so the classifier is not drowned by
    the larger cross section; within a class the physical weights keep their ratios."""
    out = np.empty_like(w)
    for c in (0, 1):
        out[y == c] = w[y == c] / w[y == c].sum() * len(w) / 2
    return out


def best_cut_significance(y, score, w_phys, fraction):
    """Asimov significance of the best lower cut on the score, events scaled to LUMI_FB."""
    order = np.argsort(-score)
    scale = LUMI_FB / fraction
    s = np.cumsum((w_phys * (y == 1))[order]) * scale
    b = np.cumsum((w_phys * (y == 0))[order]) * scale
    ok = b > 1.0  # at least one expected background event: no cut on a single MC event
    z = metrics.asimov_significance(s[ok], b[ok])
    i = int(np.argmax(z))
    return float(z[i]), float(s[ok][i]), float(b[ok][i])


def train_mlp(X_tr, y_tr, w_tr, X_va, y_va, w_va, epochs, seed):
    model = nn.Sequential(nn.Linear(X_tr.shape[1], 64, init="he_uniform"), nn.ReLU(),
                          nn.Linear(64, 64, init="he_uniform"), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(64, 1))
    opt = hepnn.optim.Adam(model.parameters(), lr=2e-3)
    stop = hepnn.EarlyStopping(patience=5, restore_best_weights=True)
    sched = hepnn.optim.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    hist = hepnn.fit(model, nn.BCEWithLogitsLoss(), opt, train=(X_tr, y_tr, w_tr), val=(X_va, y_va, w_va),
                     epochs=epochs, batch_size=256, seed=seed, callbacks=[stop], scheduler=sched)
    return model, opt, hist, stop


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few epochs on a subsample (CI)")
    ap.add_argument("--out", default="hww_output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", default=os.path.join(HERE, "data", "hww_sample.npz"))
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    X, y, w_phys, names = load_sample(args.sample)
    if args.quick:
        keep = np.random.default_rng(args.seed).permutation(len(y))[:6000]
        X, y, w_phys = X[keep], y[keep], w_phys[keep]
    print(f"{len(y)} events ({int(y.sum())} signal), {len(names)} features: {', '.join(names)}")
    w_train_all = class_balanced(y, w_phys)
    X_tr, X_va, X_te, y_tr, y_va, y_te, w_tr, w_va, w_te, p_tr, p_va, p_te = train_val_test_split(
        X, y, w_train_all, w_phys, val_size=0.2, test_size=0.3, stratify=y, seed=args.seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_va, X_te = (scaler.transform(a).astype(np.float32) for a in (X_tr, X_va, X_te))

    t0 = time.perf_counter()
    model, opt, hist, stop = train_mlp(X_tr, y_tr, w_tr, X_va, y_va, w_va, 3 if args.quick else 60, args.seed)
    t_mlp = time.perf_counter() - t0
    s_mlp = hepnn.predict(model, X_te).ravel()
    s_mlp_tr = hepnn.predict(model, X_tr).ravel()
    print(f"MLP: {len(hist.history['loss'])} epochs in {t_mlp:.1f} s (best epoch {stop.best_epoch}, "
          f"val loss {stop.best:.4f})")

    from sklearn.ensemble import HistGradientBoostingClassifier

    t0 = time.perf_counter()
    bdt = HistGradientBoostingClassifier(max_iter=50 if args.quick else 300, learning_rate=0.1,
                                         early_stopping=True, random_state=args.seed)
    bdt.fit(np.concatenate([X_tr, X_va]), np.concatenate([y_tr, y_va]), sample_weight=np.concatenate([w_tr, w_va]))
    s_bdt = bdt.decision_function(X_te)
    print(f"BDT: {bdt.n_iter_} trees in {time.perf_counter() - t0:.1f} s")

    results = {}
    header = "| classifier | AUC | " + " | ".join(f"1/eps_B at eps_S={e}" for e in EFFICIENCIES) + " | Z_Asimov (139/fb) |"
    print("\n" + header + "\n|" + "---|" * (len(EFFICIENCIES) + 3))
    for name, score in (("MLP (hepnn)", s_mlp), ("BDT (sklearn)", s_bdt)):
        auc = metrics.roc_auc_score(y_te, score, sample_weight=p_te)
        rej = metrics.background_rejection(y_te, score, np.array(EFFICIENCIES), sample_weight=p_te)
        z, s, b = best_cut_significance(y_te, score, p_te, fraction=len(y_te) / len(y))
        results[name] = dict(auc=auc, rejection=rej, z=z)
        print(f"| {name} | {auc:.4f} | " + " | ".join(f"{r:.1f}" for r in rej) + f" | {z:.2f} (s={s:.0f}, b={b:.0f}) |")

    paths = [
        hepnn.plot.roc_rejection({"MLP (hepnn)": (y_te, s_mlp, p_te), "BDT (sklearn)": (y_te, s_bdt, p_te)},
                                 os.path.join(args.out, "roc.png"), title="H -> WW vs WW"),
        hepnn.plot.loss_curves(hist.history, os.path.join(args.out, "loss.png")),
        hepnn.plot.score_distributions(y_tr, s_mlp_tr, y_te, s_mlp, os.path.join(args.out, "scores.png")),
    ]
    ckpt = os.path.join(args.out, "hww_mlp.safetensors")
    hepnn.save(ckpt, model, optimizer=opt, scaler=scaler, metadata={"features": names, "auc": results["MLP (hepnn)"]["auc"]})
    print("\nwrote " + ", ".join(paths + [ckpt]))
    return results


if __name__ == "__main__":
    main()
