"""Anomaly detection by overdensity: a toy resonance search with classification without labels
(CWoLa). A dijet-like mass spectrum falls steeply; a small Gaussian signal at m = 3.5 TeV hides in
it. A classifier trained only to tell signal-region events from sideband events (no truth
labels) learns whatever is different in the signal region: the signal's jet substructure, since
the background's features do not depend on the mass. Cutting on its score makes the bump stand
out. The true labels are used only to report S / sqrt(B).

    python examples/cwola_bump.py [--quick]
"""
import argparse

import numpy as np

import hepnn
from hepnn import nn

SR = (3.3, 3.7)  # TeV
SIDEBANDS = ((3.0, 3.3), (3.7, 4.1))
FEATURES = ("m_j1", "m_j2", "tau21_j1", "tau21_j2")


def toy_events(n_background, n_signal, seed):
    """(m_jj (TeV), features (N, 4), is_signal (N,) bool). Background m_jj ~ Pareto(5) above
    2 TeV, jet masses ~ Gamma(2, 70 GeV), tau21 ~ Beta(4, 3), all independent of m_jj; signal
    m_jj ~ N(3.5, 0.1) TeV, jet masses N(400, 60) and N(150, 30) GeV, tau21 ~ Beta(3, 4)."""
    rng = np.random.default_rng(seed)
    m_b = 2.0 * rng.random(n_background) ** (-1.0 / 5.0)
    f_b = np.column_stack([rng.gamma(2.0, 70.0, n_background), rng.gamma(2.0, 70.0, n_background),
                           rng.beta(4, 3, n_background), rng.beta(4, 3, n_background)])
    m_s = rng.normal(3.5, 0.1, n_signal)
    f_s = np.column_stack([rng.normal(400, 60, n_signal), rng.normal(150, 30, n_signal),
                           rng.beta(3, 4, n_signal), rng.beta(3, 4, n_signal)])
    m = np.concatenate([m_b, m_s])
    y = np.r_[np.zeros(n_background, bool), np.ones(n_signal, bool)]
    return m, np.concatenate([f_b, f_s]).astype(np.float32), y


def _in(m, window):
    return (m >= window[0]) & (m < window[1])


def cross_scores(X, label, folds, seed, epochs):
    """Each event's SR-vs-SB classifier score from a model trained on the other folds."""
    score = np.empty(len(X), dtype=np.float64)
    fold = np.random.default_rng(seed).integers(0, folds, len(X))
    for k in range(folds):
        hepnn.manual_seed(seed + k)
        train = np.flatnonzero(fold != k)
        rng = np.random.default_rng(seed + k)
        rng.shuffle(train)
        n_val = len(train) // 5
        val, train = train[:n_val], train[n_val:]
        mu, sd = X[train].mean(0), X[train].std(0)
        Z = ((X - mu) / sd).astype(np.float32)
        # Weights give SR and SB equal total weight: the classifier's optimum is then the
        # likelihood ratio of the two mixtures, monotonic in the signal's fraction.
        w = np.where(label == 1, 0.5 / label[train].mean(), 0.5 / (1 - label[train].mean())).astype(np.float32)
        model = nn.Sequential(nn.Linear(X.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                              nn.Linear(64, 1))
        hepnn.fit(model, nn.BCEWithLogitsLoss(), hepnn.optim.Adam(model.parameters(), lr=1e-3),
                  train=(Z[train], label[train], w[train]), val=(Z[val], label[val], w[val]),
                  epochs=epochs, batch_size=512, seed=seed + k, progress=False,
                  callbacks=[hepnn.EarlyStopping(patience=3, restore_best_weights=True)])
        test = np.flatnonzero(fold == k)
        score[test] = hepnn.predict(model, Z[test])[:, 0]
    return score


def significance(is_signal):
    s, b = int(is_signal.sum()), int((~is_signal).sum())
    return s, b, s / np.sqrt(max(b, 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_b, n_s = (150_000, 250) if args.quick else (1_000_000, 600)
    m, X, truth = toy_events(n_b, n_s, args.seed)
    sr = _in(m, SR)
    sb = _in(m, SIDEBANDS[0]) | _in(m, SIDEBANDS[1])
    keep = sr | sb
    m, X, truth, sr = m[keep], X[keep], truth[keep], sr[keep]
    print(f"{n_b:,} background + {n_s:,} signal events; signal region {SR} TeV: {sr.sum():,} events, "
          f"sidebands {SIDEBANDS}: {(~sr).sum():,}")

    score = cross_scores(X, sr.astype(np.float32), folds=5, seed=args.seed, epochs=15 if args.quick else 40)
    s0, b0, z0 = significance(truth[sr])
    print(f"\nbefore any cut, in the signal region: S = {s0}, B = {b0}, S/sqrt(B) = {z0:.2f}")
    print("| kept fraction of SR events | S | B | S/sqrt(B) |\n|---:|---:|---:|---:|")
    after = {}
    for eff in (0.2, 0.05, 0.01, 0.002):
        cut = np.quantile(score[sr], 1.0 - eff)  # chosen on the data alone, no truth labels
        s, b, z = significance(truth[sr & (score >= cut)])
        after[eff] = z
        print(f"| {eff:g} | {s} | {b} | {z:.2f} |")
    best = max(after, key=after.get)
    cut = np.quantile(score[sr], 1.0 - best)
    edges = np.round(np.arange(SIDEBANDS[0][0], SIDEBANDS[1][1] + 1e-9, 0.1), 2)
    before_h = np.histogram(m, edges)[0]
    after_h = np.histogram(m[score >= cut], edges)[0]
    print(f"\nm_jj spectrum (bins of 100 GeV from {edges[0]} TeV), all events / after the cut keeping "
          f"{best:g} of the SR:")
    print("  all:  ", " ".join(f"{c:6d}" for c in before_h))
    print("  cut:  ", " ".join(f"{c:6d}" for c in after_h))
    print(f"\nS/sqrt(B) in the signal region: {z0:.2f} before, {after[best]:.2f} after the CWoLa cut")
    return {"before": z0, "after": after}


if __name__ == "__main__":
    main()
